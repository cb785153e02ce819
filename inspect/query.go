package inspect

import (
	"bytes"
	"context"
	"fmt"

	"github.com/etcdsafe/etcdsafe/decode"
)

// Query selects keys for [Snapshot.Index].
type Query struct {
	// Prefixes: a key matches if it starts with one of them; none = all.
	Prefixes [][]byte
	// Exact: match only this key (overrides Prefixes when set).
	Exact []byte
	// Revision: the state as of this revision; 0 = the newest.
	Revision int64
	// Deleted: return the keys whose newest record is a deletion (their
	// last value is still in the file) instead of the live ones.
	Deleted bool
}

func (q *Query) match(key []byte) bool {
	if q.Exact != nil {
		return bytes.Equal(key, q.Exact)
	}
	if len(q.Prefixes) == 0 {
		return true
	}
	for _, p := range q.Prefixes {
		if bytes.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Entry is the small summary kept for one key: where its newest value is.
// It is 88 bytes: [Snapshot.Index] keeps one per key of the file.
type Entry struct {
	Key            string
	Rev            decode.Revision // revision of the newest put of the key
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
	// DeletedRevision is the revision of the deletion when Deleted is set.
	DeletedRevision int64
	ValueSize       int32
	enc             uint8 // provider, see Encryption
	// Deleted is set when the key's newest record is a deletion, at
	// DeletedRevision; the entry then describes the last value before it.
	Deleted bool
	grp     uint16 // while Index sorts: the key's group (see groupLen)
}

// Encryption is the encryption-at-rest provider of the newest value
// ("identity", "aescbc:key1", "kms:v2:vault", ...).
func (e *Entry) Encryption() string { return providers.name(e.enc) }

// Problem is a record the walk could not read; the walk goes on.
type Problem struct {
	Revision []byte // raw revision key, for the message
	Err      error
}

func (p Problem) Error() string {
	if rev, err := decode.ParseRevision(p.Revision); err == nil {
		return fmt.Sprintf("record at revision %s: %v", rev, p.Err)
	}
	return fmt.Sprintf("record with key %x: %v", p.Revision, p.Err)
}

// Record is one revision of a key, with its value (valid until Close).
type Record struct {
	Rev decode.Revision
	decode.KeyValue
}

// Get returns the record stored at revision rev (a put, not a tombstone).
func (s *Snapshot) Get(rev decode.Revision) (Record, error) {
	var rec Record
	err := guard("read record", func() error {
		k, v := s.tx.Bucket(bucketKey).Cursor().Seek(rev.Bytes())
		if k == nil || !bytes.Equal(k, rev.Bytes()) {
			return fmt.Errorf("no record at revision %s", rev)
		}
		kv, err := decode.ParseKeyValue(v)
		if err != nil {
			return fmt.Errorf("record at revision %s: %w", rev, err)
		}
		rec = Record{Rev: rev, KeyValue: kv}
		return nil
	})
	return rec, err
}

// History returns every record of key still in the file, oldest first,
// deletions included (a deletion's Value is empty), up to revision maxRev
// (0 = all).
func (s *Snapshot) History(ctx context.Context, key []byte, maxRev int64) ([]Record, []Problem, error) {
	var out []Record
	problems, err := s.walk(ctx, maxRev, func(rev decode.Revision, v []byte) error {
		if k, ok := decode.PeekKey(v); ok && !bytes.Equal(k, key) {
			return nil
		}
		kv, err := decode.ParseKeyValue(v)
		if err != nil {
			return err
		}
		if bytes.Equal(kv.Key, key) {
			out = append(out, Record{Rev: rev, KeyValue: kv})
		}
		return nil
	})
	return out, problems, err
}

// walk visits the key bucket once, in revision order, up to revision maxRev
// (0 = all), calling fn with each record's revision and value. A record
// whose revision key does not parse, or for which fn returns an error, is
// reported as a [Problem] and the walk goes on. ctx is checked every 64Ki
// records.
func (s *Snapshot) walk(ctx context.Context, maxRev int64, fn func(rev decode.Revision, v []byte) error) ([]Problem, error) {
	return s.walkRange(ctx, nil, nil, maxRev, fn)
}

// walkRange is walk over the records whose bucket key is in [from, to)
// (nil: from the first, to the last). It may run in several goroutines at
// once: a read-only bbolt transaction and its cursors share no mutable
// state, and each call guards its own goroutine against faults.
func (s *Snapshot) walkRange(ctx context.Context, from, to []byte, maxRev int64, fn func(rev decode.Revision, v []byte) error) ([]Problem, error) {
	var problems []Problem
	err := guard("walk key bucket", func() error {
		c := s.tx.Bucket(bucketKey).Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for n := 0; k != nil; k, v = c.Next() {
			if n++; n&0xffff == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if to != nil && bytes.Compare(k, to) >= 0 {
				break
			}
			rev, err := decode.ParseRevision(k)
			if err == nil && maxRev > 0 && rev.Main > maxRev {
				break // the bucket is ordered by revision
			}
			if err == nil && len(v) == 0 {
				// `etcdutl snapshot restore --bump-revision` marks the
				// bumped revision with an empty record: no key, no value.
				continue
			}
			if err == nil {
				err = fn(rev, v)
			}
			if err != nil {
				problems = append(problems, Problem{Revision: bytes.Clone(k), Err: err})
			}
		}
		return nil
	})
	return problems, err
}
