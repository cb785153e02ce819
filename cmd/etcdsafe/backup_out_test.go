package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupOutMissingDir: --out naming a directory that was never created
// is refused (a nightly job would otherwise write one file named like the
// directory, which list and prune never see); a new file named like an
// archive is written.
func TestBackupOutMissingDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(realDir, "snapshot.db")
	_, stderr, code := runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--out", filepath.Join(dir, "backups"))
	if code != exitUsage || !strings.Contains(stderr, "create the directory") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	file := filepath.Join(dir, "m1.tar.zst")
	if _, stderr, code := runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--out", file); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("archive: %v", err)
	}
}

// TestBackupCompression: every --compression level writes an archive that
// verifies and holds the same snapshot; a higher level a smaller one; an
// unknown level is a usage error.
func TestBackupCompression(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(realDir, "snapshot.db")
	sizes := map[string]int64{}
	for _, level := range []string{"fastest", "default", "best"} {
		out := filepath.Join(dir, level+".tar.zst")
		if _, stderr, code := runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--compression", level, "--out", out); code != 0 {
			t.Fatalf("%s: exit %d: %s", level, code, stderr)
		}
		if _, stderr, code := runCLI(t, "verify", out, "--allow-unencrypted"); code != 0 {
			t.Fatalf("%s: verify exit %d: %s", level, code, stderr)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		sizes[level] = st.Size()
	}
	if !(sizes["best"] < sizes["default"] && sizes["default"] <= sizes["fastest"]) {
		t.Errorf("archive sizes %v: want best < default <= fastest", sizes)
	}
	if _, stderr, code := runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--compression", "max", "--out", filepath.Join(dir, "x.tar.zst")); code != exitUsage || !strings.Contains(stderr, "--compression") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
