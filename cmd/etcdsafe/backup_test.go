package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/crashtest"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// Arguments of the backup child process (crashtest mode "backup").
const (
	envChildArgs = "ETCDSAFE_TEST_BACKUP_ARGS" // JSON []string for run()
	envChildMode = "ETCDSAFE_TEST_BACKUP_MODE" // "kill", "kill-after-spool" or "pause:<marker file>"
)

// TestMain lets the test binary act as a backup process that is killed
// mid-write, or that pauses mid-write holding the directory lock.
func TestMain(m *testing.M) {
	crashtest.RunChildIfAsked(map[string]func() int{"backup": backupChild})
	runTests(m) // testscript.Main: m.Run, or the etcdsafe command of a script (script_test.go)
}

// backupChild runs the backup of envChildArgs, killed or paused at the
// point envChildMode names.
func backupChild() int {
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(envChildArgs)), &args); err != nil {
		return 99
	}
	mode := os.Getenv(envChildMode)
	if mode == "kill-after-spool" {
		testOnlyAfterSpool = crashtest.KillSelf
	}
	testOnlyAfterArchiveWrite = func(n int64) {
		if n < 256<<10 {
			return
		}
		if mode == "kill" {
			crashtest.KillSelf() // no deferred cleanup runs, as with the OOM killer
		}
		if marker, ok := strings.CutPrefix(mode, "pause:"); ok {
			_ = os.WriteFile(marker, nil, 0o600)
			time.Sleep(time.Minute) // holding the lock until the parent kills it
		}
	}
	return run(context.Background(), args, strings.NewReader(""), io.Discard, os.Stderr)
}

// childBackup starts the test binary as a backup process.
func childBackup(t *testing.T, mode string, args ...string) *exec.Cmd {
	t.Helper()
	return childBackupEnv(t, mode, nil, args...)
}

// childBackupEnv is childBackup with extra environment variables.
func childBackupEnv(t *testing.T, mode string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return crashtest.Child(t, "backup", append(env, envChildArgs+"="+string(a), envChildMode+"="+mode)...)
}

// keyPair writes a new identity file and returns its path and recipient.
func keyPair(t *testing.T, x25519 bool) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.txt")
	args := []string{"keygen", "-o", p}
	if x25519 {
		args = append(args, "--x25519")
	}
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	return p, strings.TrimSpace(out)
}

