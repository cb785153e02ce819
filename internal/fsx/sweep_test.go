package fsx

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestTempBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base string
		ok         bool
	}{
		{".a.tar.zst.age.tmp-123", "a.tar.zst.age", true},
		{".a.tar.zst.age.json.tmp-9", "a.tar.zst.age.json", true},
		{".x.tmp-1.tmp-22", "x.tmp-1", true},
		{"a.tar.zst.age.tmp-1", "", false},
		{".a.tmp-", "", false},
		{".a.tmp-12x", "", false},
		{".tmp-1", "", false},
		{".a.tar.zst.age", "", false},
	}
	for _, tc := range tests {
		base, ok := TempBase(tc.name)
		if base != tc.base || ok != tc.ok {
			t.Errorf("TempBase(%q) = %q, %v; want %q, %v", tc.name, base, ok, tc.base, tc.ok)
		}
	}
}

func TestSweepTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Temp files as Create makes them, left by a killed run.
	var want []string
	for _, final := range []string{"m1-20260101T000000Z.tar.zst.age", "m1-20260101T000000Z.tar.zst.age.json"} {
		f, err := Create(filepath.Join(dir, final), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, f.Name())
	}
	keep := []string{".other.tmp-1", "m1.tar.zst.age", ".lock", ".x.tar.zst.age.tmp-1b"}
	for _, n := range keep {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory with a matching name is not touched.
	if err := os.Mkdir(filepath.Join(dir, ".d.tar.zst.age.tmp-5"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := SweepTemps(dir, func(base string) bool { return strings.Contains(base, ".tar.zst") })
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("removed %v, want %v", got, want)
	}
	des, _ := os.ReadDir(dir)
	var left []string
	for _, de := range des {
		left = append(left, de.Name())
	}
	if len(left) != len(keep)+1 {
		t.Fatalf("left %v", left)
	}
}
