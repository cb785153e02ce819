package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/store"
)

// TestList: newest first; an archive without a sidecar, or whose sidecar
// names another archive, is listed with its file time and the reason;
// temp files, sidecars alone and other files are not archives.
func TestList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 2, 0, 0, 0, time.UTC) }
	a := fakeBackup(t, dir, day(1), "c", "h", ArchiveName("c", "", day(1), true))
	b := fakeBackup(t, dir, day(2), "c", "h", ArchiveName("c", "", day(2), true))
	wrong := ArchiveName("c", "", day(3), false)
	if err := os.WriteFile(filepath.Join(dir, wrong), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// wrong's sidecar is a copy of a's, naming a.
	sb, _ := os.ReadFile(filepath.Join(dir, a+".json"))
	if err := os.WriteFile(filepath.Join(dir, wrong+".json"), sb, 0o600); err != nil {
		t.Fatal(err)
	}
	orphan := "old-manual.tar.zst.age"
	for _, n := range []string{orphan, ".x.tar.zst.age.tmp-1", "notes.txt", "lone.tar.zst.age.json"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(dir, orphan), future, future)
	got, err := List(t.Context(), store.NewLocal(dir))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range got {
		order = append(order, e.Name)
	}
	if want := []string{orphan, wrong, b, a}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if got[0].Sidecar != nil || !errors.Is(got[0].SidecarErr, fs.ErrNotExist) {
		t.Errorf("orphan: %+v", got[0])
	}
	if got[1].Sidecar != nil || got[1].SidecarErr == nil || !strings.Contains(got[1].SidecarErr.Error(), "not this archive") {
		t.Errorf("wrong sidecar: %+v", got[1])
	}
	if got[2].Sidecar == nil || !got[2].Time.Equal(day(2)) || got[2].Where != filepath.Join(dir, b) {
		t.Errorf("b: %+v", got[2])
	}
	// the newest archive a backup published: the orphan and the one whose
	// sidecar names another are skipped, whatever their file times
	if n, ok := Newest(got); !ok || n.Name != b {
		t.Errorf("Newest = %q, %v; want %q", n.Name, ok, b)
	}
	// gathered from several targets, in any order
	if n, ok := Newest([]Entry{got[3], got[1], got[2], got[0]}); !ok || n.Name != b {
		t.Errorf("Newest of shuffled = %q, %v; want %q", n.Name, ok, b)
	}
	if _, ok := Newest(got[:2]); ok {
		t.Error("Newest found an archive among those without a usable sidecar")
	}
	if _, err := List(t.Context(), store.NewLocal(filepath.Join(dir, "missing"))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

// TestPrune: decisions on a table of dates, dry run, deletion of archive
// and sidecar, archives without sidecars kept.
func TestPrune(t *testing.T) {
	t.Parallel()
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	dates := []time.Time{day(1, 2), day(2, 2), day(3, 2), day(3, 14), day(9, 2), day(10, 2)} // 1 Mar is a Sunday
	tests := []struct {
		name   string
		policy archive.RetentionPolicy
		keep   []time.Time
	}{
		{"last 2", archive.RetentionPolicy{Last: 2}, []time.Time{day(10, 2), day(9, 2)}},
		{"daily 3", archive.RetentionPolicy{Daily: 3}, []time.Time{day(10, 2), day(9, 2), day(3, 14)}},
		{"weekly 2", archive.RetentionPolicy{Weekly: 2}, []time.Time{day(10, 2), day(3, 14)}},
		{"weekly all", archive.RetentionPolicy{Weekly: -1}, []time.Time{day(10, 2), day(3, 14), day(1, 2)}},
		{"last 1 monthly 1", archive.RetentionPolicy{Last: 1, Monthly: 1}, []time.Time{day(10, 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range dates {
				fakeBackup(t, dir, d, "", "", ArchiveName("c", "h", d, true))
			}
			orphan := "old-manual.tar.zst.age"
			if err := os.WriteFile(filepath.Join(dir, orphan), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := names(t, dir)
			dry, err := Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: tc.policy, DryRun: true})
			if err != nil || fmt.Sprint(names(t, dir)) != fmt.Sprint(before) {
				t.Fatalf("dry run: %v, or deleted files", err)
			}
			removals := 0
			for _, d := range dry.Decisions {
				if !d.Keep {
					removals++
				}
			}
			if removals != len(dates)-len(tc.keep) || len(dry.Removed) != 0 {
				t.Errorf("dry run: %d removals, want %d; removed %v", removals, len(dates)-len(tc.keep), dry.Removed)
			}
			res, err := Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Unmanaged) != "["+orphan+"]" || len(res.Removed) != len(dates)-len(tc.keep) {
				t.Errorf("unmanaged %v, removed %v", res.Unmanaged, res.Removed)
			}
			want := []string{orphan}
			for _, k := range tc.keep {
				n := ArchiveName("c", "h", k, true)
				want = append(want, n, n+".json")
			}
			got := names(t, dir)
			if len(got) != len(want) {
				t.Fatalf("left %v, want %v", got, want)
			}
			for _, w := range want {
				if !strings.Contains(strings.Join(got, " "), w) {
					t.Fatalf("left %v, want %v", got, want)
				}
			}
		})
	}
	if _, err := Prune(t.Context(), store.NewLocal(t.TempDir()), PruneOptions{}); err == nil {
		t.Fatal("empty policy accepted")
	}
}

// TestPruneGroups: two masters in one directory keep their own newest by
// default grouping; with none, one series.
func TestPruneGroups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 2, 0, 0, 0, time.UTC) }
	for d := 1; d <= 4; d++ {
		fakeBackup(t, dir, day(d), "prod", "m1", ArchiveName("prod-m1", "", day(d), true))
	}
	fakeBackup(t, dir, day(1), "prod", "m2", ArchiveName("prod-m2", "", day(1), true))
	res, err := Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: archive.RetentionPolicy{Last: 1}, GroupBy: archive.GroupBy{}, DryRun: true})
	if err != nil || len(res.Decisions) != 5 || res.Decisions[0].Group != "all" {
		t.Fatalf("group-by none: %+v %v", res, err)
	}
	res, err = Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: archive.RetentionPolicy{Last: 2}, GroupBy: archive.DefaultGroupBy})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Removed) != fmt.Sprint([]string{ArchiveName("prod-m1", "", day(2), true), ArchiveName("prod-m1", "", day(1), true)}) {
		t.Fatalf("removed %v", res.Removed)
	}
	groups := map[string]bool{}
	for _, d := range res.Decisions {
		groups[d.Group] = true
	}
	if !groups["cluster=prod host=m1"] || !groups["cluster=prod host=m2"] {
		t.Fatalf("groups %v", groups)
	}
}