// kubeDir builds a small /etc/kubernetes look-alike, with an incompressible
// file of extra bytes so that archives span many age chunks.
func kubeDir(t *testing.T, extra int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "kubernetes")
	for _, f := range []struct{ p, content string }{
		{"pki/ca.crt", "-----BEGIN CERTIFICATE-----\nfake\n"},
		{"pki/ca.key", "-----BEGIN PRIVATE KEY-----\nsecret\n"},
		{"manifests/etcd.yaml", "apiVersion: v1\nkind: Pod\n"},
		{"encryption-config.yaml", "kind: EncryptionConfiguration\n"},
		{"tmp/cache.bin", "excluded"},
	} {
		p := filepath.Join(d, f.p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("pki/ca.crt", filepath.Join(d, "ca-link.crt")); err != nil {
		t.Fatal(err)
	}
	if extra > 0 {
		b := make([]byte, extra)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(d, "pki", "big.bin"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// archivesIn returns the final-named archives in dir.
func archivesIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if backup.IsArchiveName(de.Name()) || strings.HasSuffix(de.Name(), ".json") {
			out = append(out, filepath.Join(dir, de.Name()))
		}
	}
	return out
}

// stockExtract opens an archive as `age -d -i key | zstd -d | tar -x`
// would, with the same libraries, into dst, and returns the entry names.
func stockExtract(t *testing.T, arch, keyFile, dst string) []string {
	t.Helper()
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(kb))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(arch)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar, err := age.Decrypt(f, ids...)
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	zr, err := zstd.NewReader(ar)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return names
}

// TestBackupTLSRoundTrip: backup from a real etcd serving TLS with client
// certificates, as on a kubeadm master; verify; open with stock tools;
// etcdutl accepts the snapshot.
func TestBackupTLSRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t, etcdtest.WithTLS())
	ctx := context.Background()
	for i := range 300 {
		if _, err := s.Client.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%03d", i), strings.Repeat("v", 500)); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, recip := keyPair(t, false)
	if !strings.HasPrefix(recip, "age1pq1") {
		t.Fatalf("keygen default is not post-quantum: %.10s", recip)
	}
	kd := kubeDir(t, 0)
	out := t.TempDir()
	metrics := filepath.Join(t.TempDir(), "etcdsafe.prom")
	pki := s.PKIDir
	stdout, stderr, code := runCLI(t, "backup", "--endpoints", s.Endpoint,
		"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "healthcheck-client.crt"),
		"--key", filepath.Join(pki, "healthcheck-client.key"),
		"--kube-dir", kd, "--exclude", "tmp", "-r", recip, "--out", out, "--cluster", "prod",
		"--metrics-file", metrics, "--log-format", "json")
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, stderr)
	}
	arch := strings.TrimSpace(stdout)
	if !strings.HasPrefix(filepath.Base(arch), "prod-") || !strings.HasSuffix(arch, ".tar.zst.age") {
		t.Fatalf("archive name %q", arch)
	}
	// Logs are JSON lines; the staging dir of the live snapshot is gone.
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line is not JSON: %s", l)
		}
	}
	if got := archivesIn(t, out); len(got) != 2 {
		t.Fatalf("want archive + sidecar, got %v", got)
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".etcdsafe-snapshot-*")); len(m) != 0 {
		t.Fatalf("staging dir left: %v", m)
	}
	if st, err := os.Stat(arch); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode: %v %v", st, err)
	}
	sc, err := archive.ReadSidecar(archive.SidecarPath(arch))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Revision != rev || sc.Source != s.Endpoint || sc.EtcdVersion == "" || !sc.Encrypted ||
		len(sc.Recipients) != 1 || !strings.HasPrefix(sc.Recipients[0], "mlkem768x25519:") {
		t.Errorf("sidecar %+v, want revision %d from %s", sc, rev, s.Endpoint)
	}
	if b, _ := os.ReadFile(archive.SidecarPath(arch)); bytes.Contains(b, []byte(recip[10:40])) {
		t.Error("sidecar contains the recipient itself")
	}

	// verify with the key.
	vout, verr, code := runCLI(t, "verify", arch, "-i", key)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, vout, verr)
	}
	for _, want := range []string{"Sidecar             matches", fmt.Sprintf("Revision            %d", rev), "Consistency check   ok", "SHA-256 trailer     verified"} {
		if !strings.Contains(vout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, vout)
		}
	}
	// ... and through ETCDSAFE_IDENTITY.
	t.Setenv("ETCDSAFE_IDENTITY", key)
	if _, verr, code := runCLI(t, "verify", arch); code != 0 {
		t.Fatalf("verify with ETCDSAFE_IDENTITY: exit %d %s", code, verr)
	}

	// Stock tools: MANIFEST.json first, the snapshot, the kube dir minus
	// the excluded path, the symlink kept as a link.
	dst := t.TempDir()
	names := stockExtract(t, arch, key, dst)
	if len(names) == 0 || names[0] != "MANIFEST.json" {
		t.Fatalf("first entry %v", names)
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"etcd/snapshot.db", "kubernetes/pki/ca.key", "kubernetes/manifests/etcd.yaml", "kubernetes/ca-link.crt"} {
		if !strings.Contains(joined, want) {
			t.Errorf("archive lacks %s: %v", want, names)
		}
	}
	if strings.Contains(joined, "cache.bin") {
		t.Errorf("excluded file archived: %v", names)
	}
	if l, err := os.Readlink(filepath.Join(dst, "kubernetes", "ca-link.crt")); err != nil || l != "pki/ca.crt" {
		t.Errorf("symlink: %q %v", l, err)
	}
	st, err := etcdsnap.NewV3(zap.NewNop()).Status(filepath.Join(dst, "etcd", "snapshot.db"))
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v", err)
	}
	if st.Revision != rev || st.TotalKey < 300 {
		t.Errorf("etcdutl status %+v, want revision %d and >= 300 keys", st, rev)
	}

	// Metrics of a successful run.
	mb, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	mv := testfix.ParseMetrics(t, metrics)
	if mv[backup.MetricRevision] != float64(rev) || mv[backup.MetricArchiveBytes] != float64(sc.ArchiveSize) ||
		mv[backup.MetricLastRunOK] != 1 || mv[backup.MetricFailures] != 0 || mv[backup.MetricLastSuccess] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("metrics:\n%s", mb)
	}

	// ETCDCTL_* environment instead of flags; list shows both, newest first.
	t.Setenv("ETCDCTL_ENDPOINTS", s.Endpoint)
	t.Setenv("ETCDCTL_CACERT", filepath.Join(pki, "ca.crt"))
	t.Setenv("ETCDCTL_CERT", filepath.Join(pki, "apiserver-etcd-client.crt"))
	t.Setenv("ETCDCTL_KEY", filepath.Join(pki, "apiserver-etcd-client.key"))
	// Names have one-second resolution: this run's clock is a second ahead
	// (testOnlyNow; this test is not parallel).
	later := time.Now().Add(time.Second)
	testOnlyNow = func() time.Time { return later }
	t.Cleanup(func() { testOnlyNow = time.Now })
	if _, err := s.Client.Put(ctx, "/registry/configmaps/default/late", "x"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "backup", "--kube-dir", kd, "-r", recip, "--out", out, "--cluster", "prod"); code != 0 {
		t.Fatalf("backup with ETCDCTL_*: exit %d\n%s", code, stderr)
	}
	lout, _, code := runCLI(t, "list", out, "-o", "json")
	if code != 0 {
		t.Fatal("list failed")
	}
	var rows []listRow
	if err := json.Unmarshal([]byte(lout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Revision != rev+1 || rows[1].Revision != rev || !rows[0].Time.After(rows[1].Time) {
		t.Fatalf("list: %+v", rows)
	}
}

// TestBackupCertErrors: a TLS endpoint without usable client certificates
// fails with a clear error and leaves nothing behind.
func TestBackupCertErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t, etcdtest.WithTLS())
	_, recip := keyPair(t, true)
	out := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing cert file", []string{"--cert", filepath.Join(out, "nope.crt")}, "no such file"},
		{"no client cert", []string{"--cert", filepath.Join(s.PKIDir, "ca.crt"), "--key", filepath.Join(s.PKIDir, "ca.key"),
			"--endpoints", "https://127.0.0.1:1", "--dial-timeout", "300ms"}, "no etcd endpoint answered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"backup", "--endpoints", s.Endpoint, "--cacert", filepath.Join(s.PKIDir, "ca.crt"),
				"--cert", filepath.Join(s.PKIDir, "healthcheck-client.crt"), "--key", filepath.Join(s.PKIDir, "healthcheck-client.key"),
				"--kube-dir", "", "-r", recip, "--out", out}, tc.args...)
			_, stderr, code := runCLI(t, args...)
			if code != exitFailure || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.want, stderr)
			}
			if got := archivesIn(t, out); len(got) != 0 {
				t.Fatalf("files left: %v", got)
			}
		})
	}
}

