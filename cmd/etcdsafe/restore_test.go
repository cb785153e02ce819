package main

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// TestRestoreArchiveCLI: an archive made by `backup --from-db` is restored
// by `restore` (dry run first, which changes nothing), the kube dir comes
// back, and a real etcd serves every key of demo.db from the restored dir.
func TestRestoreArchiveCLI(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	arch, key := makeReadableArchive(t)
	dir := t.TempDir()
	dataDir, kube := filepath.Join(dir, "etcd"), filepath.Join(dir, "kubernetes")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := url.URL{Scheme: "http", Host: l.Addr().String()}
	l.Close()
	args := []string{"restore", arch, "-i", key, "--data-dir", dataDir, "--kube-dir", kube, "--name", "m1", "--initial-advertise-peer-urls", peer.String(), "--tmp-dir", dir}

	stdout, stderr, code := runCLI(t, append(args, "--dry-run")...)
	if code != 0 {
		t.Fatalf("dry run: %d %s", code, stderr)
	}
	for _, want := range []string{"restore plan (dry run)", "(archive,", "(+1000000000)", "m1=" + peer.String(), "kube dir  create    manifests/kube-apiserver.yaml", "nothing was changed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("dry run wrote %v", ents)
	}

	stdout, stderr, code = runCLI(t, args...)
	if code != 0 {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	for _, want := range []string{"restored " + dataDir, "next steps:", "restart kube-apiserver"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(kube, "manifests", "kube-apiserver.yaml")); err != nil || !strings.Contains(string(b), "--encryption-provider-config") {
		t.Errorf("kube dir not restored: %v", err)
	}

	// Every live key of demo.db, read through a real etcd on the restored dir.
	src, err := inspect.Open(demoDB, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := src.Index(t.Context(), inspect.Query{})
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := etcdtest.StartDir(dataDir, etcdtest.WithMember("m1", peer))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	resp, err := s.Client.Get(t.Context(), "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != len(entries) || len(entries) == 0 {
		t.Errorf("restored etcd serves %d keys, demo.db has %d live", len(resp.Kvs), len(entries))
	}
	if resp.Header.Revision < 1_000_000_000 {
		t.Errorf("revision %d not bumped", resp.Header.Revision)
	}

	// Run again on the now-populated dirs: the kube dir is identical, the
	// data dir is moved aside (not deleted) — but etcd runs, so refuse (5).
	_, stderr, code = runCLI(t, args...)
	if code != exitLocked {
		t.Fatalf("restore under a running etcd: exit %d, want %d: %s", code, exitLocked, stderr)
	}
	s.Stop()
	stdout, stderr, code = runCLI(t, args...)
	if code != 0 {
		t.Fatalf("second restore: %d %s", code, stderr)
	}
	backups, _ := filepath.Glob(dataDir + ".etcdsafe-*")
	if len(backups) != 1 || !strings.Contains(stdout, "the old data dir is "+backups[0]) {
		t.Errorf("backups %v, output:\n%s", backups, stdout)
	}
}

func TestRestoreCLIErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.db")
	// demo.db is a snapshot; without its trailer it is what a copy of
	// member/snap/db looks like.
	copyFile(t, demoDB, raw, func(b []byte) []byte { return b[:len(b)-32] })
	cases := []struct {
		name string
		args []string
		code int
		hint string
	}{
		{"raw db without --skip-hash-check", []string{"restore", raw, "--data-dir", filepath.Join(dir, "d1")}, exitIntegrity, "--skip-hash-check"},
		{"peer url mismatch", []string{"restore", raw, "--skip-hash-check", "--data-dir", filepath.Join(dir, "d2"), "--name", "a", "--initial-advertise-peer-urls", "http://127.0.0.1:1", "--initial-cluster", "a=http://127.0.0.1:2"}, exitUsage, "crash-loops"},
		{"mark-compacted without bump", []string{"restore", raw, "--bump-revision", "0", "--mark-compacted", "--data-dir", filepath.Join(dir, "d3")}, exitUsage, ""},
		{"only without kube dir", []string{"restore", raw, "--only", "pki", "--data-dir", filepath.Join(dir, "d4")}, exitUsage, ""},
		{"kube dir from a snapshot", []string{"restore", raw, "--skip-hash-check", "--kube-dir", filepath.Join(dir, "k"), "--data-dir", filepath.Join(dir, "d5")}, exitUsage, "etcdsafe backup --kube-dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.hint) {
				t.Fatalf("exit %d (want %d), stderr:\n%s", code, tc.code, stderr)
			}
			for _, d := range []string{"d1", "d2", "d3", "d4", "d5", "k"} {
				if _, err := os.Stat(filepath.Join(dir, d)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s written after a refused restore", d)
				}
			}
		})
	}
}
