package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// ErrNotEtcdDB means the bytes are not a bbolt database with etcd's "key"
// bucket, or one damaged along the path [NewestRevision] reads.
var ErrNotEtcdDB = errors.New("not a readable etcd bbolt database")

// bbolt's on-disk layout (go.etcd.io/bbolt internal/common), little-endian
// as written on every platform etcd supports.
const (
	boltPageHeader  = 16 // id u64, flags u16, count u16, overflow u32
	boltElemSize    = 16 // leaf: flags, pos, ksize, vsize (u32); branch: pos, ksize (u32), pgid (u64)
	boltMagic       = 0xED0CDAED
	boltBranchFlag  = 0x01
	boltLeafFlag    = 0x02
	boltMetaFlag    = 0x04
	boltBucketFlag  = 0x01
	boltMetaSumEnd  = 56 // the checksum covers the meta up to itself
	boltMaxDepth    = 64
	boltMinPageSize = 512
	boltMaxPageSize = 1 << 20
)

// NewestRevision returns the newest main revision in etcd's "key" bucket
// (0 when it is empty) of the bbolt database held in the first size bytes
// of r, reading only the meta pages and one path down each tree: a few
// pages, not the file. It exists for a snapshot that bbolt cannot open
// because it is not a plain file (an encrypted [Spool]). It checks what it
// reads (meta checksum, page ids and flags, bounds) and returns an error
// wrapping [ErrNotEtcdDB] on anything unexpected; it never panics. It does
// not check the rest of the file: that is what the SHA-256 trailer (or
// bbolt's page check) is for.
func NewestRevision(r io.ReaderAt, size int64) (int64, error) {
	b := &boltReader{r: r, size: size}
	root, err := b.meta()
	if err != nil {
		return 0, err
	}
	v, err := b.lookupBucket(root, []byte("key"))
	if err != nil {
		return 0, err
	}
	k, err := b.lastKey(v)
	if err != nil || k == nil {
		return 0, err
	}
	// A revision key: 8-byte big-endian main, '_', 8-byte sub [, 't'].
	if len(k) < 17 || k[8] != '_' {
		return 0, fmt.Errorf("newest key of the key bucket is not a revision (%d bytes): %w", len(k), ErrNotEtcdDB)
	}
	rev := int64(binary.BigEndian.Uint64(k[:8]))
	if rev < 0 {
		return 0, fmt.Errorf("negative newest revision: %w", ErrNotEtcdDB)
	}
	return rev, nil
}

type boltReader struct {
	r        io.ReaderAt
	size     int64
	pageSize int64
}

func (b *boltReader) fail(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrNotEtcdDB)...)
}

// meta reads both meta pages and returns the root bucket's root page of
// the valid one with the higher transaction id.
func (b *boltReader) meta() (uint64, error) {
	hdr := make([]byte, boltPageHeader+64)
	if b.size < int64(len(hdr)) {
		return 0, b.fail("%d bytes is too small for a bbolt database", b.size)
	}
	if _, err := b.r.ReadAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("read meta page: %w", err)
	}
	ps := int64(binary.LittleEndian.Uint32(hdr[boltPageHeader+8:]))
	if ps < boltMinPageSize || ps > boltMaxPageSize || ps&(ps-1) != 0 || 2*ps > b.size {
		return 0, b.fail("page size %d", ps)
	}
	b.pageSize = ps
	var best struct {
		ok         bool
		root, txid uint64
	}
	for id := range int64(2) {
		if _, err := b.r.ReadAt(hdr, id*ps); err != nil {
			return 0, fmt.Errorf("read meta page %d: %w", id, err)
		}
		m := hdr[boltPageHeader:]
		h := fnv.New64a()
		h.Write(m[:boltMetaSumEnd])
		if binary.LittleEndian.Uint16(hdr[8:]) != boltMetaFlag || binary.LittleEndian.Uint32(m) != boltMagic ||
			int64(binary.LittleEndian.Uint32(m[8:])) != ps || h.Sum64() != binary.LittleEndian.Uint64(m[boltMetaSumEnd:]) {
			continue
		}
		root, txid := binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[48:])
		if !best.ok || txid > best.txid {
			best.ok, best.root, best.txid = true, root, txid
		}
	}
	if !best.ok {
		return 0, b.fail("no valid meta page")
	}
	return best.root, nil
}

// page reads page id with its overflow pages.
func (b *boltReader) page(id uint64) ([]byte, error) {
	if id < 2 || id > uint64(b.size/b.pageSize) {
		return nil, b.fail("page id %d out of range", id)
	}
	off := int64(id) * b.pageSize
	hdr := make([]byte, boltPageHeader)
	if off+boltPageHeader > b.size {
		return nil, b.fail("page %d beyond the end", id)
	}
	if _, err := b.r.ReadAt(hdr, off); err != nil {
		return nil, fmt.Errorf("read page %d: %w", id, err)
	}
	if binary.LittleEndian.Uint64(hdr) != id {
		return nil, b.fail("page %d says it is page %d", id, binary.LittleEndian.Uint64(hdr))
	}
	n := (int64(binary.LittleEndian.Uint32(hdr[12:])) + 1) * b.pageSize
	if n > b.size-off {
		return nil, b.fail("page %d with its overflow runs past the end", id)
	}
	p := make([]byte, n)
	if _, err := b.r.ReadAt(p, off); err != nil {
		return nil, fmt.Errorf("read page %d: %w", id, err)
	}
	return p, nil
}

