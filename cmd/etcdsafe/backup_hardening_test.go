package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
	"github.com/etcdsafe/etcdsafe/store"
)

// TestBackupSameSecond: two backups named from the same second both
// succeed; the second gets _02 and list and prune order it first.
func TestBackupSameSecond(t *testing.T) {
	_, recip := keyPair(t, true)
	out := t.TempDir()
	at := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	testOnlyNow = func() time.Time { return at }
	defer func() { testOnlyNow = time.Now }()
	var names []string
	for range 3 {
		stdout, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "-r", recip, "--out", out, "--cluster", "c")
		if code != 0 {
			t.Fatalf("exit %d %s", code, stderr)
		}
		names = append(names, filepath.Base(strings.TrimSpace(stdout)))
	}
	want := []string{"c-20260601T020000Z.tar.zst.age", "c-20260601T020000Z_02.tar.zst.age", "c-20260601T020000Z_03.tar.zst.age"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("names %v, want %v", names, want)
	}
	entries, err := backup.List(t.Context(), store.NewLocal(out))
	if err != nil || len(entries) != 3 || entries[0].Name != want[2] || entries[2].Name != want[0] {
		t.Fatalf("scan order %+v %v", entries, err)
	}
	if lout, _, code := runCLI(t, "prune", out, "--keep-last", "1"); code != 0 || !strings.Contains(lout, "keep          2026-06-01 02:00:00  "+want[2]) {
		t.Fatalf("prune: %d\n%s", code, lout)
	}
}

// TestBackupPassphraseFile: a blank first line is named as such; no
// passphrase byte appears in the message.
func TestBackupPassphraseFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"blank first line", "\nhunter2-secret\n", "first line of passphrase file"},
		{"CRLF blank first line", "\r\nhunter2-secret\r\n", "first line of passphrase file"},
		{"empty", "", "is empty"},
		{"only newlines", "\n\n", "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf := filepath.Join(t.TempDir(), "pass")
			if err := os.WriteFile(pf, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			_, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "--passphrase-file", pf, "--out", out)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "hunter2") {
				t.Fatalf("exit %d, want 2 and %q:\n%s", code, tc.want, stderr)
			}
			if got := archivesIn(t, out); len(got) != 0 {
				t.Fatalf("files written: %v", got)
			}
		})
	}
}

// TestBackupRawDBPageCheck: a raw db (no trailer) with a zeroed page that
// bbolt's check sees is refused with exit 3 and no archive; one whose
// zeroed page is free is archived. A snapshot with a valid trailer is not
// page-checked.
func TestBackupRawDBPageCheck(t *testing.T) {
	t.Parallel()
	snap, err := os.ReadFile(filepath.Join(realDir, "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw := snap[:len(snap)-32] // the trailer off: a copy of member/snap/db
	const page = 4096
	refused := 0
	for i := 2; i*page < len(raw); i++ {
		b := append([]byte(nil), raw...)
		clear(b[i*page : (i+1)*page])
		p := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		damaged := testfix.BboltSeesDamage(t, p)
		out := t.TempDir()
		_, stderr, code := runCLI(t, "backup", "--from-db", p, "--kube-dir", "", "--insecure-no-encryption", "--out", out)
		switch {
		case damaged && (code != exitIntegrity || len(archivesIn(t, out)) != 0):
			t.Fatalf("page %d zeroed: exit %d, %d files; want 3 and none\n%s", i, code, len(archivesIn(t, out)), stderr)
		case !damaged && code != 0:
			t.Fatalf("page %d (free) zeroed: exit %d\n%s", i, code, stderr)
		case damaged:
			refused++
		}
	}
	if refused < 20 {
		t.Fatalf("only %d damaged copies: the fixture does not exercise the check", refused)
	}
	t.Logf("%d of %d zeroed pages refused", refused, len(raw)/page-2)
	_, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "--insecure-no-encryption", "--out", t.TempDir())
	if code != 0 || strings.Contains(stderr, "page check") {
		t.Fatalf("snapshot with a trailer: exit %d, page-checked:\n%s", code, stderr)
	}
}

// TestBackupKubeDirTooLarge: a kube dir whose manifest would pass the
// format's bound is refused before any snapshot is taken (the endpoint
// given is never dialled), with the counts and the limit.
func TestBackupKubeDirTooLarge(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	kd := testfix.BigKubeDir(t)
	out := t.TempDir()
	_, stderr, code := runCLI(t, "backup", "--endpoints", "http://127.0.0.1:1", "--kube-dir", kd, "-r", recip, "--out", out)
	if code != exitFailure || !strings.Contains(stderr, "1014 entries") || !strings.Contains(stderr, fmt.Sprint(archive.MaxManifestSize)) ||
		strings.Contains(stderr, "127.0.0.1:1") || !strings.Contains(stderr, "--exclude") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if got := archivesIn(t, out); len(got) != 0 {
		t.Fatalf("files written: %v", got)
	}
	// Excluding the deep part makes the same backup work.
	if _, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kd, "--exclude", "<*", "-r", recip, "--out", out); code != 0 {
		t.Fatalf("with --exclude: exit %d\n%s", code, stderr)
	}
}

