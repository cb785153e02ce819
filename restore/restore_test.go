package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// fixture is a snapshot of a real etcd holding k8s-shaped keys.
type fixture struct {
	snap string            // saved through the Snapshot RPC (with trailer)
	raw  string            // member/snap/db copied from the stopped member
	kvs  map[string]string // every live key and value at snapshot time
	rev  int64             // revision at snapshot time
}

// shared is the package's one fixture, built by the first newFixture from
// one embedded etcd (stopped once the snapshot and the raw db are taken)
// and removed by TestMain.
var shared struct {
	once sync.Once
	dir  string
	f    *fixture
	err  error
}

// newFixture returns the package's fixture with the snapshot and the raw db
// copied into t.TempDir(), so that no test sees another's changes.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	shared.once.Do(func() { shared.f, shared.err = buildFixture() })
	if shared.err != nil {
		t.Fatalf("fixture: %v", shared.err)
	}
	dir := t.TempDir()
	f := &fixture{kvs: shared.f.kvs, rev: shared.f.rev,
		snap: filepath.Join(dir, "snapshot.db"), raw: filepath.Join(dir, "raw.db")}
	copyFile(t, shared.f.snap, f.snap)
	copyFile(t, shared.f.raw, f.raw)
	return f
}

// cleanupSharedFixture removes the shared fixture's files, if built.
func cleanupSharedFixture() {
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// buildFixture writes k8s-shaped keys with some history into a real etcd,
// takes a snapshot, stops the member and copies its db.
func buildFixture() (_ *fixture, err error) {
	if shared.dir, err = os.MkdirTemp("", "etcdsafe-restore-fixture-"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcdtest.StartDir(filepath.Join(shared.dir, "etcd"))
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	f := &fixture{kvs: map[string]string{}}
	put := func(k, v string) error {
		_, err := s.Client.Put(ctx, k, v)
		f.kvs[k] = v
		return err
	}
	for i := range 40 {
		k := fmt.Sprintf("/registry/configmaps/ns%d/cm-%d", i%3, i)
		if err := put(k, fmt.Sprintf("k8s\x00value-%d-%s", i, strings.Repeat("x", i*37))); err != nil {
			return nil, err
		}
	}
	// History: an overwrite and a deletion the restore must carry as is.
	if err := put("/registry/configmaps/ns0/cm-0", "k8s\x00v2"); err != nil {
		return nil, err
	}
	if _, err := s.Client.Delete(ctx, "/registry/configmaps/ns1/cm-1"); err != nil {
		return nil, err
	}
	delete(f.kvs, "/registry/configmaps/ns1/cm-1")
	if err := put("compact_rev_key", ""); err != nil {
		return nil, err
	}
	if f.rev, err = s.Revision(ctx); err != nil {
		return nil, err
	}
	f.snap = filepath.Join(shared.dir, "snapshot.db")
	if _, err := snapshot.Save(ctx, s.Client, f.snap); err != nil {
		return nil, err
	}
	s.Stop()
	f.raw = filepath.Join(shared.dir, "raw.db")
	b, err := os.ReadFile(s.DBPath())
	if err != nil {
		return nil, err
	}
	return f, os.WriteFile(f.raw, b, 0o600)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// freePeerURL returns an http URL on a loopback port that is free now.
func freePeerURL(t *testing.T) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// checkRestored starts a real etcd on dataDir as member name/peer and
// checks keys, values, membership, the bump and the compaction mark.
func checkRestored(t *testing.T, f *fixture, dataDir, name string, peer url.URL, bump int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := os.Stat(dataDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode: %v %v", st, err)
	}
	s, err := etcdtest.StartDir(dataDir, etcdtest.WithMember(name, peer))
	if err != nil {
		t.Fatalf("etcd does not start on the restored dir: %v", err)
	}
	defer s.Stop()
	resp, err := s.Client.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(got) != len(f.kvs) {
		t.Errorf("restored %d keys, snapshot has %d", len(got), len(f.kvs))
	}
	for k, v := range f.kvs {
		if got[k] != v {
			t.Errorf("key %q: restored len=%d, snapshot len=%d", k, len(got[k]), len(v))
		}
	}
	if resp.Header.Revision < f.rev+bump {
		t.Errorf("revision %d, want >= %d + %d", resp.Header.Revision, f.rev, bump)
	}
	ml, err := s.Client.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 1 || ml.Members[0].Name != name || len(ml.Members[0].PeerURLs) != 1 || ml.Members[0].PeerURLs[0] != peer.String() {
		t.Errorf("members %v, want only %s=%s", ml.Members, name, peer.String())
	}
	if bump > 0 {
		_, err = s.Client.Get(ctx, "/registry/configmaps/ns0/cm-3", clientv3.WithRev(f.rev))
		if !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("read at the old revision %d: want compacted, got %v", f.rev, err)
		}
	}
	put, err := s.Client.Put(ctx, "/registry/configmaps/ns0/new", "after")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision <= f.rev+bump {
		t.Errorf("new write got revision %d, want > %d", put.Header.Revision, f.rev+bump)
	}
}

func mustPrepareExecute(t *testing.T, o Options) (*Plan, *Result) {
	t.Helper()
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	res, err := p.Execute(context.Background())
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	return p, res
}

// TestRestoreSources restores a snapshot file, a raw db and an archive,
// then runs a real etcd on each result.
func TestRestoreSources(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	arch := writeArchive(t, f.snap, "")
	cases := []struct {
		name string
		src  string
		skip bool
		bump uint64
		kind SourceKind
	}{
		{"snapshot", f.snap, false, DefaultBumpRevision, SourceSnapshot},
		{"raw db", f.raw, true, DefaultBumpRevision, SourceRawDB},
		{"archive", arch, false, DefaultBumpRevision, SourceArchive},
		{"snapshot without bump", f.snap, false, 0, SourceSnapshot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "etcd")
			peer := freePeerURL(t)
			p, res := mustPrepareExecute(t, Options{
				Source: tc.src, AllowUnencrypted: true, DataDir: dataDir, SkipHashCheck: tc.skip,
				BumpRevision: tc.bump, MarkCompacted: tc.bump > 0,
				Membership: MembershipFlags{Name: "m1", InitialAdvertisePeerURLs: peer.String()},
			})
			if p.Kind != tc.kind || p.Revision != f.rev || res.Backup != "" {
				t.Errorf("plan kind %s rev %d backup %q", p.Kind, p.Revision, res.Backup)
			}
			checkRestored(t, f, dataDir, "m1", peer, int64(tc.bump))
		})
	}
}

