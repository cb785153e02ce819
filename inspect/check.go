package inspect

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// maxCheckErrors bounds how many of bbolt's findings a [CheckError] keeps.
const maxCheckErrors = 10

// CheckError is what the page check ([Snapshot.Check]) found. It wraps [ErrCorrupt].
type CheckError struct {
	// Path is the db checked.
	Path string
	// Problems are the first findings (at most 10); Count is all of them.
	Problems []string
	Count    int
}

func (e *CheckError) Error() string {
	s := fmt.Sprintf("%s: the page check found %d problem(s)", e.Path, e.Count)
	if len(e.Problems) > 0 {
		s += ": " + strings.Join(e.Problems, "; ")
	}
	return s
}

// Unwrap returns [ErrCorrupt].
func (e *CheckError) Unwrap() error { return ErrCorrupt }

// Check reads every page of every bucket in a read transaction of its own
// (so it may run beside other queries) and checks what a page check can:
// every branch and leaf page has the header bbolt expects (its own id, a
// valid type; bbolt's own assertions, run here under [guard]) and the keys
// of every bucket are in strictly ascending order, the invariant bbolt's
// lookups rely on (a zeroed overflow page of a leaf shows up as a key out
// of order). It returns nil, a [*CheckError], or the context's error; a
// damaged page is an error wrapping [ErrCorrupt].
//
// It does not run bbolt's own tx.Check: for a db without a synced free
// list (every etcd db) that rebuilds the free list in goroutines of its
// own, and on exactly the damage it finds it panics there while another
// goroutine still reads the transaction: a data race, and a crash of the
// whole process on hostile input. What bbolt's check adds beyond this one
// (a page referenced twice, free list consistency) is left out; the
// SHA-256 trailer, where there is one, covers every byte.
func (s *Snapshot) Check(ctx context.Context) error {
	ce := &CheckError{Path: s.Path}
	err := guard("check "+s.Path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return visitBucket(ctx, string(name), b, ce)
			})
		})
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case ce.Count > 0:
		return ce
	}
	return nil
}

// visitBucket reads every key of b and of the buckets nested in it, so
// that bbolt loads (and asserts the header of) every branch and leaf page,
// and reports keys that are not in ascending order.
func visitBucket(ctx context.Context, path string, b *bolt.Bucket, ce *CheckError) error {
	c := b.Cursor()
	n := 0
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			ce.Count++
			if len(ce.Problems) < maxCheckErrors {
				ce.Problems = append(ce.Problems, fmt.Sprintf("bucket %q: key %d (%d bytes) is not after the one before it", path, n, len(k)))
			}
		}
		prev = append(prev[:0], k...)
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := visitBucket(ctx, path+"/"+string(k), nb, ce); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