// TestBackupOffline: --from-db (the real kube-apiserver snapshot) and
// --from-data-dir (a stopped member; a running one is refused with 5).
func TestBackupOffline(t *testing.T) {
	t.Parallel()
	key, recip := keyPair(t, true)
	t.Run("from-db", func(t *testing.T) {
		out := t.TempDir()
		stdout, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"),
			"--kube-dir", kubeDir(t, 0), "-r", recip, "--out", out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		arch := strings.TrimSpace(stdout)
		sc, err := archive.ReadSidecar(archive.SidecarPath(arch))
		if err != nil {
			t.Fatal(err)
		}
		// Pinned: the real snapshot's newest revision and size.
		if sc.Revision != 231 || sc.DBSize != 303136 {
			t.Errorf("sidecar revision %d size %d, want 231 303136", sc.Revision, sc.DBSize)
		}
		if _, verr, code := runCLI(t, "verify", arch, "-i", key); code != 0 {
			t.Fatalf("verify: %d %s", code, verr)
		}
	})
	t.Run("from-db to stdout", func(t *testing.T) {
		var o, e bytes.Buffer
		code := run(context.Background(), []string{"backup", "--from-db", filepath.Join(realDir, "snapshot.db"),
			"--kube-dir", "", "-r", recip, "--out", "-"}, strings.NewReader(""), &o, &e)
		if code != 0 {
			t.Fatalf("exit %d %s", code, e.String())
		}
		p := filepath.Join(t.TempDir(), "x.tar.zst.age")
		if err := os.WriteFile(p, o.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, verr, code := runCLI(t, "verify", p, "-i", key); code != 0 {
			t.Fatalf("verify: %d %s", code, verr)
		}
	})
	t.Run("damaged db refused", func(t *testing.T) {
		bad := copyFile(t, filepath.Join(realDir, "snapshot.db"), filepath.Join(t.TempDir(), "s.db"),
			func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		out := t.TempDir()
		_, stderr, code := runCLI(t, "backup", "--from-db", bad, "--kube-dir", "", "-r", recip, "--out", out)
		if code != exitIntegrity || !strings.Contains(stderr, "trailer") {
			t.Fatalf("exit %d, want 3:\n%s", code, stderr)
		}
		if got := archivesIn(t, out); len(got) != 0 {
			t.Fatalf("files left: %v", got)
		}
	})
	if testing.Short() {
		return
	}
	t.Run("from-data-dir", func(t *testing.T) {
		s := etcdtest.Start(t)
		ctx := context.Background()
		if _, err := s.Client.Put(ctx, "/registry/secrets/kube-system/k", "v"); err != nil {
			t.Fatal(err)
		}
		rev, err := s.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		// Running: etcd holds the db, so the backup is refused with 5.
		_, stderr, code := runCLI(t, "backup", "--from-data-dir", s.DataDir, "--kube-dir", "", "-r", recip, "--out", out)
		if code != exitLocked {
			t.Fatalf("running member: exit %d, want 5\n%s", code, stderr)
		}
		s.Stop()
		stdout, stderr, code := runCLI(t, "backup", "--from-data-dir", s.DataDir, "--kube-dir", "", "-r", recip, "--out", out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		arch := strings.TrimSpace(stdout)
		vout, verr, code := runCLI(t, "verify", arch, "-i", key)
		if code != 0 || !strings.Contains(vout, "absent") || !strings.Contains(vout, fmt.Sprintf("Revision            %d", rev)) {
			t.Fatalf("verify: %d\n%s%s", code, vout, verr)
		}
	})
}

// makeArchive writes one archive of the real snapshot plus a kube dir with
// extra incompressible bytes, and returns its path.
func makeArchive(t *testing.T, recip string, extra int) string {
	t.Helper()
	args := []string{"backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kubeDir(t, extra), "--out", t.TempDir()}
	if recip == "" {
		args = append(args, "--insecure-no-encryption")
	} else {
		args = append(args, "-r", recip)
	}
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// TestVerifyDamaged: truncated, bit-flipped, appended-to and wrong-key
// archives fail with the right exit code and say which; no plaintext is
// left in the temp dir.
func TestVerifyDamaged(t *testing.T) {
	key, recip := keyPair(t, true)
	otherKey, _ := keyPair(t, false)
	arch := makeArchive(t, recip, 300<<10)
	data, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		args   []string
		code   int
		want   string
	}{
		{"intact", nil, []string{"-i", key}, 0, ""},
		{"truncated mid-chunk", func(b []byte) []byte { return b[:len(b)/2] }, []string{"-i", key}, exitIntegrity, "truncated"},
		{"truncated last byte", func(b []byte) []byte { return b[:len(b)-1] }, []string{"-i", key}, exitIntegrity, "truncated"},
		{"bit flip in payload", func(b []byte) []byte { b[len(b)/3] ^= 0x10; return b }, []string{"-i", key}, exitIntegrity, "tampered"},
		{"appended bytes", func(b []byte) []byte { return append(b, "junk"...) }, []string{"-i", key}, exitIntegrity, "truncated"},
		{"wrong key", nil, []string{"-i", otherKey}, exitKey, "no identity matches"},
		{"no key", nil, nil, exitKey, "no identity matches"},
		{"quick intact", nil, []string{"--quick"}, 0, ""},
		{"quick bit flip", func(b []byte) []byte { b[len(b)/3] ^= 0x10; return b }, []string{"--quick"}, exitIntegrity, "sidecar says"},
		{"quick truncated", func(b []byte) []byte { return b[:len(b)-100] }, []string{"--quick"}, exitIntegrity, "truncated"},
	}
	t.Setenv("ETCDSAFE_IDENTITY", "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, filepath.Base(arch))
			b := append([]byte(nil), data...)
			if tc.mutate != nil {
				b = tc.mutate(b)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			side, err := os.ReadFile(archive.SidecarPath(arch))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(archive.SidecarPath(p), side, 0o600); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			args := append([]string{"verify", p, "--tmp-dir", tmp}, tc.args...)
			_, stderr, code := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
			if code != 0 && !strings.Contains(stderr, "etcdsafe: hint:") {
				t.Errorf("no hint:\n%s", stderr)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("plaintext left in tmp dir: %v", left)
			}
		})
	}
}

// TestBackupInsecure: an unencrypted archive needs the explicit flag, is
// named .tar.zst, and is refused by every reader (exit 3, nothing left in
// the staging dir) unless --allow-unencrypted is given: nothing proves who
// wrote it. With the flag it verifies without a key, with a warning.
func TestBackupInsecure(t *testing.T) {
	t.Parallel()
	arch := makeArchive(t, "", 0)
	if !strings.HasSuffix(arch, ".tar.zst") {
		t.Fatalf("name %q", arch)
	}
	key := filepath.Join(t.TempDir(), "key.txt")
	if _, stderr, code := runCLI(t, "keygen", "-o", key); code != 0 {
		t.Fatal(stderr)
	}
	for _, args := range [][]string{
		{"verify", arch}, {"verify", arch, "-i", key},
		{"status", arch, "-i", key}, {"ls", arch}, {"get", arch, "ns", "-i", key},
		{"history", arch, "ns/default"}, {"dump", arch, "--out", filepath.Join(t.TempDir(), "d")},
	} {
		tmp := t.TempDir()
		stdout, stderr, code := runCLI(t, append(args, "--tmp-dir", tmp)...)
		if code != 3 || stdout != "" || !strings.Contains(stderr, "not encrypted") || !strings.Contains(stderr, "--allow-unencrypted") {
			t.Errorf("%v: exit %d, want 3 with a hint to --allow-unencrypted:\n%s%s", args, code, stdout, stderr)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("%v: left %v in the staging dir", args, left)
		}
	}
	_, stderr, code := runCLI(t, "verify", arch, "--allow-unencrypted")
	if code != 0 || !strings.Contains(stderr, "NOT encrypted") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "ls", arch, "--allow-unencrypted")
	if code != 0 || stdout == "" || !strings.Contains(stderr, "not encrypted") {
		t.Fatalf("ls --allow-unencrypted: exit %d:\n%s", code, stderr)
	}
}

// TestBackupPassphrase: scrypt encryption from a passphrase file; the
// passphrase never appears in output.
func TestBackupPassphrase(t *testing.T) {
	testOnlyScryptLogN = 10 // serial: a package variable
	t.Cleanup(func() { testOnlyScryptLogN = 0 })
	pf := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pf, []byte("correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "",
		"--passphrase-file", pf, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	arch := strings.TrimSpace(stdout)
	t.Setenv("ETCDSAFE_IDENTITY", "")
	t.Setenv("ETCDSAFE_PASSPHRASE", "correct horse battery")
	if _, stderr, code := runCLI(t, "verify", arch); code != 0 {
		t.Fatalf("verify: exit %d %s", code, stderr)
	}
	t.Setenv("ETCDSAFE_PASSPHRASE", "wrong")
	if _, stderr, code := runCLI(t, "verify", arch); code != exitKey || strings.Contains(stderr, "correct horse") {
		t.Fatalf("wrong passphrase: exit %d %s", code, stderr)
	}
}

// TestBackupKilledMidWrite: a backup process killed by SIGKILL while
// writing leaves no final-named archive or sidecar, and the next run
// succeeds (the kernel released the lock).
func TestBackupKilledMidWrite(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	out := t.TempDir()
	kd := kubeDir(t, 2<<20)
	cmd := childBackup(t, "kill", "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kd, "-r", recip, "--out", out)
	if err := cmd.Wait(); !crashtest.Killed(err) {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, cmd.Stderr)
	}
	if got := archivesIn(t, out); len(got) != 0 {
		t.Fatalf("final-named files after kill: %v", got)
	}
	temps, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("expected the killed run's temp file, got %v", temps)
	}
	if lout, _, code := runCLI(t, "list", out); code != 0 || strings.Count(lout, "\n") != 1 {
		t.Fatalf("list after kill: %d\n%s", code, lout)
	}
	_, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kd, "-r", recip, "--out", out)
	if code != 0 {
		t.Fatalf("next run: exit %d %s", code, stderr)
	}
	if got := archivesIn(t, out); len(got) != 2 {
		t.Fatalf("after next run: %v", got)
	}
	// The next run, under the directory lock, removed the partial archive
	// and said so.
	if left, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*")); len(left) != 0 {
		t.Fatalf("partial archive not swept: %v", left)
	}
	if !strings.Contains(stderr, "removed a killed run's partial archive") || !strings.Contains(stderr, filepath.Base(temps[0])) {
		t.Fatalf("no log line for the swept partial archive:\n%s", stderr)
	}
}

