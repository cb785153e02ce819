package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/snapshot"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
	"github.com/etcdsafe/etcdsafe/store"
)

// TestRunFromDB: a db file is archived with the kube dir (less the
// excluded path) into a local target; the sidecar holds the pinned figures
// of the fixture and the archive's size and hash; stock tools read the
// snapshot back byte for byte.
func TestRunFromDB(t *testing.T) {
	t.Parallel()
	id := identity(t)
	dir := t.TempDir()
	o := fileOptions(dir, id)
	o.KubeDir, o.Excludes = kubeDir(t, 0), []string{"tmp"}
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Where != filepath.Join(dir, res.Archive) || !strings.HasPrefix(res.Archive, "c-") || !strings.HasSuffix(res.Archive, ".tar.zst.age") {
		t.Fatalf("result %+v", res)
	}
	if got := names(t, dir); len(got) != 3 || got[0] != res.Archive || got[1] != res.Archive+".index" || got[2] != res.Archive+".json" {
		t.Fatalf("files %v", got)
	}
	// the key index: the records of the real snapshot, bound to the archive
	if res.Index == nil || res.Index.Records != 230 || !res.Outputs[0].Index {
		t.Fatalf("index %+v, output %+v", res.Index, res.Outputs[0])
	}
	if st, err := os.Stat(res.Where); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode: %v %v", st, err)
	}
	sc, err := archive.ReadSidecar(archive.SidecarPath(res.Where))
	if err != nil {
		t.Fatal(err)
	}
	// Pinned: the real snapshot's newest revision and size.
	if sc.Revision != 231 || sc.DBSize != 303136 || sc.Host != "h" || sc.Cluster != "c" || !sc.Encrypted || len(sc.Recipients) != 1 ||
		!strings.HasPrefix(sc.Source, "file://") || sc.ArchiveSHA256 != fileSHA(t, res.Where) {
		t.Errorf("sidecar %+v", sc)
	}
	if err := archive.VerifyAgainstSidecar(res.Where, sc); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(res.Where)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ents := stockEntries(t, f, id)
	if ents["etcd/snapshot.db"] != fileSHA(t, realDB) {
		t.Errorf("snapshot in the archive differs: %v", ents)
	}
	if _, ok := ents["kubernetes/pki/ca.key"]; !ok {
		t.Errorf("kube dir missing: %v", ents)
	}
	for n := range ents {
		if strings.Contains(n, "cache.bin") {
			t.Errorf("excluded file archived: %s", n)
		}
	}
}

// TestRunStdout: the archive alone goes to Stdout; nothing is published
// and the Result has no location.
func TestRunStdout(t *testing.T) {
	t.Parallel()
	id := identity(t)
	o := fileOptions(t.TempDir(), id)
	var buf bytes.Buffer
	o.Outputs, o.Stdout = nil, &buf
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Where != "" || res.Archive != "" || res.Sidecar.ArchiveSize != int64(buf.Len()) {
		t.Fatalf("result %+v, %d bytes written", res, buf.Len())
	}
	if ents := stockEntries(t, &buf, id); ents["etcd/snapshot.db"] != fileSHA(t, realDB) {
		t.Fatalf("entries %v", ents)
	}
}

// TestRunSameSecond: backups named from the same second get _02, _03; List
// orders the later first.
func TestRunSameSecond(t *testing.T) {
	t.Parallel()
	id := identity(t)
	dir := t.TempDir()
	at := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	var got []string
	for range 3 {
		o := fileOptions(dir, id)
		o.Now = func() time.Time { return at }
		res, err := Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Archive)
	}
	want := []string{"c-20260601T020000Z.tar.zst.age", "c-20260601T020000Z_02.tar.zst.age", "c-20260601T020000Z_03.tar.zst.age"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("names %v, want %v", got, want)
	}
	entries, err := List(t.Context(), store.NewLocal(dir))
	if err != nil || len(entries) != 3 || entries[0].Name != want[2] || entries[2].Name != want[0] {
		t.Fatalf("list order %+v %v", entries, err)
	}
}

