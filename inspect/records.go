package inspect

import (
	"context"

	"github.com/etcdsafe/etcdsafe/decode"
)

// Records calls fn with every record of the key bucket, in revision
// order, deletions included (a deletion's Value is empty). The record's
// byte slices are valid only during the call: fn copies what it keeps. A
// record that does not parse, or for which fn returns an error, is
// reported as a [Problem] and the walk goes on; ctx ends it.
func (s *Snapshot) Records(ctx context.Context, fn func(Record) error) ([]Problem, error) {
	return s.walk(ctx, 0, func(rev decode.Revision, v []byte) error {
		kv, err := decode.ParseKeyValue(v)
		if err != nil {
			return err
		}
		return fn(Record{Rev: rev, KeyValue: kv})
	})
}
