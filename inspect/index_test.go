package inspect

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// indexReference is Index as first written: one sequential walk, a map
// from key to its newest record. The parallel, sorting Index must return
// exactly what it does.
func indexReference(t *testing.T, s *Snapshot, q Query) []Entry {
	t.Helper()
	idx := map[string]*Entry{}
	_, err := s.walk(context.Background(), q.Revision, func(rev decode.Revision, v []byte) error {
		kv, err := decode.ParseKeyValue(v)
		if err != nil || !q.match(kv.Key) {
			return err
		}
		e, seen := idx[string(kv.Key)]
		if rev.Tombstone {
			if seen {
				if q.Deleted {
					e.Deleted, e.DeletedRevision = true, rev.Main
				} else {
					delete(idx, string(kv.Key))
				}
			}
			return nil
		}
		idx[string(kv.Key)] = &Entry{Key: string(kv.Key), Rev: rev, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision,
			Version: kv.Version, Lease: kv.Lease, ValueSize: int32(len(kv.Value)), enc: providers.id(kv.Value)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for _, e := range idx {
		if e.Deleted == q.Deleted {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// TestIndexMatchesReference writes keys with history, deletions,
// re-creations, leases and encrypted values into a real etcd, and checks
// Index against the reference on its snapshot, serial and with every
// parallel path forced: many walkers on a small file, a shared slice too
// short (walkers fall back to blocks), parallel sorting of small slices.
//
// Not parallel: it sets the package's tuning knobs, which every other
// Index call reads (under -race, TestBumpedRestore's Index raced with it).
func TestIndexMatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	rng := rand.New(rand.NewPCG(1, 2))
	lease, err := srv.Client.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for i := range 3000 {
		key := fmt.Sprintf("/registry/%s/ns-%d/obj-%d", []string{"configmaps", "secrets", "pods", "a"}[rng.IntN(4)], rng.IntN(5), rng.IntN(400))
		switch rng.IntN(4) {
		case 0: // keys that differ right after the group prefix, and keys shorter than it
			key = fmt.Sprintf("/registry/events/n/%x", rng.IntN(1<<12))
		case 1:
			key = fmt.Sprintf("/r/%d", rng.IntN(50))
		}
		var rev int64
		switch r := rng.IntN(10); {
		case r < 2:
			resp, err := srv.Client.Delete(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		default:
			val := fmt.Sprintf("value %d", i)
			if r == 2 {
				val = fmt.Sprintf("k8s:enc:aescbc:v1:key%d:%x", rng.IntN(3), i)
			}
			resp, err := srv.Client.Put(ctx, key, val)
			if r == 3 {
				resp, err = srv.Client.Put(ctx, key, val, clientv3.WithLease(lease.ID))
			}
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		revs = append(revs, rev)
	}
	path := filepath.Join(t.TempDir(), "index.db")
	rc, err := srv.Client.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	f.Close()
	srv.Stop()

	s, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queries := map[string]Query{
		"all":           {},
		"deleted":       {Deleted: true},
		"prefix":        {Prefixes: [][]byte{[]byte("/registry/configmaps/"), []byte("/registry/a/")}},
		"exact":         {Exact: []byte("/registry/pods/ns-1/obj-7")},
		"at revision":   {Revision: revs[len(revs)/3]},
		"deleted at":    {Revision: revs[len(revs)/2], Deleted: true},
		"prefix at":     {Revision: revs[2*len(revs)/3], Prefixes: [][]byte{[]byte("/registry/secrets/")}},
		"before any":    {Revision: 1},
		"no such thing": {Prefixes: [][]byte{[]byte("/nothing/")}},
	}
	type knobs struct {
		walkers, slack, sortMin, groups int
	}
	defer func(w func(int64) int, sl, sm, mg int) {
		indexWalkers, sharedSlack, parallelSortMin, maxGroups = w, sl, sm, mg
	}(indexWalkers, sharedSlack, parallelSortMin, maxGroups)
	for name, q := range queries {
		want := indexReference(t, s, q)
		if name == "all" && (len(want) < 500 || !hasDeleted(t, s)) {
			t.Fatalf("test data too thin: %d keys", len(want))
		}
		for _, k := range []knobs{{1, entrySlab, 1 << 30, 4096}, {3, entrySlab, 64, 4096}, {5, 0, 16, 4096}, {2, 1, 1 << 30, 4096}, {3, entrySlab, 16, 3}} {
			indexWalkers = func(int64) int { return k.walkers }
			sharedSlack, parallelSortMin, maxGroups = k.slack, k.sortMin, k.groups
			got, problems, err := s.Index(ctx, q)
			if err != nil || len(problems) > 0 {
				t.Fatalf("%s %+v: %v %v", name, k, err, problems)
			}
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %+v: %d entries, want %d", name, k, len(got), len(want))
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Errorf("first difference at %d:\n got %+v\nwant %+v", i, got[i], want[i])
						break
					}
				}
			}
		}
	}
}

func hasDeleted(t *testing.T, s *Snapshot) bool {
	es, _, err := s.Index(context.Background(), Query{Deleted: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Encryption() == "identity" {
			return len(es) > 10
		}
	}
	return false
}