// TestRunRefusesBeforeSnapshot: problems found before the snapshot fail
// with the right error and write nothing; the endpoint is never dialled.
func TestRunRefusesBeforeSnapshot(t *testing.T) {
	t.Parallel()
	id := identity(t)
	big := testfix.BigKubeDir(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var oe *OptionsError
	tests := []struct {
		name  string
		edit  func(o *Options, dir string)
		check func(err error) bool
	}{
		{"kube dir too large", func(o *Options, _ string) { o.KubeDir = big }, func(err error) bool {
			return errors.Is(err, archive.ErrDirTooLarge) && strings.Contains(err.Error(), "1014 entries")
		}},
		{"tmp dir is the target", func(o *Options, dir string) { o.TmpDir = dir }, func(err error) bool { return errors.As(err, &oe) }},
		{"tmp dir inside the target", func(o *Options, dir string) { o.TmpDir = filepath.Join(dir, "staging") }, func(err error) bool { return errors.As(err, &oe) }},
		{"kube dir is a file", func(o *Options, _ string) { o.KubeDir = file }, func(err error) bool { return errors.As(err, &oe) }},
		{"explicit kube dir missing", func(o *Options, _ string) { o.KubeDir = file + "-missing" }, func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := fileOptions(dir, id)
			o.DB, o.Endpoints = "", []string{"http://127.0.0.1:1"}
			tc.edit(&o, dir)
			_, err := Run(t.Context(), o)
			if err == nil || !tc.check(err) || strings.Contains(err.Error(), "127.0.0.1:1") {
				t.Fatalf("err = %v", err)
			}
			if got := names(t, dir); len(got) != 0 && !(len(got) == 1 && got[0] == "staging") {
				t.Fatalf("files written: %v", got)
			}
		})
	}
	// A default kube dir that is missing is skipped.
	dir := t.TempDir()
	o := fileOptions(dir, id)
	o.KubeDir, o.KubeDirOptional = file+"-missing", true
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("optional kube dir missing: %v", err)
	}
}

