package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
)

const realSnapshot = "../testdata/real-k8s1.37-etcd3.7/snapshot.db"

// repeatReader yields src repeated until n bytes, like a large bbolt file.
type repeatReader struct {
	src []byte
	off int
	n   int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	k := copy(p, r.src[r.off:])
	r.off = (r.off + k) % len(r.src)
	r.n -= int64(k)
	return k, nil
}

// peakMem samples the heap until stop is called and returns the peaks.
func peakMem() (stop func() (heapMB, sysMB float64)) {
	var peakHeap, peakSys atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() (float64, float64) {
		close(done)
		<-finished
		return float64(peakHeap.Load()) / (1 << 20), float64(peakSys.Load()) / (1 << 20)
	}
}

func BenchmarkWrite256MB(b *testing.B) {
	src, err := os.ReadFile(realSnapshot)
	if err != nil {
		b.Skipf("real snapshot not available: %v", err)
	}
	const size = 256 << 20
	h := sha256.New()
	if _, err := io.Copy(h, &repeatReader{src: src, n: size}); err != nil {
		b.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	id := newX25519(b)
	runtime.GC()
	b.SetBytes(size)
	b.ResetTimer()
	stop := peakMem()
	var out int64
	for i := 0; i < b.N; i++ {
		cw := &countWriter{}
		w, err := NewWriter(cw, WriterOptions{Recipients: []age.Recipient{id.Recipient()}})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.AddSnapshot(&repeatReader{src: src, n: size}, size, sum); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		out = cw.n
	}
	b.StopTimer()
	heap, sys := stop()
	b.ReportMetric(heap, "peak-heap-MB")
	b.ReportMetric(sys, "peak-sys-MB")
	b.ReportMetric(float64(out)/size, "ratio")
}

func BenchmarkVerify64MB(b *testing.B) {
	src, err := os.ReadFile(realSnapshot)
	if err != nil {
		b.Skipf("real snapshot not available: %v", err)
	}
	const size = 64 << 20
	snap, _ := io.ReadAll(&repeatReader{src: src, n: size})
	id := newX25519(b)
	arch := writeArchive(b, archiveSpec{snapshot: snap, opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})
	snap = nil //nolint:ineffassign // drops the only reference so that the GC below frees it before measuring
	runtime.GC()
	b.SetBytes(size)
	b.ResetTimer()
	stop := peakMem()
	for i := 0; i < b.N; i++ {
		if _, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Identities: []age.Identity{id}}, ExtractOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	heap, sys := stop()
	b.ReportMetric(heap, "peak-heap-MB")
	b.ReportMetric(sys, "peak-sys-MB")
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