// TestRunKeepsCurrentDespiteFutureSidecars: sidecars dated ahead (clock
// skew) never make Keep delete the archive just written, and are
// reported; other masters' backups are not touched by the run.
func TestRunKeepsCurrentDespiteFutureSidecars(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	future := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Hour)
	for i := range 3 {
		at := future.Add(time.Duration(i) * time.Hour)
		fakeBackup(t, dir, at, "c", "h", ArchiveName("c", "", at, true))
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	other := fakeBackup(t, dir, old, "c", "another-master", ArchiveName("c-other", "", old, true))
	o := fileOptions(dir, identity(t))
	o.Keep, o.GroupBy = archive.RetentionPolicy{Last: 2}, archive.DefaultGroupBy
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.Where); err != nil {
		t.Fatalf("the archive just written was deleted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
		t.Fatalf("another master's backup was deleted: %v", err)
	}
	if len(res.Pruned.Future) != 3 || len(res.Pruned.Removed) != 1 {
		t.Errorf("pruned %+v", res.Pruned)
	}
	if n := len(names(t, dir)); n != 2*(2+1+1)+1 { // and the current one's key index
		t.Fatalf("left %d files, want the 2 newest, the current and the other master's (with sidecars): %v", n, names(t, dir))
	}
}

// TestPruneSweepsPartials: Prune removes killed runs' partial archives and
// sidecars (a dry run only lists them), never other temp files.
func TestPruneSweepsPartials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fakeBackup(t, dir, time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC), "c", "h", "c-20260301T020000Z.tar.zst.age")
	partials := []string{filepath.Join(dir, ".c-20260302T020000Z.tar.zst.age.json.tmp-7"), filepath.Join(dir, ".c-20260302T020000Z.tar.zst.age.tmp-12345")} // directory order
	other := filepath.Join(dir, ".notes.txt.tmp-1")
	for _, p := range append(partials, other) {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: archive.RetentionPolicy{Last: 1}, DryRun: true})
	if err != nil || fmt.Sprint(res.Partials) != fmt.Sprint(partials) {
		t.Fatalf("dry run: %v %v", res.Partials, err)
	}
	for _, p := range partials {
		if _, err := os.Stat(p); err != nil {
			t.Fatal("dry run removed a partial archive")
		}
	}
	res, err = Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: archive.RetentionPolicy{Last: 1}})
	if err != nil || len(res.Partials) != 2 {
		t.Fatalf("prune: %v %v", res.Partials, err)
	}
	for _, p := range partials {
		if _, err := os.Stat(p); err == nil {
			t.Fatal("partial archive not removed")
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("an unrelated temp file was removed")
	}
}
