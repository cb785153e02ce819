package keyindex

import (
	"io"
	"os"
	"testing"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// BenchmarkBuild builds the index of the snapshot $ETCDSAFE_BENCH_DB
// (default ../.cache/bench-100000.db, made by make bench-data) into
// io.Discard: the cost backup adds beside compression.
func BenchmarkBuild(b *testing.B) {
	p := os.Getenv("ETCDSAFE_BENCH_DB")
	if p == "" {
		p = "../.cache/bench-100000.db"
	}
	snap, err := inspect.Open(p, inspect.OpenOptions{})
	if err != nil {
		b.Fatalf("%v (make bench-data)", err)
	}
	defer snap.Close()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		w, err := NewWriter(io.Discard, WriterOptions{Recipients: []age.Recipient{id.Recipient()}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Build(b.Context(), snap, w); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(0, ""); err != nil {
			b.Fatal(err)
		}
	}
}