// TestBackupConcurrent: while one backup process is writing into a
// directory, a second run on it exits 5 and writes nothing; so does prune.
func TestBackupConcurrent(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	out := t.TempDir()
	kd := kubeDir(t, 2<<20)
	marker := filepath.Join(t.TempDir(), "writing")
	cmd := childBackup(t, "pause:"+marker, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kd, "-r", recip, "--out", out)
	crashtest.WaitFile(t, marker, 30*time.Second) // the first backup started writing
	_, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "-r", recip, "--out", out)
	if code != exitLocked || !strings.Contains(stderr, "locked") || !strings.Contains(stderr, fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("second run: exit %d, want 5 naming pid %d:\n%s", code, cmd.Process.Pid, stderr)
	}
	if _, stderr, code := runCLI(t, "prune", out, "--keep-last", "1"); code != exitLocked {
		t.Fatalf("prune during backup: exit %d %s", code, stderr)
	}
	if got := archivesIn(t, out); len(got) != 0 {
		t.Fatalf("files written: %v", got)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// In-process: a held lock is refused the same way.
	unlock, err := fsx.Lock(out)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, _, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "-r", recip, "--out", out); code != exitLocked {
		t.Fatalf("in-process lock: exit %d", code)
	}
}

// writeFakeBackup puts an archive and its sidecar dated at into dir.
func writeFakeBackup(t *testing.T, dir string, at time.Time) string {
	t.Helper()
	return writeFakeBackupOf(t, dir, at, "", "", backup.ArchiveName("c", "h", at, true))
}

