package inspect

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// ChangeKind says how a key differs between two snapshots.
type ChangeKind int

// The kinds of [Change].
const (
	Added    ChangeKind = iota + 1 // in B only
	Deleted                        // in A only
	Modified                       // in both, with different values
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Deleted:
		return "deleted"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one key whose newest value differs between snapshot A and B.
type Change struct {
	Key  string
	Kind ChangeKind
	// A and B are the key's entries; nil on the side that lacks it.
	A, B *Entry
}

// DiffOptions configures [Diff].
type DiffOptions struct {
	// SameLineage says that A and B are two moments of one cluster's
	// history (one cluster ID, B not restored from a backup older than
	// A): a key with the same create and mod revision on both sides then
	// holds the same value, and only keys whose revisions differ have
	// their values compared. Without it every common key's values are
	// read and compared (a restored cluster reuses revisions for other
	// values).
	SameLineage bool
}

// DiffResult is what [Diff] found.
type DiffResult struct {
	Changes []Change
	// Compared counts the keys whose values were read on both sides;
	// Skipped those SameLineage let through unread.
	Compared, Skipped int
	// Problems are records either walk could not read.
	Problems []Problem
}

// Diff compares the live keys q selects in a and b (their newest state,
// or as of q.Revision on both sides) by merging the two key-sorted
// indexes; Changes come in key order. Values are compared byte for byte
// (for Kubernetes objects: as stored, encrypted values included, so that
// a re-encryption counts as a change).
func Diff(ctx context.Context, a, b *Snapshot, q Query, o DiffOptions) (*DiffResult, error) {
	q.Deleted = false
	ea, pa, err := a.Index(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("index of A: %w", err)
	}
	eb, pb, err := b.Index(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("index of B: %w", err)
	}
	res := &DiffResult{Problems: append(pa, pb...)}
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		if (i+j)&0xfff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case j == len(eb) || i < len(ea) && ea[i].Key < eb[j].Key:
			res.Changes = append(res.Changes, Change{Key: ea[i].Key, Kind: Deleted, A: &ea[i]})
			i++
		case i == len(ea) || eb[j].Key < ea[i].Key:
			res.Changes = append(res.Changes, Change{Key: eb[j].Key, Kind: Added, B: &eb[j]})
			j++
		default:
			x, y := &ea[i], &eb[j]
			i, j = i+1, j+1
			if o.SameLineage && x.CreateRevision == y.CreateRevision && x.ModRevision == y.ModRevision {
				res.Skipped++
				continue
			}
			res.Compared++
			same, err := sameValue(a, b, x, y)
			if err != nil {
				return nil, err
			}
			if !same {
				res.Changes = append(res.Changes, Change{Key: x.Key, Kind: Modified, A: x, B: y})
			}
		}
	}
	return res, nil
}

func sameValue(a, b *Snapshot, x, y *Entry) (bool, error) {
	if x.ValueSize != y.ValueSize {
		return false, nil
	}
	ra, err := a.Get(x.Rev)
	if err != nil {
		return false, fmt.Errorf("snapshot A: %w", err)
	}
	rb, err := b.Get(y.Rev)
	if err != nil {
		return false, fmt.Errorf("snapshot B: %w", err)
	}
	return bytes.Equal(ra.Value, rb.Value), nil
}

// Stat counts the changes by kind, e.g. "2 added, 1 deleted, 3 modified".
func (r *DiffResult) Stat() string {
	var n [4]int
	for _, c := range r.Changes {
		n[c.Kind]++
	}
	parts := []string{}
	for _, k := range []ChangeKind{Added, Deleted, Modified} {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}
