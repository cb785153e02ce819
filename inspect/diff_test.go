package inspect

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// snapshotOf saves srv's snapshot to a file and opens it.
func snapshotOf(t *testing.T, srv *etcdtest.Server, name string) *Snapshot {
	t.Helper()
	rc, err := srv.Client.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDiff: two nights of one etcd: the changes the test made, in key
// order, and nothing else: a put of the same value is no change, keys
// untouched are skipped unread with SameLineage and read without it; a
// prefix limits the diff; two clusters that reused revisions for other
// values differ only when values are compared.
func TestDiff(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	put := func(k, v string) {
		t.Helper()
		if _, err := srv.Client.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"/registry/configmaps/a/keep", "/registry/configmaps/a/change", "/registry/configmaps/a/same",
		"/registry/configmaps/a/gone", "/registry/secrets/a/s", "/registry/configmaps/b/recreated"} {
		put(k, "v1 of "+k)
	}
	nightA := snapshotOf(t, srv, "a.db")
	put("/registry/configmaps/a/change", "v2")
	put("/registry/configmaps/a/same", "v1 of /registry/configmaps/a/same") // a new revision, the same bytes
	put("/registry/configmaps/a/new", "v1")
	for _, k := range []string{"/registry/configmaps/a/gone", "/registry/configmaps/b/recreated"} {
		if _, err := srv.Client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	put("/registry/configmaps/b/recreated", "v1 of /registry/configmaps/b/recreated") // same bytes, new life
	put("/registry/secrets/a/s", "v2")
	nightB := snapshotOf(t, srv, "b.db")

	want := []struct {
		key  string
		kind ChangeKind
	}{
		{"/registry/configmaps/a/change", Modified},
		{"/registry/configmaps/a/gone", Deleted},
		{"/registry/configmaps/a/new", Added},
		{"/registry/secrets/a/s", Modified},
	}
	for _, same := range []bool{true, false} {
		res, err := Diff(ctx, nightA, nightB, Query{}, DiffOptions{SameLineage: same})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) != len(want) {
			t.Fatalf("SameLineage=%v: %d changes, want %d: %+v", same, len(res.Changes), len(want), res.Changes)
		}
		for i, w := range want {
			c := res.Changes[i]
			if c.Key != w.key || c.Kind != w.kind || (c.A == nil) != (w.kind == Added) || (c.B == nil) != (w.kind == Deleted) {
				t.Errorf("SameLineage=%v: change %d = %s %s, want %s %s", same, i, c.Kind, c.Key, w.kind, w.key)
			}
		}
		// keep is the only key with the same revisions on both sides
		if same && (res.Skipped != 1 || res.Compared != 4) || !same && (res.Skipped != 0 || res.Compared != 5) {
			t.Errorf("SameLineage=%v: compared %d, skipped %d", same, res.Compared, res.Skipped)
		}
		if got := res.Stat(); got != "1 added, 1 deleted, 2 modified" {
			t.Errorf("Stat = %q", got)
		}
	}
	res, err := Diff(ctx, nightA, nightB, Query{Prefixes: [][]byte{[]byte("/registry/secrets/")}}, DiffOptions{SameLineage: true})
	if err != nil || len(res.Changes) != 1 || res.Changes[0].Key != "/registry/secrets/a/s" {
		t.Fatalf("prefix: %+v %v", res, err)
	}
	// a filter: namespace a only, counted by resource (1 configmaps, 2 secrets)
	filter := func(k []byte) (int, bool) {
		ks := string(k)
		switch {
		case strings.HasPrefix(ks, "/registry/configmaps/a/"):
			return 1, true
		case strings.HasPrefix(ks, "/registry/secrets/a/"):
			return 2, true
		}
		return 0, false
	}
	res, err = Diff(ctx, nightA, nightB, Query{}, DiffOptions{SameLineage: true, Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Stat(); got != "1 added, 1 deleted, 2 modified" || !slices.Equal(res.LiveA, []int{0, 4, 1}) || !slices.Equal(res.LiveB, []int{0, 4, 1}) || res.TotalA != 5 || res.TotalB != 5 {
		t.Fatalf("filter: %s, live %v %v, total %d %d", got, res.LiveA, res.LiveB, res.TotalA, res.TotalB)
	}

	// another cluster, written in the same order with one other value:
	// the same revisions hold different bytes
	other := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	for _, k := range []string{"/registry/configmaps/a/keep", "/registry/configmaps/a/change", "/registry/configmaps/a/same",
		"/registry/configmaps/a/gone", "/registry/secrets/a/s", "/registry/configmaps/b/recreated"} {
		v := "v1 of " + k
		if k == "/registry/configmaps/a/keep" {
			v = "tampered"
		}
		if _, err := other.Client.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	restored := snapshotOf(t, other, "other.db")
	// Every etcdtest member has the same name and peer URL, so the same
	// member ID: the files alone look like one cluster, restored.
	if v, err := CompareLineage(nightA, nightB); err != nil || !v.Same {
		t.Fatalf("two nights: %+v %v", v, err)
	}
	if v, err := CompareLineage(nightB, nightA); err != nil || !v.Same {
		t.Fatalf("two nights, newest first: %+v %v", v, err)
	}
	v, err := CompareLineage(nightA, restored)
	if err != nil || v.Same || !slices.Equal(v.A.Members, v.B.Members) || !strings.Contains(v.Reason, "revision") {
		t.Fatalf("same members, revisions reused: %+v %v", v, err)
	}
	// a restore restarts the raft log: a cluster whose raft log grew
	// without new revisions (lease grants), then one at a higher revision
	// with a shorter log
	long, short := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync()), etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	if _, err := long.Client.Put(ctx, "/registry/configmaps/a/keep", "x"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := long.Client.Grant(ctx, 60); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"x", "y", "z"} {
		if _, err := short.Client.Put(ctx, "/registry/configmaps/a/keep", v); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := CompareLineage(snapshotOf(t, long, "long.db"), snapshotOf(t, short, "short.db")); err != nil || v.Same || !strings.Contains(v.Reason, "raft index went back") {
		t.Fatalf("raft index: %+v %v", v, err)
	}
	if res, err := Diff(ctx, nightA, restored, Query{}, DiffOptions{}); err != nil || len(res.Changes) != 1 || res.Changes[0].Key != "/registry/configmaps/a/keep" {
		t.Fatalf("values compared: %+v %v", res, err)
	}
	if res, err := Diff(ctx, nightA, restored, Query{}, DiffOptions{SameLineage: true}); err != nil || len(res.Changes) != 0 {
		t.Fatalf("SameLineage trusts revisions (and is wrong across clusters, as documented): %+v %v", res, err)
	}
}

// BenchmarkDiff diffs ETCDSAFE_BENCH_DB against ETCDSAFE_BENCH_DB_NEXT
// (its next night, made there by makeNextNight if missing), or against
// itself; -benchtime=1x for one run.
// ETCDSAFE_BENCH_COMPARE=1 compares every value instead of trusting the
// lineage.
func BenchmarkDiff(b *testing.B) {
	pa := benchDB(b)
	pb := os.Getenv("ETCDSAFE_BENCH_DB_NEXT")
	if pb == "" {
		pb = pa
	} else if _, err := os.Stat(pb); errors.Is(err, os.ErrNotExist) {
		makeNextNight(b, pa, pb)
	}
	open := func(p string) *Snapshot {
		s, err := Open(p, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb := open(pa), open(pb)
	v, err := CompareLineage(sa, sb)
	if err != nil {
		b.Fatal(err)
	}
	same := v.Same && os.Getenv("ETCDSAFE_BENCH_COMPARE") == ""
	var res *DiffResult
	for b.Loop() {
		if res, err = Diff(context.Background(), sa, sb, Query{}, DiffOptions{SameLineage: same}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("lineage %v (%s): %s, compared %d, skipped %d", v.Same, v.Reason, res.Stat(), res.Compared, res.Skipped)
	b.ReportMetric(float64(len(res.Changes)), "changes")
}

// makeNextNight writes to out the "next night" of the snapshot base, as
// issue 13's benchmark describes it, straight into a copy of its db (no
// etcd: a minute for a 1M-object file, where replaying it through etcd
// takes an hour): 1% of the live objects that decode without a key
// modified (an annotation added, stored as JSON), 0.1% deleted, 0.1% added
// (copies under new names), one ConfigMap rewritten 10,000 times, each a
// revision of its own after base's newest; the raft index moves on as
// much; a SHA-256 trailer as etcd's snapshots have.
func makeNextNight(tb testing.TB, base, out string) {
	tb.Helper()
	ctx := context.Background()
	s, err := Open(base, OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	es, _, err := s.Index(ctx, Query{})
	if err != nil {
		tb.Fatal(err)
	}
	tmp := out + ".tmp"
	if err := s.tx.CopyFile(tmp, 0o600); err != nil {
		tb.Fatal(err)
	}
	rev, err := s.Revision()
	if err != nil {
		tb.Fatal(err)
	}
	dec := decode.NewDecoder(nil)
	db, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	writes := 0
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketKey)
		bk.FillPercent = 1
		put := func(kv *mvccpb.KeyValue, tomb bool) error {
			rev++
			writes++
			kv.ModRevision = rev
			b, err := proto.Marshal(kv)
			if err != nil {
				return err
			}
			return bk.Put(decode.Revision{Main: rev, Tombstone: tomb}.Bytes(), b)
		}
		edited := func(e *Entry, note string) ([]byte, bool) {
			rec, err := s.Get(e.Rev)
			if err != nil {
				return nil, false
			}
			v, err := dec.Decode(rec.Key, rec.Value)
			if err != nil {
				return nil, false // encrypted, or not an object
			}
			obj := v.Object.DeepCopy()
			ann := obj.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann["bench.etcdsafe.io/night"] = note
			obj.SetAnnotations(ann)
			b, err := json.Marshal(obj.Object)
			return b, err == nil
		}
		churn := -1
		for i := range es {
			e := &es[i]
			switch {
			case i%100 == 1:
				if b, ok := edited(e, "2"); ok {
					if err := put(&mvccpb.KeyValue{Key: []byte(e.Key), CreateRevision: e.CreateRevision, Version: e.Version + 1, Value: b}, false); err != nil {
						return err
					}
					if churn < 0 && strings.Contains(e.Key, "/configmaps/") {
						churn = i
					}
				}
			case i%1000 == 7:
				if err := put(&mvccpb.KeyValue{Key: []byte(e.Key)}, true); err != nil {
					return err
				}
			case i%1000 == 13:
				rec, err := s.Get(e.Rev)
				if err != nil {
					return err
				}
				k := []byte(e.Key + "-next")
				if err := put(&mvccpb.KeyValue{Key: k, CreateRevision: rev + 1, Version: 1, Value: rec.Value}, false); err != nil {
					return err
				}
			}
		}
		if churn >= 0 {
			e := &es[churn]
			for n := range 10000 {
				b, ok := edited(e, fmt.Sprint(n))
				if !ok {
					return fmt.Errorf("churn key %s", e.Key)
				}
				if err := put(&mvccpb.KeyValue{Key: []byte(e.Key), CreateRevision: e.CreateRevision, Version: e.Version + 2 + int64(n), Value: b}, false); err != nil {
					return err
				}
			}
		}
		meta := tx.Bucket(bucketMeta)
		ci, _ := decode.ParseUint64(meta.Get([]byte("consistent_index")))
		return meta.Put([]byte("consistent_index"), binary.BigEndian.AppendUint64(nil, ci+uint64(writes)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(h.Sum(nil)); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: %d writes after revision %d", out, writes, rev-int64(writes))
}