// writeFakeBackupOf is writeFakeBackup for a given cluster, host and name.
func writeFakeBackupOf(t *testing.T, dir string, at time.Time, cluster, host, name string) string {
	t.Helper()
	content := []byte("archive " + name)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	_, sum, err := archive.HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sc := &archive.Sidecar{Version: archive.SidecarVersion, Archive: name, FormatVersion: 1, Created: at,
		Cluster: cluster, Host: host, ArchiveSize: int64(len(content)), ArchiveSHA256: sum, Encrypted: true}
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive.SidecarPath(p), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestPrune: decisions on a table of dates, dry run, deletion of archive
// and sidecar, archives without sidecars kept.
func TestPrune(t *testing.T) {
	t.Parallel()
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	dates := []time.Time{day(1, 2), day(2, 2), day(3, 2), day(3, 14), day(9, 2), day(10, 2)} // 1 Mar is a Sunday
	tests := []struct {
		name string
		args []string
		keep []time.Time
	}{
		{"last 2", []string{"--keep-last", "2"}, []time.Time{day(10, 2), day(9, 2)}},
		{"daily 3", []string{"--keep-daily", "3"}, []time.Time{day(10, 2), day(9, 2), day(3, 14)}},
		{"weekly 2", []string{"--keep-weekly", "2"}, []time.Time{day(10, 2), day(3, 14)}},
		{"weekly all", []string{"--keep-weekly", "-1"}, []time.Time{day(10, 2), day(3, 14), day(1, 2)}},
		{"last 1 monthly 1", []string{"--keep-last", "1", "--keep-monthly", "1"}, []time.Time{day(10, 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range dates {
				writeFakeBackup(t, dir, d)
			}
			orphan := filepath.Join(dir, "old-manual.tar.zst.age")
			if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := archivesIn(t, dir)
			dry, _, code := runCLI(t, append([]string{"prune", dir, "--dry-run"}, tc.args...)...)
			if code != 0 || len(archivesIn(t, dir)) != len(before) {
				t.Fatalf("dry run: exit %d or deleted files\n%s", code, dry)
			}
			if n := strings.Count(dry, "would remove"); n != len(dates)-len(tc.keep) {
				t.Errorf("dry run lists %d removals, want %d:\n%s", n, len(dates)-len(tc.keep), dry)
			}
			out, stderr, code := runCLI(t, append([]string{"prune", dir}, tc.args...)...)
			if code != 0 {
				t.Fatalf("prune: exit %d %s", code, stderr)
			}
			if !strings.Contains(stderr, "old-manual.tar.zst.age has no readable sidecar") {
				t.Errorf("no warning about the archive without sidecar:\n%s", stderr)
			}
			want := map[string]bool{filepath.Base(orphan): true}
			for _, k := range tc.keep {
				n := backup.ArchiveName("c", "h", k, true)
				want[n], want[n+".json"] = true, true
			}
			got := map[string]bool{}
			for _, p := range archivesIn(t, dir) {
				got[filepath.Base(p)] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("left %v, want %v\n%s", got, want, out)
			}
		})
	}
	if _, _, code := runCLI(t, "prune", t.TempDir()); code != exitUsage {
		t.Fatalf("prune without rules: exit %d, want 2", code)
	}
}

// TestBackupPruneAfterSuccess: --keep-last after a backup deletes the
// older ones in the same run.
func TestBackupPruneAfterSuccess(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	out := t.TempDir()
	host, _ := os.Hostname()
	for d := 1; d <= 3; d++ {
		at := time.Date(2026, 1, d, 2, 0, 0, 0, time.UTC)
		writeFakeBackupOf(t, out, at, "c", host, backup.ArchiveName("c", "h", at, true))
	}
	stdout, stderr, code := runCLI(t, "backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", "", "-r", recip,
		"--out", out, "--keep-last", "2", "--cluster", "c")
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	got := archivesIn(t, out)
	want := []string{backup.ArchiveName("c", "h", time.Date(2026, 1, 3, 2, 0, 0, 0, time.UTC), true), strings.TrimSpace(stdout)}
	if len(got) != 4 || !strings.Contains(strings.Join(got, " "), want[0]) || !strings.Contains(strings.Join(got, " "), filepath.Base(want[1])) {
		t.Fatalf("left %v, want %v and sidecars", got, want)
	}
}

// TestBackupMetricsFailureCounter: failures increment a counter carried
// across runs, and the last success is kept.
func TestBackupMetricsFailureCounter(t *testing.T) {
	t.Parallel()
	_, recip := keyPair(t, true)
	metrics := filepath.Join(t.TempDir(), "m.prom")
	base := []string{"backup", "--kube-dir", "", "-r", recip, "--out", t.TempDir(), "--metrics-file", metrics}
	if _, stderr, code := runCLI(t, append(base, "--from-db", filepath.Join(realDir, "snapshot.db"))...); code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	ok := testfix.ParseMetrics(t, metrics)
	for i := 1; i <= 2; i++ {
		if _, _, code := runCLI(t, append(base, "--from-db", filepath.Join(t.TempDir(), "missing.db"))...); code != exitFailure {
			t.Fatalf("failing run: exit %d", code)
		}
		m := testfix.ParseMetrics(t, metrics)
		if m[backup.MetricFailures] != float64(i) || m[backup.MetricLastRunOK] != 0 || m[backup.MetricLastSuccess] != ok[backup.MetricLastSuccess] ||
			m[backup.MetricRevision] != 231 {
			t.Fatalf("after failure %d: %v (before: %v)", i, m, ok)
		}
	}
	b, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# TYPE etcdsafe_backup_failures_total counter\netcdsafe_backup_failures_total 2\n",
		"# TYPE etcdsafe_backup_last_success_timestamp_seconds gauge\n"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics file lacks %q:\n%s", want, b)
		}
	}
	if _, _, code := runCLI(t, append(base, "--from-db", filepath.Join(realDir, "snapshot.db"), "--cluster", "again")...); code != 0 {
		t.Fatal("recovery run failed")
	}
	if m := testfix.ParseMetrics(t, metrics); m[backup.MetricFailures] != 2 || m[backup.MetricLastRunOK] != 1 {
		t.Fatalf("after recovery: %v", m)
	}
}