// TestRunDamagedDB: a snapshot whose trailer does not match, and a raw db
// (no trailer) with a zeroed page that bbolt's check sees, are refused
// with an integrity error and nothing published.
func TestRunDamagedDB(t *testing.T) {
	t.Parallel()
	snap, err := os.ReadFile(realDB)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), snap...)
	flipped[len(flipped)/2] ^= 1
	raw := snap[:len(snap)-snapshot.TrailerSize]
	// The first zeroed page (past the meta pages) that bbolt sees.
	var zeroed []byte
	for i := 2; i*4096 < len(raw) && zeroed == nil; i++ {
		b := append([]byte(nil), raw...)
		clear(b[i*4096 : (i+1)*4096])
		if testfix.BboltSeesDamage(t, writeTemp(t, b)) {
			zeroed = b
		}
	}
	if zeroed == nil {
		t.Fatal("no zeroed page is seen by bbolt: the fixture does not exercise the check")
	}
	tests := []struct {
		name string
		data []byte
		want func(error) bool
	}{
		{"trailer mismatch", flipped, func(err error) bool { return errors.Is(err, snapshot.ErrTrailerMismatch) }},
		{"raw db, zeroed page", zeroed, func(err error) bool {
			return errors.Is(err, inspect.ErrCorrupt) || errors.Is(err, inspect.ErrTruncated) || errors.Is(err, inspect.ErrNotEtcd) || errors.Is(err, inspect.ErrNotSnapshot)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := fileOptions(dir, identity(t))
			o.DB = writeTemp(t, tc.data)
			if _, err := Run(t.Context(), o); err == nil || !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
			if got := names(t, dir); len(got) != 0 {
				t.Fatalf("files written: %v", got)
			}
		})
	}
	// The intact raw db passes the page check and is archived.
	o := fileOptions(t.TempDir(), identity(t))
	o.DB = writeTemp(t, raw)
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("intact raw db: %v", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cancelProgress cancels the run after n archive bytes.
type cancelProgress struct {
	noProgress
	after  int64
	cancel context.CancelFunc
}

func (p cancelProgress) Written(n int64) {
	if n > p.after {
		p.cancel()
	}
}

// TestRunInterrupted: a context cancelled mid-write fails the run with
// context.Canceled and leaves neither a final name nor a temp file.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := fileOptions(dir, identity(t))
	o.KubeDir = kubeDir(t, 2<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o.Progress = cancelProgress{after: 256 << 10, cancel: cancel}
	if _, err := Run(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
}

// TestRunSweeps: a run removes the partial archives killed runs left in
// the target (not other temp files) and logs each.
func TestRunSweeps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	partial := filepath.Join(dir, ".c-20260302T020000Z.tar.zst.age.tmp-12345")
	other := filepath.Join(dir, ".notes.txt.tmp-1")
	for _, p := range []string{partial, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	o := fileOptions(dir, identity(t))
	o.Logger = slogTo(&log)
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial archive not swept: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("an unrelated temp file was removed")
	}
	if !strings.Contains(log.String(), "removed a killed run's partial archive") || !strings.Contains(log.String(), filepath.Base(partial)) {
		t.Fatalf("no log line:\n%s", log.String())
	}
}

// TestRunLive: a live member over TLS with client certificates; the
// snapshot is spooled in a staging dir under TmpDir that is gone after the
// run, and the sidecar records the member's revision and endpoint.
func TestRunLive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t, etcdtest.WithTLS())
	ctx := t.Context()
	var ops []clientv3.Op
	for i := range 100 {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/registry/configmaps/default/cm-%03d", i), strings.Repeat("v", 500)))
	}
	if _, err := s.Client.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir, tmp := t.TempDir(), t.TempDir()
	id := identity(t)
	o := fileOptions(dir, id)
	o.DB, o.Endpoints, o.DialTimeout, o.TmpDir = "", []string{"", s.Endpoint}, 5*time.Second, tmp
	o.TLS = TLSFiles{CACert: filepath.Join(s.PKIDir, "ca.crt"), Cert: filepath.Join(s.PKIDir, "healthcheck-client.crt"),
		Key: filepath.Join(s.PKIDir, "healthcheck-client.key")}
	started := false
	o.Progress = startProgress{&started, tmp, t}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Fatal("Progress.Start not called")
	}
	sc := res.Sidecar
	if sc.Revision != rev || sc.Source != s.Endpoint || sc.EtcdVersion == "" {
		t.Errorf("sidecar %+v, want revision %d from %s", sc, rev, s.Endpoint)
	}
	// the key index, walked through the encrypted spool: verify finds
	// every record of the extracted snapshot in it
	if res.Index == nil || res.Index.Records < 100 {
		t.Fatalf("index %+v", res.Index)
	}
	if rep, err := Verify(ctx, res.Where, VerifyOptions{Identities: []age.Identity{id}, TmpDir: t.TempDir()}); err != nil || rep.Index != IndexMatches {
		t.Fatalf("verify: %v, %+v", err, rep)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("staging left in TmpDir: %v", left)
	}
	// Wrong client certificate: no endpoint answers.
	o.TLS.Cert, o.TLS.Key = filepath.Join(s.PKIDir, "ca.crt"), filepath.Join(s.PKIDir, "ca.key")
	o.Endpoints, o.DialTimeout, o.Progress = []string{"https://127.0.0.1:1"}, 300*time.Millisecond, nil
	if _, err := Run(ctx, o); err == nil || !strings.Contains(err.Error(), "no etcd endpoint answered") {
		t.Fatalf("err = %v", err)
	}
	o.Endpoints = []string{" "}
	var oe *OptionsError
	if _, err := Run(ctx, o); !errors.As(err, &oe) {
		t.Fatalf("no endpoint: err = %v", err)
	}
}

// startProgress checks that the snapshot is spooled in a staging dir under
// TmpDir when Start is called.
type startProgress struct {
	started *bool
	tmp     string
	t       *testing.T
}

func (p startProgress) Start(int64) {
	*p.started = true
	if m, _ := filepath.Glob(filepath.Join(p.tmp, StagingPrefix+"*")); len(m) != 1 {
		p.t.Errorf("staging dirs at Start: %v", m)
	}
}
func (startProgress) Written(int64) {}
func (startProgress) Done(int64)    {}