// elem returns element i of page p: its leaf flags (or 0), key, and the
// value (leaf) or child page id (branch).
func elem(p []byte, i int, branch bool) (flags uint32, key, val []byte, child uint64, ok bool) {
	e := boltPageHeader + i*boltElemSize
	if e+boltElemSize > len(p) {
		return 0, nil, nil, 0, false
	}
	el := p[e : e+boltElemSize]
	if branch {
		pos, ks := uint64(binary.LittleEndian.Uint32(el)), uint64(binary.LittleEndian.Uint32(el[4:]))
		if uint64(e)+pos+ks > uint64(len(p)) {
			return 0, nil, nil, 0, false
		}
		s := uint64(e) + pos
		return 0, p[s : s+ks], nil, binary.LittleEndian.Uint64(el[8:]), true
	}
	flags = binary.LittleEndian.Uint32(el)
	pos, ks, vs := uint64(binary.LittleEndian.Uint32(el[4:])), uint64(binary.LittleEndian.Uint32(el[8:])), uint64(binary.LittleEndian.Uint32(el[12:]))
	if uint64(e)+pos+ks+vs > uint64(len(p)) {
		return 0, nil, nil, 0, false
	}
	s := uint64(e) + pos
	return flags, p[s : s+ks], p[s+ks : s+ks+vs], 0, true
}

func pageKind(p []byte) (flags uint16, count int) {
	return binary.LittleEndian.Uint16(p[8:]), int(binary.LittleEndian.Uint16(p[10:]))
}

// lookupBucket finds the sub-bucket name in the tree rooted at page root
// and returns its bucket value (root page id, sequence, inline page).
func (b *boltReader) lookupBucket(root uint64, name []byte) ([]byte, error) {
	id := root
	for range boltMaxDepth {
		p, err := b.page(id)
		if err != nil {
			return nil, err
		}
		flags, count := pageKind(p)
		switch flags {
		case boltBranchFlag:
			next, found := uint64(0), false
			for i := range count {
				_, k, _, child, ok := elem(p, i, true)
				if !ok {
					return nil, b.fail("branch page %d: element %d out of bounds", id, i)
				}
				if i > 0 && bytes.Compare(k, name) > 0 {
					break
				}
				next, found = child, true
			}
			if !found {
				return nil, b.fail("empty branch page %d", id)
			}
			id = next
		case boltLeafFlag:
			for i := range count {
				f, k, v, _, ok := elem(p, i, false)
				if !ok {
					return nil, b.fail("leaf page %d: element %d out of bounds", id, i)
				}
				if bytes.Equal(k, name) {
					if f&boltBucketFlag == 0 || len(v) < 16 {
						return nil, b.fail("%q is not a bucket", name)
					}
					return v, nil
				}
			}
			return nil, b.fail("no %q bucket", name)
		default:
			return nil, b.fail("page %d has flags %#x, want branch or leaf", id, flags)
		}
	}
	return nil, b.fail("tree deeper than %d", boltMaxDepth)
}

// lastKey returns the greatest key of the bucket whose value is v, or nil
// for an empty bucket.
func (b *boltReader) lastKey(v []byte) ([]byte, error) {
	var p []byte
	id := binary.LittleEndian.Uint64(v)
	if id == 0 { // inline bucket: its only page follows the header
		p = v[16:]
		if len(p) < boltPageHeader {
			return nil, b.fail("inline bucket of %d bytes", len(p))
		}
	}
	for range boltMaxDepth {
		if p == nil {
			var err error
			if p, err = b.page(id); err != nil {
				return nil, err
			}
		}
		flags, count := pageKind(p)
		switch {
		case count == 0 && flags == boltLeafFlag:
			return nil, nil
		case count == 0:
			return nil, b.fail("empty page %d", id)
		case flags == boltBranchFlag:
			_, _, _, child, ok := elem(p, count-1, true)
			if !ok {
				return nil, b.fail("branch page %d: element out of bounds", id)
			}
			id, p = child, nil
		case flags == boltLeafFlag:
			_, k, _, _, ok := elem(p, count-1, false)
			if !ok {
				return nil, b.fail("leaf page %d: element out of bounds", id)
			}
			return append([]byte(nil), k...), nil
		default:
			return nil, b.fail("page %d has flags %#x, want branch or leaf", id, flags)
		}
	}
	return nil, b.fail("tree deeper than %d", boltMaxDepth)
}