func TestKeygen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		prefix string
	}{
		{"post-quantum default", nil, "age1pq1"},
		{"x25519", []string{"--x25519"}, "age1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("k%d", i))
			out, _, code := runCLI(t, append([]string{"keygen", "-o", p}, tc.args...)...)
			if code != 0 {
				t.Fatal("keygen failed")
			}
			recip := strings.TrimSpace(out)
			if !strings.HasPrefix(recip, tc.prefix) || (tc.prefix == "age1" && strings.HasPrefix(recip, "age1pq1")) {
				t.Fatalf("recipient %.12s..., want %s", recip, tc.prefix)
			}
			st, err := os.Stat(p)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v %v", st, err)
			}
			b, _ := os.ReadFile(p)
			ids, err := archive.ParseIdentities(b)
			if err != nil || len(ids) != 1 {
				t.Fatalf("identity file: %v", err)
			}
			// The printed recipient encrypts to this identity.
			rs, err := archive.ParseRecipients([]string{recip})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, rs...)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte("x"))
			_ = w.Close()
			if _, err := age.Decrypt(&buf, ids...); err != nil {
				t.Fatalf("recipient does not match identity: %v", err)
			}
			// Never replaces an existing file.
			if _, _, code := runCLI(t, "keygen", "-o", p); code == 0 {
				t.Fatal("keygen replaced an existing file")
			}
			if b2, _ := os.ReadFile(p); !bytes.Equal(b, b2) {
				t.Fatal("existing identity changed")
			}
		})
	}
}

