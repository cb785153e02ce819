package main

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// oldRealDirs are snapshots written by older real control planes, made by
// scripts/mk-old-snapshots.sh (see each README.md), with pinned revisions so
// that a regenerated fixture is noticed.
var oldRealDirs = []struct {
	dir      string
	revision string
}{
	{"../../testdata/real-k8s1.33-etcd3.5", "350"},
}

// TestParityWithOlderAPIServers: what kube-apiserver v1.33 over etcd v3.5
// served (api/*.json, listed at exactly the snapshot's revision) is what
// `get --raw` decodes from the snapshot it wrote, Secrets decrypted.
// managedFields aside, which the capture removed as kubectl does.
func TestParityWithOlderAPIServers(t *testing.T) {
	t.Parallel()
	for _, tc := range oldRealDirs {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			snap := filepath.Join(tc.dir, "snapshot.db")
			stdout, stderr, code := runCLI(t, "status", snap, "-o", "json")
			if code != 0 {
				t.Fatalf("status: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, `"revision": `+tc.revision) && !strings.Contains(stdout, `"revision":`+tc.revision) {
				t.Fatalf("status does not report revision %s:\n%s", tc.revision, stdout)
			}
			equal, total := compareWithAPI(t, tc.dir)
			if total < 200 {
				t.Errorf("only %d objects compared", total)
			}
			t.Logf("parity %d/%d", equal, total)
			fmt.Printf("%s: parity %d/%d\n", filepath.Base(tc.dir), equal, total)
		})
	}
}

// TestRestoreOlderSnapshots: a snapshot written by etcd v3.5 under
// kube-apiserver v1.33 restores into a data dir that today's etcd serves,
// every live key present, Secrets still encrypted, revision bumped.
func TestRestoreOlderSnapshots(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	for _, tc := range oldRealDirs {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			snap := filepath.Join(tc.dir, "snapshot.db")
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "etcd")
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			peer := url.URL{Scheme: "http", Host: l.Addr().String()}
			l.Close()
			_, stderr, code := runCLI(t, "restore", snap, "--data-dir", dataDir, "--name", "m1", "--initial-advertise-peer-urls", peer.String(), "--tmp-dir", dir)
			if code != 0 {
				t.Fatalf("restore: exit %d: %s", code, stderr)
			}
			src, err := inspect.Open(snap, inspect.OpenOptions{})
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
			resp, err := s.Client.Get(t.Context(), "\x00", clientv3.WithFromKey())
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != len(entries) || len(entries) < 300 {
				t.Errorf("restored etcd serves %d keys, the snapshot has %d live", len(resp.Kvs), len(entries))
			}
			want, _ := strconv.ParseInt(tc.revision, 10, 64)
			if resp.Header.Revision <= want+1_000_000_000-1 {
				t.Errorf("revision %d, want above %d + 1e9", resp.Header.Revision, want)
			}
			secrets := 0
			for _, kv := range resp.Kvs {
				if strings.HasPrefix(string(kv.Key), "/registry/secrets/") {
					secrets++
					if !strings.HasPrefix(string(kv.Value), "k8s:enc:aescbc:v1:key1:") {
						t.Errorf("%s is not encrypted at rest after the restore", kv.Key)
					}
				}
			}
			if secrets < 15 {
				t.Errorf("only %d Secrets restored", secrets)
			}
			t.Logf("restored %d keys at revision %d (%d Secrets, still encrypted)", len(resp.Kvs), resp.Header.Revision, secrets)
		})
	}
}
