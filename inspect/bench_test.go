package inspect

import (
	"context"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/decode"
)

// benchDB is the snapshot the benchmarks read: ETCDSAFE_BENCH_DB (made by
// `make bench-data`), else the small real snapshot.
func benchDB(b *testing.B) string {
	if p := os.Getenv("ETCDSAFE_BENCH_DB"); p != "" {
		return p
	}
	return realSnapshot
}

func reportRecords(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFloor is the least any query can cost: walk the key bucket with
// a cursor and touch each record's key and value length.
func BenchmarkFloor(b *testing.B) {
	db, err := bolt.Open(benchDB(b), 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	n := 0
	for b.Loop() {
		n = 0
		_ = db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte("key")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n += len(k[:1]) + len(v[:0])
			}
			return nil
		})
	}
	reportRecords(b, n)
}

func benchIndex(b *testing.B, q Query) {
	s, err := Open(benchDB(b), OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var entries []Entry
	for b.Loop() {
		entries, _, err = s.Index(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(entries)), "keys")
}

// BenchmarkIndexAll is `ls -A` without a type: every live key.
func BenchmarkIndexAll(b *testing.B) { benchIndex(b, Query{}) }

// BenchmarkIndexOne is the index pass of `get TYPE/NAME -n NS`.
func BenchmarkIndexOne(b *testing.B) {
	benchIndex(b, Query{Exact: []byte("/registry/deployments/payments/api")})
}

// BenchmarkIndexPrefix is the index pass of `ls configmaps -A`.
func BenchmarkIndexPrefix(b *testing.B) {
	benchIndex(b, Query{Prefixes: [][]byte{[]byte("/registry/configmaps/")}})
}

// BenchmarkGetDecodeAll decodes every live value (the work of `get -A`
// over everything, output aside).
func BenchmarkGetDecodeAll(b *testing.B) {
	s, err := Open(benchDB(b), OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	entries, _, err := s.Index(context.Background(), Query{Prefixes: [][]byte{[]byte("/registry/configmaps/")}})
	if err != nil {
		b.Fatal(err)
	}
	dec := decode.NewDecoder(nil)
	for b.Loop() {
		for _, e := range entries {
			rec, err := s.Get(e.Rev)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := dec.Decode(rec.Key, rec.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(entries))*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}
