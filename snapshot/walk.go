package snapshot

import (
	"context"
	"encoding/binary"
	"io"
)

// WalkKeyBucket calls fn with every key and value of etcd's "key" bucket
// in key (revision) order, as a bbolt cursor would, for the bbolt database
// held in the first size bytes of r: for a snapshot bbolt cannot open
// because it is not a plain file (an encrypted [Spool]). fn's slices are
// valid only during the call; an error fn returns ends the walk and is
// returned. It checks what it reads as [NewestRevision] does (page ids,
// flags, bounds, depth) and returns an error wrapping [ErrNotEtcdDB] on
// anything unexpected; it never panics. ctx is checked at every page.
func WalkKeyBucket(ctx context.Context, r io.ReaderAt, size int64, fn func(k, v []byte) error) error {
	b := &boltReader{r: r, size: size}
	root, err := b.meta()
	if err != nil {
		return err
	}
	v, err := b.lookupBucket(root, []byte("key"))
	if err != nil {
		return err
	}
	id := binary.LittleEndian.Uint64(v)
	if id == 0 { // inline bucket: its only page follows the header
		p := v[16:]
		if len(p) < boltPageHeader {
			return b.fail("inline bucket of %d bytes", len(p))
		}
		return b.walk(ctx, 0, p, 0, fn)
	}
	return b.walk(ctx, id, nil, 0, fn)
}

// walk visits the subtree at page id (or the inline page p) in order.
func (b *boltReader) walk(ctx context.Context, id uint64, p []byte, depth int, fn func(k, v []byte) error) error {
	if depth >= boltMaxDepth {
		return b.fail("tree deeper than %d", boltMaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p == nil {
		var err error
		if p, err = b.page(id); err != nil {
			return err
		}
	}
	flags, count := pageKind(p)
	switch flags {
	case boltBranchFlag:
		for i := range count {
			_, _, _, child, ok := elem(p, i, true)
			if !ok {
				return b.fail("branch page %d: element %d out of bounds", id, i)
			}
			if err := b.walk(ctx, child, nil, depth+1, fn); err != nil {
				return err
			}
		}
	case boltLeafFlag:
		for i := range count {
			f, k, v, _, ok := elem(p, i, false)
			if !ok {
				return b.fail("leaf page %d: element %d out of bounds", id, i)
			}
			if f&boltBucketFlag != 0 {
				continue // a nested bucket: etcd's key bucket has none
			}
			if err := fn(k, v); err != nil {
				return err
			}
		}
	default:
		return b.fail("page %d has flags %#x, want branch or leaf", id, flags)
	}
	return nil
}
