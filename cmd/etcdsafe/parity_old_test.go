package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
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
	{"../../testdata/real-k8s1.30-etcd3.5", "338"},
}

// TestParityWithOlderAPIServers: what kube-apiserver v1.33 or v1.30 over
// etcd v3.5 served (api/*.json, listed at exactly the snapshot's revision,
// managedFields included) is exactly what `get --raw --show-managed-fields`
// decodes from the snapshot it wrote, Secrets decrypted: no field left out,
// absent and null told apart. The version is the one the snapshot names
// (kubeadm-config): v1.30 serves `creationTimestamp: null` in templates.
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
			if len(resp.Kvs) != len(entries) || len(entries) < 250 {
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

// TestOlderParityNeedsServedVersion: the parity above holds because get
// --raw serves as the version the snapshot names. Served as this build's
// Kubernetes, the v1.30 objects differ from what v1.30 served, exactly in
// the template timestamps: the comparison sees what it must see.
func TestOlderParityNeedsServedVersion(t *testing.T) {
	t.Parallel()
	dir := "../../testdata/real-k8s1.30-etcd3.5"
	var want struct{ Items []map[string]any }
	b, err := os.ReadFile(filepath.Join(dir, "api", "deployments.apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.34", "v1.37.2"} {
		stdout, stderr, code := runCLI(t, "get", filepath.Join(dir, "snapshot.db"), "deployments.apps", "-A", "--raw", "-o", "json", "--show-managed-fields", "--server-version", v)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct{ Items []map[string]any }
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Items) != len(want.Items) || len(want.Items) < 3 {
			t.Fatalf("%d objects, the API served %d", len(got.Items), len(want.Items))
		}
		for i := range want.Items {
			d := jsonDiff("", want.Items[i], got.Items[i])
			if len(d) != 1 || d[0] != ".spec.template.metadata.creationTimestamp: api=null etcdsafe=(absent)" {
				t.Errorf("served as %s: %s: diffs = %q", v, objID(want.Items[i]), d)
			}
		}
	}
}
