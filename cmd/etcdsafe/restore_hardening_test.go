package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/fsx"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// restoreArchive backs up demo.db and kube (encrypted to a new key, or
// unencrypted) and returns the archive and the key file ("" unencrypted).
func restoreArchive(t *testing.T, kube string, encrypted bool) (arch, key string) {
	t.Helper()
	dir := t.TempDir()
	arch = filepath.Join(dir, "backup.tar.zst")
	args := []string{"backup", "--from-db", demoDB, "--kube-dir", kube}
	if encrypted {
		key = filepath.Join(dir, "key.txt")
		stdout, stderr, code := runCLI(t, "keygen", "-o", key, "--x25519")
		if code != 0 {
			t.Fatalf("keygen: %d %s", code, stderr)
		}
		recipient := strings.TrimSpace(stdout)
		if i := strings.LastIndex(recipient, "age1"); i >= 0 {
			recipient = strings.Fields(recipient[i:])[0]
		}
		arch += ".age"
		args = append(args, "-r", recipient)
	} else {
		args = append(args, "--insecure-no-encryption")
	}
	if _, stderr, code := runCLI(t, append(args, "--out", arch)...); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	return arch, key
}

// kubeWithEtcdManifest makes a kube dir whose manifests/etcd.yaml runs
// etcd with name and dataDir, plus the extra files.
func kubeWithEtcdManifest(t *testing.T, name, dataDir string, extra map[string]string) string {
	t.Helper()
	kube := t.TempDir()
	for _, d := range []string{"manifests", "pki"} {
		if err := os.MkdirAll(filepath.Join(kube, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// strconv.Quote's escapes (\x1b, \a) are YAML double-quoted escapes too.
	man := "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n" +
		"    - " + strconv.Quote("--name="+name) + "\n" +
		"    - " + strconv.Quote("--data-dir="+dataDir) + "\n" +
		"    - --initial-advertise-peer-urls=http://127.0.0.1:1\n"
	files := map[string]string{"manifests/etcd.yaml": man}
	for k, v := range extra {
		files[k] = v
	}
	for rel, content := range files {
		if err := os.WriteFile(filepath.Join(kube, rel), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return kube
}

// TestRestoreCLIDataDirRules: a data dir that is not etcd's is refused
// (exit 2, nothing moved); the archive's manifest only proposes a data dir,
// which a dry run shows and a restore wants confirmed (exit 2); an empty
// dir is replaced and never called "the old data dir".
func TestRestoreCLIDataDirRules(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	victim := filepath.Join(work, "home")
	if err := os.MkdirAll(filepath.Join(victim, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(work, "etcd.conf")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	kube := kubeWithEtcdManifest(t, "m1", victim, nil)
	arch, key := restoreArchive(t, kube, true)
	kubeDst := filepath.Join(work, "k")
	before := []string{"etcd.conf", "home"}

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"typo names a foreign dir", []string{"restore", demoDB, "--data-dir", victim}, exitUsage,
			[]string{"neither empty nor an etcd data dir", `".ssh"`, "nothing was moved"}},
		{"a file", []string{"restore", demoDB, "--data-dir", file}, exitUsage, []string{"is a file", "nothing was moved"}},
		{"archive's manifest names it, no --data-dir", []string{"restore", arch, "-i", key, "--kube-dir", kubeDst}, exitUsage,
			[]string{"the archive's kubernetes/manifests/etcd.yaml names " + victim, "pass --data-dir " + victim + " to confirm"}},
		{"archive's manifest names it, dry run", []string{"restore", arch, "-i", key, "--kube-dir", kubeDst, "--dry-run"}, exitUsage,
			[]string{"neither empty nor an etcd data dir", "nothing was moved"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if got := testfix.ListNames(t, work); !slices.Equal(got, before) {
				t.Fatalf("work dir now %v", got)
			}
			if got := testfix.ListNames(t, victim); !slices.Equal(got, []string{".ssh"}) {
				t.Fatalf("victim now %v", got)
			}
		})
	}

	t.Run("dry run shows a candidate", func(t *testing.T) {
		cand := filepath.Join(work, "fresh", "etcd")
		if err := os.Mkdir(filepath.Dir(cand), 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(filepath.Dir(cand))
		arch, key := restoreArchive(t, kubeWithEtcdManifest(t, "m1", cand, nil), true)
		stdout, stderr, code := runCLI(t, "restore", arch, "-i", key, "--kube-dir", kubeDst, "--dry-run")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		want := "data dir  " + cand + " (absent now) is only a candidate, from the archive's kubernetes/manifests/etcd.yaml: pass --data-dir " + cand + " to confirm"
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
		_, stderr, code = runCLI(t, "restore", arch, "-i", key, "--kube-dir", kubeDst)
		if code != exitUsage || !strings.Contains(stderr, "pass --data-dir "+cand+" to confirm") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if _, err := os.Lstat(cand); !os.IsNotExist(err) {
			t.Fatal("unconfirmed data dir written")
		}
	})

	t.Run("empty dir replaced, not called old", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "etcd")
		if err := os.Mkdir(empty, 0o755); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runCLI(t, "restore", demoDB, "--data-dir", empty)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "replace   the empty directory "+empty) || strings.Contains(stdout, "old data dir") {
			t.Errorf("output:\n%s", stdout)
		}
		if got := testfix.ListNames(t, filepath.Dir(empty)); !slices.Equal(got, []string{"etcd"}) {
			t.Errorf("parent holds %v", got)
		}
	})
}

// TestRestoreCLIUnencrypted: a plain archive is refused (exit 3, hint to
// --allow-unencrypted) with the data dir untouched, and restored with it.
func TestRestoreCLIUnencrypted(t *testing.T) {
	t.Parallel()
	kube := kubeWithEtcdManifest(t, "m1", "/var/lib/etcd", map[string]string{"admin.conf": "admin"})
	arch, _ := restoreArchive(t, kube, false)
	dir := t.TempDir()
	dataDir, kubeDst := filepath.Join(dir, "etcd"), filepath.Join(dir, "k")
	args := []string{"restore", arch, "--data-dir", dataDir, "--kube-dir", kubeDst}
	_, stderr, code := runCLI(t, args...)
	if code != exitIntegrity || !strings.Contains(stderr, "not encrypted") || !strings.Contains(stderr, "--allow-unencrypted") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := testfix.ListNames(t, dir); len(got) != 0 {
		t.Fatalf("refused restore wrote %v", got)
	}
	if _, stderr, code := runCLI(t, append(args, "--allow-unencrypted")...); code != 0 {
		t.Fatalf("with --allow-unencrypted: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(kubeDst, "admin.conf")); err != nil || string(b) != "admin" {
		t.Fatalf("kube dir: %q %v", b, err)
	}
}

// TestRestoreCLIEscapes: names from the archive (kube dir paths, the
// manifest's member name and data dir) reach the terminal with their escape
// sequences shown, not interpreted.
func TestRestoreCLIEscapes(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	cand := filepath.Join(work, "etcd\x1b[2J")
	kube := kubeWithEtcdManifest(t, "m\x1b]0;owned\x07", cand, map[string]string{"pki/ev\x1b[31mil.crt": "x"})
	arch, key := restoreArchive(t, kube, true)
	stdout, stderr, code := runCLI(t, "restore", arch, "-i", key, "--kube-dir", filepath.Join(work, "k"), "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("%s holds a raw escape:\n%q", name, out)
		}
	}
	for _, want := range []string{`pki/ev\x1b[31mil.crt`, `m\x1b]0;owned\x07`, `etcd\x1b[2J (absent now) is only a candidate`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// The refusal without --data-dir names the candidate, cleaned too.
	_, stderr, code = runCLI(t, "restore", arch, "-i", key, "--kube-dir", filepath.Join(work, "k"))
	if code != exitUsage || strings.ContainsAny(stderr, "\x1b\x07") || !strings.Contains(stderr, `etcd\x1b[2J`) {
		t.Fatalf("exit %d: %q", code, stderr)
	}
}

// TestRestoreCLISweepLog: a staging dir that a killed restore left beside
// the data dir is removed by the next restore, which says so.
func TestRestoreCLISweepLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	left := filepath.Join(dir, ".etcdsafe-restore-1234")
	if err := os.Mkdir(left, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{fsx.StagingLockName, "snapshot.db"} {
		if err := os.WriteFile(filepath.Join(left, n), []byte("plaintext"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, code := runCLI(t, "restore", demoDB, "--data-dir", filepath.Join(dir, "etcd"), "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "removed "+left+", left by a restore that was killed") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if _, err := os.Lstat(left); !os.IsNotExist(err) {
		t.Errorf("leftover not removed: %v", err)
	}
}
