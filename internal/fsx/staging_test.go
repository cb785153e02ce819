//go:build unix

package fsx

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStagingSweep(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	live, err := NewStaging(parent, "etcdsafe-x-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Remove() }()
	if st, err := os.Stat(live.Path); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("staging dir mode: %v %v", st.Mode(), err)
	}
	// a run killed before its cleanup: the dir and its plaintext stay,
	// the flock is gone with the process (here: its descriptor closed)
	dead, err := NewStaging(parent, "etcdsafe-x-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead.Path, "snapshot.db"), []byte("plaintext"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = dead.lock.Close()
	// an older etcdsafe's leftover without a lock file: removed once old
	old := filepath.Join(parent, "etcdsafe-x-old")
	young := filepath.Join(parent, "etcdsafe-x-young")
	other := filepath.Join(parent, "other-dir")
	emptyOld := filepath.Join(parent, "etcdsafe-x-empty") // killed between mkdir and lock
	for _, d := range []string{old, young, other, emptyOld} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(young, "snapshot.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoMinutes := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(emptyOld, twoMinutes, twoMinutes); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(young, twoMinutes, twoMinutes); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * staleUnlocked)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, past, past); err != nil {
		t.Fatal(err)
	}

	removed, err := SweepStaging(parent, "etcdsafe-x-")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{dead.Path: true, old: true, emptyOld: true}
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, r := range removed {
		if !want[r] {
			t.Errorf("removed %s", r)
		}
	}
	for _, d := range []string{live.Path, young, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v (must be kept)", d, err)
		}
	}
	if _, err := os.Stat(dead.Path); !os.IsNotExist(err) {
		t.Errorf("dead staging dir still there: %v", err)
	}
	p := live.Path
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", p)
	}
	if err := live.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestSweepStagingMissingParent(t *testing.T) {
	t.Parallel()
	removed, err := SweepStaging(filepath.Join(t.TempDir(), "nope"), "x-")
	if err != nil || len(removed) != 0 {
		t.Fatalf("got %v, %v", removed, err)
	}
}
