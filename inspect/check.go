package inspect

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// maxCheckErrors bounds how many of bbolt's findings a [CheckError] keeps.
const maxCheckErrors = 10

// CheckError is what bbolt's page check found. It wraps [ErrCorrupt].
type CheckError struct {
	// Path is the db checked.
	Path string
	// Problems are the first findings (at most 10); Count is all of them.
	Problems []string
	Count    int
}

func (e *CheckError) Error() string {
	s := fmt.Sprintf("%s: bbolt's page check found %d problem(s)", e.Path, e.Count)
	if len(e.Problems) > 0 {
		s += ": " + strings.Join(e.Problems, "; ")
	}
	return s
}

// Unwrap returns [ErrCorrupt].
func (e *CheckError) Unwrap() error { return ErrCorrupt }

// Check runs bbolt's consistency check (every page reachable once, free
// list consistent, keys ordered) in a read transaction of its own, so it
// may run beside other queries. It reads the whole file. It returns nil, a
// [*CheckError], or the context's error; a damaged page is an error
// wrapping [ErrCorrupt].
//
// bbolt's check runs in a goroutine of its own, where a page whose header
// is damaged makes it panic beyond any recover of ours (bbolt asserts the
// page id). So every page of every bucket is first visited here, in this
// goroutine and under [guard]; bbolt's check only runs on a file whose
// pages all passed that walk.
func (s *Snapshot) Check(ctx context.Context) error {
	ce := &CheckError{Path: s.Path}
	err := guard("check "+s.Path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return visitBucket(ctx, b)
			}); err != nil {
				return err
			}
			for e := range tx.Check() {
				ce.Count++
				if len(ce.Problems) < maxCheckErrors {
					ce.Problems = append(ce.Problems, e.Error())
				}
			}
			return nil
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
// that bbolt loads (and asserts the header of) every branch and leaf page.
func visitBucket(ctx context.Context, b *bolt.Bucket) error {
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := visitBucket(ctx, nb); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