// writeArchive writes an unencrypted archive of snap and kubeDir (if set).
func writeArchive(t *testing.T, snap, kubeDir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "backup.tar.zst")
	if err := os.WriteFile(out, archiveBytes(t, snap, kubeDir, archive.WriterOptions{Insecure: true}), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// archiveBytes is the archive of snap and kubeDir (if set) written with wo.
func archiveBytes(t *testing.T, snap, kubeDir string, wo archive.WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, wo)
	if err != nil {
		t.Fatal(err)
	}
	size, sum, err := archive.HashFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := w.AddSnapshot(in, size, sum); err != nil {
		t.Fatal(err)
	}
	if kubeDir != "" {
		if err := w.AddDir(kubeDir, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRawDBNeedsSkipHashCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	_, err := Prepare(context.Background(), Options{Source: f.raw, DataDir: dataDir, BumpRevision: 1, MarkCompacted: true})
	if !errors.Is(err, ErrNoTrailer) || !strings.Contains(err.Error(), "--skip-hash-check") {
		t.Fatalf("want ErrNoTrailer naming --skip-hash-check, got %v", err)
	}
	// A flipped byte in a snapshot with trailer is caught too.
	bad := filepath.Join(t.TempDir(), "bad.db")
	copyFile(t, f.snap, bad)
	fh, err := os.OpenFile(bad, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte{0xff}, 5000); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := Prepare(context.Background(), Options{Source: bad, DataDir: dataDir}); !errors.Is(err, snapshot.ErrTrailerMismatch) {
		t.Fatalf("want ErrTrailerMismatch, got %v", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused restore created the data dir")
	}
}

// TestManifestMembership restores with membership from kubeadm-shaped
// manifests, and catches a peer URL mismatch before writing anything.
func TestManifestMembership(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	three := "master-1=https://10.0.0.11:2380,master-2=https://10.0.0.12:2380,master-3=https://10.0.0.13:2380"
	cases := []struct {
		name        string
		file        string
		flags       MembershipFlags
		wantMembers map[string]string // name -> peer URL in the restored db
		wantErr     error
	}{
		{"single master", "etcd-kubeadm-single.yaml", MembershipFlags{}, map[string]string{"master-1": "https://10.0.0.11:2380"}, nil},
		{"joined master, force-new-cluster outcome", "etcd-kubeadm-joined-crlf.yaml", MembershipFlags{}, map[string]string{"master-3": "https://10.0.0.13:2380"}, nil},
		{"joined master, whole cluster", "etcd-kubeadm-joined-crlf.yaml", MembershipFlags{InitialCluster: three},
			map[string]string{"master-1": "https://10.0.0.11:2380", "master-2": "https://10.0.0.12:2380", "master-3": "https://10.0.0.13:2380"}, nil},
		{"peer url mismatch", "etcd-kubeadm-single.yaml", MembershipFlags{InitialCluster: "master-1=https://10.0.0.12:2380"}, nil, ErrMembership},
		{"name mismatch", "etcd-kubeadm-single.yaml", MembershipFlags{Name: "master-2"}, nil, ErrMembership},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			man := filepath.Join(dir, "etcd.yaml")
			// The manifest's data dir, confirmed with DataDir.
			dataDir := filepath.Join(dir, "var-lib-etcd")
			b := strings.ReplaceAll(string(readTestdata(t, tc.file)), "--data-dir=/var/lib/etcd", "--data-dir="+dataDir)
			if err := os.WriteFile(man, []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := Prepare(context.Background(), Options{Source: f.snap, Manifest: man, DataDir: dataDir, Membership: tc.flags, BumpRevision: 10, MarkCompacted: true})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
				if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
					t.Fatal("data dir written despite the mismatch")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.DataDir != dataDir {
				t.Fatalf("data dir %s, want the manifest's %s", p.DataDir, dataDir)
			}
			if _, err := p.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			s, err := inspect.Open(dataDir, inspect.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, err := s.Status(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, m := range st.Members {
				got[m.Name] = strings.Join(m.PeerURLs, ",")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantMembers) {
				t.Errorf("members %v, want %v", got, tc.wantMembers)
			}
		})
	}
}