func TestBackupUsage(t *testing.T) {
	t.Parallel()
	db := filepath.Join(realDir, "snapshot.db")
	tests := []struct {
		name string
		args []string
	}{
		{"no out", []string{"--from-db", db, "--insecure-no-encryption"}},
		{"no recipient", []string{"--from-db", db, "--out", "x"}},
		{"insecure with recipient", []string{"--from-db", db, "--out", "x", "--insecure-no-encryption", "-r", "age1x"}},
		{"both offline sources", []string{"--from-db", db, "--from-data-dir", "d", "--out", "x", "--insecure-no-encryption"}},
		{"keep with stdout", []string{"--from-db", db, "--out", "-", "--insecure-no-encryption", "--keep-last", "1"}},
		{"bad log format", []string{"--from-db", db, "--out", "x", "--insecure-no-encryption", "--log-format", "xml"}},
		{"bad recipient", []string{"--from-db", db, "--out", t.TempDir(), "-r", "not-a-key"}},
		{"endpoint with from-db", []string{"--from-db", db, "--out", "x", "--insecure-no-encryption", "--endpoints", "https://h:2379"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, append([]string{"backup"}, tc.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2:\n%s", code, stderr)
			}
		})
	}
}

// TestBackupInterrupted: Ctrl-C (a cancelled context, as main's signal
// handler makes it) mid-write exits 130 and leaves neither a final name
// nor a temp file.
func TestBackupInterrupted(t *testing.T) {
	_, recip := keyPair(t, true)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testOnlyAfterArchiveWrite = func(n int64) {
		if n > 256<<10 {
			cancel()
		}
	}
	defer func() { testOnlyAfterArchiveWrite = nil }()
	var o, e bytes.Buffer
	code := run(ctx, []string{"backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kubeDir(t, 2<<20),
		"-r", recip, "--out", out}, strings.NewReader(""), &o, &e)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130\n%s", code, e.String())
	}
	des, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() != fsx.LockName {
			t.Errorf("left behind: %s", de.Name())
		}
	}
}