// TestBackupTmpDirInsideOut: staging inside the backup dir is refused.
func TestBackupTmpDirInsideOut(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	out := t.TempDir()
	for _, tmp := range []string{out, filepath.Join(out, "staging")} {
		_, stderr, code := runCLI(t, "backup", "--endpoints", "http://127.0.0.1:1", "--kube-dir", "", "-r", recip, "--out", out, "--tmp-dir", tmp)
		if code != exitUsage || !strings.Contains(stderr, "inside the output directory") {
			t.Fatalf("--tmp-dir %s: exit %d\n%s", tmp, code, stderr)
		}
	}
}

// TestPruneGroups: two masters in one directory keep their own newest;
// list shows the cluster and host of each.
func TestPruneGroups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 2, 0, 0, 0, time.UTC) }
	for d := 1; d <= 4; d++ {
		writeFakeBackupOf(t, dir, day(d), "prod", "m1", backup.ArchiveName("prod-m1", "", day(d), true))
	}
	writeFakeBackupOf(t, dir, day(1), "prod", "m2", backup.ArchiveName("prod-m2", "", day(1), true))
	lout, _, code := runCLI(t, "list", dir)
	if code != 0 || !strings.Contains(lout, "CLUSTER") || !strings.Contains(lout, "prod     m2") {
		t.Fatalf("list: %d\n%s", code, lout)
	}
	pout, stderr, code := runCLI(t, "prune", dir, "--keep-last", "2")
	if code != 0 {
		t.Fatalf("prune: %d %s", code, stderr)
	}
	for _, s := range []string{"backups of cluster=prod host=m1:", "backups of cluster=prod host=m2:"} {
		if !strings.Contains(pout, s) {
			t.Errorf("prune output lacks %q:\n%s", s, pout)
		}
	}
	left := strings.Join(archivesIn(t, dir), " ")
	for _, n := range []string{backup.ArchiveName("prod-m1", "", day(4), true), backup.ArchiveName("prod-m1", "", day(3), true), backup.ArchiveName("prod-m2", "", day(1), true)} {
		if !strings.Contains(left, n) {
			t.Errorf("%s deleted; left %s", n, left)
		}
	}
	if strings.Contains(left, backup.ArchiveName("prod-m1", "", day(2), true)) {
		t.Errorf("m1's third newest kept: %s", left)
	}
	// --group-by none treats the directory as one series, as before.
	pout, _, code = runCLI(t, "prune", dir, "--keep-last", "1", "--group-by", "none", "--dry-run")
	if code != 0 || strings.Count(pout, "would remove") != 2 {
		t.Fatalf("group-by none: %d\n%s", code, pout)
	}
	if _, _, code := runCLI(t, "prune", dir, "--keep-last", "1", "--group-by", "tag"); code != exitUsage {
		t.Fatalf("bad --group-by: exit %d", code)
	}
}

// TestBackupKeepsCurrentDespiteFutureSidecars: sidecars dated ahead (clock
// skew) never make --keep-last delete the archive just written, and are
// reported; other masters' backups are not touched by this run.
func TestBackupKeepsCurrentDespiteFutureSidecars(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	out := t.TempDir()
	host, _ := os.Hostname()
	future := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Hour)
	for i := range 3 {
		at := future.Add(time.Duration(i) * time.Hour)
		writeFakeBackupOf(t, out, at, "c", host, backup.ArchiveName("c", "", at, true))
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	other := writeFakeBackupOf(t, out, old, "c", "another-master", backup.ArchiveName("c-other", "", old, true))
	stdout, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "-r", recip,
		"--out", out, "--keep-last", "2", "--cluster", "c")
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	arch := strings.TrimSpace(stdout)
	if _, err := os.Stat(arch); err != nil {
		t.Fatalf("the archive just written was deleted: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, other)); err != nil {
		t.Fatalf("another master's backup was deleted: %v", err)
	}
	if !strings.Contains(stderr, "dated in the future") {
		t.Errorf("no clock-skew warning:\n%s", stderr)
	}
	if n := len(archivesIn(t, out)); n != 2*(2+1+1) {
		t.Fatalf("left %d files, want the 2 newest, the current and the other master's (with sidecars): %v", n, archivesIn(t, out))
	}
}

// TestPruneSweepsTempsAndCleansNames: prune removes killed runs' partial
// archives (dry run only lists them) and prints hostile names escaped.
func TestPruneSweepsTempsAndCleansNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	evil := "evil\x1b]0;pwned\x07\u202e-20260301T020000Z.tar.zst.age"
	writeFakeBackupOf(t, dir, at, "c\x1b[31m", "h\u202e", evil)
	tmp := filepath.Join(dir, ".c-20260302T020000Z.tar.zst.age.tmp-12345")
	other := filepath.Join(dir, ".notes.txt.tmp-1")
	for _, p := range []string{tmp, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, code := runCLI(t, "prune", dir, "--keep-last", "1", "--dry-run")
	if code != 0 || !strings.Contains(stderr, "would remove partial archive") {
		t.Fatalf("dry run: %d\n%s", code, stderr)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal("dry run removed the partial archive")
	}
	pout, stderr, code := runCLI(t, "prune", dir, "--keep-last", "1")
	if code != 0 || !strings.Contains(stderr, "remove partial archive "+tmp) {
		t.Fatalf("prune: %d\n%s", code, stderr)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Fatal("partial archive not removed")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("an unrelated temp file was removed")
	}
	lout, _, _ := runCLI(t, "list", dir)
	for name, out := range map[string]string{"prune": pout, "list": lout} {
		if strings.ContainsAny(out, "\x1b\x07\u202e") || !strings.Contains(out, `\x1b`) {
			t.Errorf("%s prints raw control characters:\n%q", name, out)
		}
	}
}
