package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// The member etcdtest and its cluster as a real etcd reported them for
// every bench snapshot (name etcdtest, peer http://127.0.0.1:0, token
// etcd-cluster).
func TestClusterID(t *testing.T) {
	t.Parallel()
	if got := clusterID([]uint64{0x18872ab49415b7e4}); got != 0xe75700c5e2c7c3ee {
		t.Errorf("clusterID = %x, want e75700c5e2c7c3ee", got)
	}
}

func makeBase(t *testing.T, sp spec) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	base := filepath.Join(t.TempDir(), "base.db")
	if err := run(context.Background(), sp, base); err != nil {
		t.Fatal(err)
	}
	return base
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, path string) *inspect.Snapshot {
	t.Helper()
	s, err := inspect.Open(path, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The next night is what its record says: a diff that trusts no revision
// finds exactly the counted changes, the churned key has one version per
// rewrite, and etcdsafe takes it for the next moment of the base.
func TestNextNight(t *testing.T) {
	t.Parallel()
	sp := spec{n: 1500, seed: 3, batch: 100, managed: true}
	base := makeBase(t, sp)
	next := filepath.Join(filepath.Dir(base), "base-next.db")
	if err := runContinue(context.Background(), sp, continueOptions{base: base, next: next, count: 1, churn: 300}); err != nil {
		t.Fatal(err)
	}
	var rec nextRecord
	readJSON(t, filepath.Join(filepath.Dir(base), "base-next.json"), &rec)
	if rec.Modified != 15 || rec.Deleted != 1 || rec.Added != 1 || rec.Churn.Writes != 300 {
		t.Errorf("record: %d modified, %d deleted, %d added, %d churn writes; want 15, 1, 1, 300", rec.Modified, rec.Deleted, rec.Added, rec.Churn.Writes)
	}
	if rec.Diff.Modified != rec.Modified+1 || rec.Revision <= rec.BaseRevision || rec.MemberID != "18872ab49415b7e4" || rec.Lineage == "" {
		t.Errorf("record: %+v", rec)
	}
	ctx := context.Background()
	a, b := open(t, base), open(t, next)
	res, err := inspect.Diff(ctx, a, b, inspect.Query{Prefixes: [][]byte{[]byte("/registry/")}}, inspect.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[inspect.ChangeKind]int{}
	for _, c := range res.Changes {
		got[c.Kind]++
	}
	want := map[inspect.ChangeKind]int{inspect.Added: rec.Diff.Added, inspect.Deleted: rec.Diff.Deleted, inspect.Modified: rec.Diff.Modified}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff of base and next night: %v, record says %v", got, want)
	}
	v, err := inspect.CompareLineage(a, b)
	if err != nil || !v.Same {
		t.Errorf("lineage of base and next night: %+v, %v", v, err)
	}
	ea, _, err := a.Index(ctx, inspect.Query{Exact: []byte(rec.Churn.Key)})
	if err != nil {
		t.Fatal(err)
	}
	eb, _, err := b.Index(ctx, inspect.Query{Exact: []byte(rec.Churn.Key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ea) != 1 || len(eb) != 1 || eb[0].Version != ea[0].Version+300 || eb[0].CreateRevision != ea[0].CreateRevision {
		t.Errorf("churned key %s: %+v then %+v, want 300 more versions", rec.Churn.Key, ea, eb)
	}
}

// Each night goes on from the one before, and the timeline object
// changes on the planned nights only.
func TestNights(t *testing.T) {
	t.Parallel()
	sp := spec{n: 1200, seed: 4, batch: 100, managed: false}
	base := makeBase(t, sp)
	dir := filepath.Join(filepath.Dir(base), "nights")
	if err := runContinue(context.Background(), sp, continueOptions{base: base, nights: dir, count: 5}); err != nil {
		t.Fatal(err)
	}
	var rec nightsRecord
	readJSON(t, filepath.Join(dir, "nights.json"), &rec)
	if len(rec.Nights) != 5 || fmt.Sprint(rec.Object.Nights) != "[4]" || len(rec.Object.Versions) != 1 {
		t.Fatalf("record: %+v", rec)
	}
	prev := base
	prevRev := rec.BaseRevision
	for _, n := range rec.Nights {
		p := filepath.Join(dir, n.File)
		if n.Revision <= prevRev || n.Modified != 1 || n.Deleted != 1 || n.Added != 1 {
			t.Errorf("night %d: %+v (night before at revision %d)", n.Night, n, prevRev)
		}
		if v := rec.Object.Versions[0]; n.Night == 4 && (v.Revision <= prevRev || v.Revision > n.Revision) {
			t.Errorf("object changed at revision %d, not during night 4 (%d..%d]", v.Revision, prevRev, n.Revision)
		}
		if n.Night > 1 {
			v, err := inspect.CompareLineage(open(t, prev), open(t, p))
			if err != nil || !v.Same {
				t.Errorf("night %d after night %d: %+v, %v", n.Night, n.Night-1, v, err)
			}
		}
		e, _, err := open(t, p).Index(context.Background(), inspect.Query{Exact: []byte(rec.Object.Key)})
		if err != nil || len(e) != 1 {
			t.Fatalf("%s in night %d: %v %v", rec.Object.Key, n.Night, e, err)
		}
		if changed := e[0].ModRevision > rec.BaseRevision; changed != (n.Night >= 4) {
			t.Errorf("night %d: %s at mod revision %d", n.Night, rec.Object.Key, e[0].ModRevision)
		}
		prev, prevRev = p, n.Revision
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".nights.part-*")); len(left) > 0 {
		t.Errorf("partial nights dirs left: %v", left)
	}
}

// A base made with another spec is refused: the replay would not match
// what etcd holds, and the changes would start from a wrong state.
func TestContinueChecksTheBase(t *testing.T) {
	t.Parallel()
	base := makeBase(t, spec{n: 500, seed: 5, batch: 100, managed: false})
	next := filepath.Join(filepath.Dir(base), "next.db")
	err := runContinue(context.Background(), spec{n: 500, seed: 6, batch: 100, managed: false}, continueOptions{base: base, next: next, count: 1, churn: 10})
	if err == nil || !strings.Contains(err.Error(), "was not made by mkbench -n 500 -seed 6") {
		t.Fatalf("continue with another seed: %v", err)
	}
	if _, err := os.Stat(next); err == nil {
		t.Error("next night written from a wrong base")
	}
}
