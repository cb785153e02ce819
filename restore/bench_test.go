package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"
	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// BenchmarkRestore compares a data dir restore by etcdsafe with etcdutl's
// own restore (the library `etcdutl snapshot restore` calls) with the same
// flags (--bump-revision 1e9 --mark-compacted, hash checked) on the same
// snapshot: $ETCDSAFE_BENCH_DB, else a generated ~25 MB one. Restoring from
// an encrypted archive adds decryption and decompression, reported on its
// own ("archive-stage": Prepare of an age+zstd archive, which extracts and
// verifies it) and end to end ("etcdsafe-archive").
func BenchmarkRestore(b *testing.B) {
	db := os.Getenv("ETCDSAFE_BENCH_DB")
	if db == "" {
		db = genSnapshot(b, 12000, 2000)
	}
	st, err := os.Stat(db)
	if err != nil {
		b.Fatal(err)
	}
	skip := !snapshot.HasTrailerSize(st.Size())
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	arch := benchArchive(b, db, id.Recipient())
	work := b.TempDir()
	fresh := func(b *testing.B, i int) string {
		b.StopTimer()
		d := filepath.Join(work, fmt.Sprintf("etcd-%d", i))
		_ = os.RemoveAll(d)
		b.StartTimer()
		return d
	}
	opts := func(src, dataDir string) Options {
		return Options{Source: src, DataDir: dataDir, SkipHashCheck: skip, BumpRevision: DefaultBumpRevision, MarkCompacted: true,
			Identities: []age.Identity{id}, TmpDir: work}
	}
	b.Run("etcdutl", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; b.Loop(); i++ {
			d := fresh(b, i)
			err := etcdsnap.NewV3(zap.NewNop()).Restore(etcdsnap.RestoreConfig{
				SnapshotPath: db, Name: "default", OutputDataDir: d,
				PeerURLs: []string{"http://localhost:2380"}, InitialCluster: "default=http://localhost:2380",
				InitialClusterToken: "etcd-cluster", SkipHashCheck: skip,
				RevisionBump: DefaultBumpRevision, MarkCompacted: true,
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcdsafe", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; b.Loop(); i++ {
			d := fresh(b, i)
			p, err := Prepare(context.Background(), opts(db, d))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Execute(context.Background()); err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
	b.Run("archive-stage", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; b.Loop(); i++ {
			d := fresh(b, i)
			p, err := Prepare(context.Background(), opts(arch, d))
			if err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
	b.Run("etcdsafe-archive", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; b.Loop(); i++ {
			d := fresh(b, i)
			p, err := Prepare(context.Background(), opts(arch, d))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Execute(context.Background()); err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
}

// genSnapshot writes n values of size bytes through a real etcd and saves
// a snapshot of it.
func genSnapshot(b *testing.B, n, size int) string {
	b.Helper()
	s := etcdtest.Start(b, etcdtest.WithUnsafeNoFsync(), etcdtest.WithMaxTxnOps(1000))
	ctx := context.Background()
	val := strings.Repeat("v", size)
	for i := 0; i < n; i += 500 {
		var ops []clientv3.Op
		for j := i; j < i+500 && j < n; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/registry/configmaps/ns%d/cm-%d", j%50, j), val))
		}
		if _, err := s.Client.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
	p := filepath.Join(b.TempDir(), "bench.db")
	if _, err := snapshot.Save(ctx, s.Client, p); err != nil {
		b.Fatal(err)
	}
	s.Stop()
	return p
}

func benchArchive(b *testing.B, db string, r age.Recipient) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "bench.tar.zst.age")
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := archive.NewWriter(f, archive.WriterOptions{Recipients: []age.Recipient{r}})
	if err != nil {
		b.Fatal(err)
	}
	size, sum, err := archive.HashFile(db)
	if err != nil {
		b.Fatal(err)
	}
	in, err := os.Open(db)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	if err := w.AddSnapshot(in, size, sum); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return out
}
