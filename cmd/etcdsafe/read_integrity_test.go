package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
)

// TestReadBitFlipSweep: one bit flipped anywhere in a snapshot with a
// SHA-256 trailer. Before, ls, get, dump and history exited 0 on 105 to
// 119 of 120 flipped files, and dump wrote altered YAML (an image tag
// 1.4.1 printed as 1.4.9). Now every command must exit 3, print nothing on
// stdout and leave nothing under --out, whatever the flip hit.
func TestReadBitFlipSweep(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(filepath.Join(realDir, "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(10, 1))
	const flips = 48
	commands := []func(db, out string) []string{
		func(db, _ string) []string { return []string{"ls", db, "-A"} },
		func(db, _ string) []string { return []string{"get", db, "deployments", "-A"} },
		func(db, out string) []string { return []string{"dump", db, "-A", "--out", out} },
		func(db, _ string) []string { return []string{"history", db, "deployment/coredns", "-n", "kube-system"} },
	}
	caught := 0
	for i := range flips {
		b := bytes.Clone(orig)
		off := rng.IntN(len(b))
		b[off] ^= 1 << rng.IntN(8)
		db := filepath.Join(dir, "flipped.db")
		if err := os.WriteFile(db, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "dump")
		args := commands[i%len(commands)](db, out)
		stdout, stderr, code := runCLI(t, args...)
		switch {
		case code != 3:
			t.Errorf("flip at %d: %v: exit %d, want 3\n%s", off, args[0], code, stderr)
		case stdout != "":
			t.Errorf("flip at %d: %v printed %d bytes from a damaged file", off, args[0], len(stdout))
		case !strings.Contains(stderr, "damaged"):
			t.Errorf("flip at %d: %v: message does not say damaged:\n%s", off, args[0], stderr)
		default:
			caught++
		}
		if _, err := os.Lstat(out); err == nil {
			t.Errorf("flip at %d: dump left %s", off, out)
			_ = os.RemoveAll(out)
		}
	}
	t.Logf("bit flips caught: %d of %d", caught, flips)
}

// TestReadRawDBUnchecked: a db without trailer says its integrity is
// unchecked; --check runs bbolt's page check and a zeroed page is exit 3
// with nothing printed (before, 70 of 74 such dbs went through).
func TestReadRawDBUnchecked(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(filepath.Join(realDir, "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw := orig[:len(orig)-32] // the trailer cut: what a copy of member/snap/db is
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.WriteFile(db, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "ls", db, "-A")
	if code != 0 || stdout == "" || !strings.Contains(stderr, "integrity is unchecked") {
		t.Fatalf("raw db: exit %d, %d bytes, stderr:\n%s", code, len(stdout), stderr)
	}
	stdout, stderr, code = runCLI(t, "ls", db, "-A", "--check")
	if code != 0 || stdout == "" || strings.Contains(stderr, "unchecked") {
		t.Fatalf("raw db --check: exit %d, stderr:\n%s", code, stderr)
	}
	// the root page of the key bucket's tree, zeroed
	zeroed := bytes.Clone(raw)
	clear(zeroed[3*4096 : 4*4096])
	bad := filepath.Join(dir, "zeroed")
	if err := os.WriteFile(bad, zeroed, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls", bad, "-A", "--check"}, {"get", bad, "namespaces", "--check"}, {"status", bad, "--check"}} {
		stdout, stderr, code := runCLI(t, args...)
		if code != 3 {
			t.Errorf("%v: exit %d, want 3\n%s", args, code, stderr)
		}
		if args[0] != "status" && stdout != "" {
			t.Errorf("%v: printed %d bytes from a damaged db", args, len(stdout))
		}
	}
}

// TestReadSourceKinds: a fifo is refused at once (it used to hang every
// command, deaf to SIGTERM); "-" reads a snapshot or an archive from
// standard input.
func TestReadSourceKinds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	var stderr string
	go func() {
		var code int
		_, stderr, code = runCLI(t, "ls", fifo)
		done <- code
	}()
	select {
	case code := <-done:
		if code != 2 || !strings.Contains(stderr, "named pipe") {
			t.Errorf("fifo: exit %d, want 2 naming the pipe:\n%s", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ls on a fifo hangs")
	}

	snap := filepath.Join(realDir, "snapshot.db")
	want, _, code := runCLI(t, "ls", snap, "-A")
	if code != 0 {
		t.Fatal("ls of the snapshot failed")
	}
	f, err := os.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmp := t.TempDir()
	got, errOut, code := runCLIStdin(t, f, "ls", "-", "-A", "--tmp-dir", tmp)
	if code != 0 || got != want {
		t.Fatalf("ls - (snapshot): exit %d, output differs: %s", code, errOut)
	}
	key, recip := keyPair(t, false)
	arch := makeArchive(t, recip, 0)
	af, err := os.Open(arch)
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	got, errOut, code = runCLIStdin(t, af, "ls", "-", "-A", "-i", key, "--tmp-dir", tmp)
	if code != 0 || got != want {
		t.Fatalf("ls - (archive): exit %d, output differs: %s", code, errOut)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left %v in the staging dir", left)
	}
}

func runCLIStdin(t *testing.T, stdin *os.File, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, stdin, &out, &errb)
	return out.String(), errb.String(), code
}

// TestReadStagingLeftovers: a read command killed while an archive's
// snapshot was staged left it in TMPDIR; the next run removes it and says
// so. A source that fails to open no longer leaves its staged copy (a
// shadowed err kept it), and the message names the archive, not the copy.
func TestReadStagingLeftovers(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	// what a killed run leaves: the dir, its lock file (no longer
	// locked: the process is gone) and the plaintext snapshot
	stale := filepath.Join(tmp, source.StagingPrefix+"killed")
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{fsx.StagingLockName, "snapshot.db"} {
		if err := os.WriteFile(filepath.Join(stale, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key, recip := keyPair(t, false)
	arch := makeArchive(t, recip, 0)
	_, stderr, code := runCLI(t, "ls", arch, "-i", key, "--tmp-dir", tmp)
	if code != 0 || !strings.Contains(stderr, "left by an interrupted run") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left %v", left)
	}

	// an archive whose snapshot is not a db: open fails after staging
	var buf bytes.Buffer
	id, err := archive.GenerateIdentity(false)
	if err != nil {
		t.Fatal(err)
	}
	recips, err := archive.ParseRecipients([]string{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := archive.NewWriter(&buf, archive.WriterOptions{Recipients: recips, Manifest: archive.Manifest{Tool: "etcdsafe"}})
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("not a bbolt page "), 4096)
	if err := w.AddSnapshot(bytes.NewReader(junk), int64(len(junk)), fmt.Sprintf("%x", sha256.Sum256(junk))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "junk.tar.zst.age")
	if err := os.WriteFile(bad, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(keyFile, id.File(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, "ls", bad, "-i", keyFile, "--tmp-dir", tmp)
	if code != 3 || !strings.Contains(stderr, bad) || strings.Contains(stderr, tmp) {
		t.Fatalf("exit %d, want 3 naming %s and not the staging dir:\n%s", code, bad, stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("failed open left %v", left)
	}
}

// TestReadNamesSanitized: names holding terminal escape sequences reached
// the terminal raw. ls's table and every error message show them escaped;
// -o keys stays raw when it is not printed to a terminal (for scripts).
func TestReadNamesSanitized(t *testing.T) {
	t.Parallel()
	if got := cleanMessage(errString("key /registry/x\x1b]0;pwned\x07: bad\nsecond line")); got != `key /registry/x\x1b]0;pwned\x07: bad`+"\nsecond line" {
		t.Errorf("cleanMessage: %q", got)
	}
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t)
	w, err := kubestore.New(srv.Client, kubestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const hostile = "evil\x1b]0;pwned\x07\x1b[2J\u202e"
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: hostile, Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := w.PutObject(ctx, "/registry/configmaps/default/"+hostile, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Put(ctx, "/registry/junk/"+hostile, "not an object"); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, err := snapshot.Save(ctx, srv.Client, snap); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls", snap, "-A"}, {"ls", snap, "configmaps", "-A"}, {"get", snap, "--key", "/registry/nope/" + hostile}} {
		stdout, stderr, _ := runCLI(t, args...)
		if strings.ContainsAny(stdout+stderr, "\x1b\x07\u202e") {
			t.Errorf("%v: raw escape sequence printed:\n%q\n%q", args, stdout, stderr)
		}
		if args[0] == "ls" && !strings.Contains(stdout, `evil\x1b]0;pwned\x07\x1b[2J\u202e`) {
			t.Errorf("%v: escaped name not shown:\n%s", args, stdout)
		}
	}
	stdout, _, code := runCLI(t, "ls", snap, "configmaps", "-A", "-o", "keys")
	if code != 0 || !strings.Contains(stdout, "/registry/configmaps/default/"+hostile+"\n") {
		t.Errorf("-o keys to a pipe must stay raw: %q", stdout)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestReadArchiveFlipNotTruncated: age cannot tell a flipped bit in an
// archive's last chunk from a cut, so both were called "truncated". With
// the sidecar's size at hand they are told apart.
func TestReadArchiveFlipNotTruncated(t *testing.T) {
	t.Parallel()
	key, recip := keyPair(t, false)
	arch := makeArchive(t, recip, 0)
	data, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x10
	for _, tc := range []struct {
		name      string
		data      []byte
		want, not string
	}{
		{"flipped", flipped, "was not cut short", "incomplete"},
		{"cut", data[:len(data)-1], "truncated", "was not cut short"},
	} {
		if err := os.WriteFile(arch, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"ls", "verify"} {
			stdout, stderr, code := runCLI(t, cmd, arch, "-i", key)
			if code != 3 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, tc.not) {
				t.Errorf("%s %s: exit %d, want 3 saying %q and not %q:\n%s", tc.name, cmd, code, tc.want, tc.not, stderr)
			}
		}
	}
}

// TestSignalContextSIGTERM: SIGTERM ends the commands' context as SIGINT
// does (and so exits 130 through classify), instead of killing the
// process before it removes what it staged.
func TestSignalContextSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		ctx, stop := signalContext()
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%v did not end the context", sig)
		}
		if code, _ := classify(ctx, ctx.Err()); code != exitInterrupted {
			t.Errorf("%v: exit %d, want %d", sig, code, exitInterrupted)
		}
		stop()
	}
}

// TestReadArchiveDamagedStanza: a changed byte in the recipient stanza
// meant for our key fails in age exactly as a wrong key does; the sidecar
// lists our key's fingerprint, so the archive is called damaged (exit 3),
// not "no identity matches" (exit 4), which would send an operator hunting
// for another key.
func TestReadArchiveDamagedStanza(t *testing.T) {
	t.Parallel()
	key, recip := keyPair(t, true)
	arch := makeArchive(t, recip, 0)
	data, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	// line 2 is "-> X25519 <share>", line 3 the wrapped file key (base64)
	lines := bytes.SplitN(data, []byte("\n"), 4)
	if !bytes.HasPrefix(lines[1], []byte("-> X25519 ")) {
		t.Fatalf("unexpected stanza %q", lines[1])
	}
	i := len(lines[0]) + 1 + len(lines[1]) + 1 + 5
	if data[i] == 'A' {
		data[i] = 'B'
	} else {
		data[i] = 'A'
	}
	if err := os.WriteFile(arch, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dd := filepath.Join(t.TempDir(), "etcd")
	for _, args := range [][]string{{"ls", arch}, {"verify", arch}, {"restore", arch, "--data-dir", dd, "--dry-run"}} {
		stdout, stderr, code := runCLI(t, append(args, "-i", key)...)
		if code != 3 || stdout != "" || !strings.Contains(stderr, "header was damaged") {
			t.Errorf("%s: exit %d, want 3 saying the header was damaged:\n%s%s", args[0], code, stdout, stderr)
		}
	}
	// without the sidecar nothing tells them apart: age's word stands
	if err := os.Remove(arch + ".json"); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runCLI(t, "ls", arch, "-i", key); code != 4 {
		t.Errorf("without sidecar: exit %d, want 4", code)
	}
}
