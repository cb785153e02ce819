package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkBackup compares `etcdsafe backup --from-db` with the pipelines
// it replaces, on the same snapshot and kube dir, in one run:
//
//	tar -czf - SNAP KUBE | age -r R > out
//	tar -cf - SNAP KUBE | zstd -T0 | age -r R > out
//
// The pipelines are built from the libraries the CLIs are made of, one
// goroutine per process joined by pipes as a shell would: archive/tar,
// compress/gzip at its default level (what tar -z runs), klauspost zstd at
// its default level with one encoder thread per core (zstd -T0), age. All
// three fsync their output, as etcdsafe does. Input: $ETCDSAFE_BENCH_DB
// (make bench builds a 200k-object snapshot), else a generated 64 MB db.
// Reported: MB/s of input (snapshot + kube dir), peak Go heap and peak RSS
// of the process during the sub-benchmark.
func BenchmarkBackup(b *testing.B) {
	db := os.Getenv("ETCDSAFE_BENCH_DB")
	if db == "" {
		db = filepath.Join(b.TempDir(), "bench.db")
		genBenchDB(b, db, 64<<20)
	}
	kd := benchKubeDir(b)
	st, err := os.Stat(db)
	if err != nil {
		b.Fatal(err)
	}
	input := st.Size() + dirSize(b, kd)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	recip := id.Recipient().String()
	out := b.TempDir()

	cases := []struct {
		name string
		run  func(b *testing.B, dst string) error
	}{
		{"etcdsafe", func(b *testing.B, dst string) error {
			args := []string{"backup", "--from-db", db, "--kube-dir", kd, "-r", recip, "--out", dst, "--log-format", "json"}
			if code := run(context.Background(), args, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
				return fmt.Errorf("etcdsafe backup exit %d", code)
			}
			return nil
		}},
		{"tar-gzip-age", func(b *testing.B, dst string) error {
			return shellPipeline(filepath.Join(dst, "out.tar.gz.age"), db, kd, id.Recipient(), func(w io.Writer) (io.WriteCloser, error) {
				return gzip.NewWriter(w), nil
			})
		}},
		{"tar-zstdT0-age", func(b *testing.B, dst string) error {
			return shellPipeline(filepath.Join(dst, "out.tar.zst.age"), db, kd, id.Recipient(), func(w io.Writer) (io.WriteCloser, error) {
				return zstd.NewWriter(w, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
			})
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(input)
			runtime.GC()
			resetPeakRSS()
			stop := samplePeakHeap()
			var outBytes int64
			for i := 0; b.Loop(); i++ {
				dst := filepath.Join(out, tc.name+strconv.Itoa(i))
				if err := os.Mkdir(dst, 0o700); err != nil {
					b.Fatal(err)
				}
				if err := tc.run(b, dst); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				outBytes = dirSize(b, dst)
				_ = os.RemoveAll(dst)
				b.StartTimer()
			}
			heap := stop()
			b.ReportMetric(heap, "peak-heap-MB")
			if rss := peakRSSMB(); rss > 0 {
				b.ReportMetric(rss, "peak-RSS-MB")
			}
			b.ReportMetric(float64(outBytes)/float64(input), "ratio")
		})
	}
}

// shellPipeline runs tar | compress | age > out with one goroutine per
// stage, like processes joined by pipes.
func shellPipeline(out, db, kd string, r age.Recipient, compressor func(io.Writer) (io.WriteCloser, error)) error {
	tarR, tarW := io.Pipe()
	go func() { tarW.CloseWithError(writeTar(tarW, db, kd)) }()
	zR, zW := io.Pipe()
	go func() {
		c, err := compressor(zW)
		if err == nil {
			_, err = io.CopyBuffer(c, tarR, make([]byte, 128<<10))
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		tarR.CloseWithError(err)
		zW.CloseWithError(err)
	}()
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	aw, err := age.Encrypt(f, r)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(aw, zR, make([]byte, 128<<10)); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// writeTar is `tar -cf - db kubedir`.
func writeTar(w io.Writer, db, kd string) error {
	tw := tar.NewWriter(w)
	add := func(p, name string) error {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = name
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}
	if err := add(db, "snapshot.db"); err != nil {
		return err
	}
	err := filepath.WalkDir(kd, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(kd), p)
		return add(p, filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// genBenchDB writes an etcd-shaped bbolt file of about size bytes: a key
// bucket of revision keys with Kubernetes-like JSON values (repetitive
// structure, random ids), so that compression ratios are realistic.
func genBenchDB(b *testing.B, path string, size int64) {
	b.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rnd := make([]byte, 16)
	var written int64
	rev := int64(1)
	for written < size {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("key"))
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists([]byte("meta")); err != nil {
				return err
			}
			for range 2000 {
				_, _ = rand.Read(rnd)
				v := fmt.Sprintf(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"ns-%d","uid":"%x","labels":{"app":"web","tier":"frontend"},"managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"v1","time":"2026-05-01T02:00:00Z"}]},"data":{"config.yaml":"%x%s"}}`,
					rev, rev%50, rnd, rnd, strings.Repeat("replicas: 3\nimage: registry.example.com/app:v1.2.3\n", 5))
				k := make([]byte, 17)
				binary.BigEndian.PutUint64(k, uint64(rev))
				k[8] = '_'
				if err := bk.Put(k, []byte(v)); err != nil {
					return err
				}
				written += int64(len(v) + 17)
				rev++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchKubeDir is a kube dir of typical size: certificates, kubeconfigs,
// manifests (about 100 KB).
func benchKubeDir(b *testing.B) string {
	b.Helper()
	d := filepath.Join(b.TempDir(), "kubernetes")
	for i := range 40 {
		p := filepath.Join(d, []string{"pki", "pki/etcd", "manifests", "."}[i%4], fmt.Sprintf("f%02d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 2500)
		_, _ = rand.Read(buf[:1200])
		if err := os.WriteFile(p, buf, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

func dirSize(b *testing.B, root string) int64 {
	b.Helper()
	var n int64
	_ = filepath.WalkDir(root, func(_ string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			if fi, err := de.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// samplePeakHeap samples HeapInuse every 2ms until stopped.
func samplePeakHeap() (stop func() (heapMB float64)) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		return float64(peak.Load()) / (1 << 20)
	}
}

// resetPeakRSS resets the kernel's high-water mark of this process's RSS
// (Linux: "5" to /proc/self/clear_refs); a no-op elsewhere.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB reads VmHWM from /proc/self/status, or 0 if unavailable.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
