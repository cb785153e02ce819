package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/restore"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store"
)

// demo is a snapshot of the demo cluster, with what the tests expect of it.
type demo struct {
	snap      string // snapshot.db with its trailer
	encConfig []byte // the EncryptionConfiguration of its Secrets
	keys      int    // live keys
	secrets   int    // Secrets among them
	encrypted int    // values encrypted at rest
	rev       int64
}

var shared struct {
	once sync.Once
	dir  string
	d    *demo
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// demoSnapshot returns the demo cluster's snapshot, built once.
func demoSnapshot(t *testing.T) *demo {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	shared.once.Do(func() { shared.d, shared.err = buildDemo() })
	if shared.err != nil {
		t.Fatalf("demo snapshot: %v", shared.err)
	}
	return shared.d
}

func buildDemo() (_ *demo, err error) {
	if shared.dir, err = os.MkdirTemp("", "etcdsafe-drill-fixture-"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcdtest.StartDir(filepath.Join(shared.dir, "etcd"))
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	w, err := kubestore.New(s.Client, demodata.WriterOptions())
	if err != nil {
		return nil, err
	}
	sum, err := demodata.Fill(ctx, s.Client, w)
	if err != nil {
		return nil, err
	}
	d := &demo{encConfig: w.EncryptionConfigYAML(), snap: filepath.Join(shared.dir, "snapshot.db")}
	all, err := s.Client.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		return nil, err
	}
	d.keys, d.rev = len(all.Kvs), all.Header.Revision
	for _, o := range sum.Objects {
		if o.Kind == "Secret" {
			d.secrets++
		}
		if o.Encrypted {
			d.encrypted++
		}
	}
	if _, err := snapshot.Save(ctx, s.Client, d.snap); err != nil {
		return nil, err
	}
	return d, nil
}

// open opens path as the read commands do.
func open(t *testing.T, path string, o source.Options) *source.Source {
	t.Helper()
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "/registry"
	}
	o.TmpDir = t.TempDir()
	s, err := source.Open(context.Background(), path, o)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// emptyDir fails unless dir holds nothing.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		t.Errorf("left behind in %s: %s", dir, de.Name())
	}
}

func TestDrillPasses(t *testing.T) {
	d := demoSnapshot(t)
	src := open(t, d.snap, source.Options{DecryptionConfig: d.encConfig})
	tmp := t.TempDir()
	var steps []string
	rep, err := Run(context.Background(), src, Options{TmpDir: tmp, PageSize: 7, OnStep: func(s string) { steps = append(steps, s) }})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if !rep.OK || rep.Keys != d.keys || rep.KeysRead != d.keys || rep.Missing+rep.Extra+rep.Different != 0 {
		t.Errorf("keys: %+v, want %d read back, none missing, extra or different", rep, d.keys)
	}
	if rep.Objects+rep.NotObjects != d.keys || rep.Secrets != d.secrets || rep.Encrypted != d.encrypted || rep.Undecodable+rep.KeyProblems+rep.KMS != 0 {
		t.Errorf("objects: %d objects + %d not objects (want %d keys), %d secrets (want %d), %d encrypted (want %d), %d undecodable, %d key problems, %d kms",
			rep.Objects, rep.NotObjects, d.keys, rep.Secrets, d.secrets, rep.Encrypted, d.encrypted, rep.Undecodable, rep.KeyProblems, rep.KMS)
	}
	if rep.Revision != d.rev || rep.RestoredRevision != d.rev+1_000_000_000 {
		t.Errorf("revision %d restored at %d, want %d and %d", rep.Revision, rep.RestoredRevision, d.rev, d.rev+1_000_000_000)
	}
	if rep.Quota != restore.DefaultQuotaBytes || rep.QuotaSource != "etcd's default" || rep.DBSize <= 0 || len(rep.Alarms) != 0 || len(rep.Blockers) != 0 {
		t.Errorf("quota %d (%s), db %d, alarms %v, blockers %v", rep.Quota, rep.QuotaSource, rep.DBSize, rep.Alarms, rep.Blockers)
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check %s failed: %s", c.Name, c.Detail)
		}
	}
	if got := strings.Join(steps, ","); got != "index,restore,start,read,write" {
		t.Errorf("steps %s", got)
	}
	emptyDir(t, tmp)
}

func TestDrillKeyProblems(t *testing.T) {
	d := demoSnapshot(t)
	src := open(t, d.snap, source.Options{}) // no EncryptionConfiguration: the Secrets stay closed
	tmp := t.TempDir()
	rep, err := Run(context.Background(), src, Options{TmpDir: tmp})
	var fe *FailedError
	if !errors.As(err, &fe) || !errors.Is(err, decode.ErrEncrypted) || errors.Is(err, ErrMismatch) {
		t.Fatalf("err %v, want a FailedError wrapping decode.ErrEncrypted and not ErrMismatch", err)
	}
	if rep.OK || rep.KeyProblems != d.encrypted || rep.Missing+rep.Extra+rep.Different != 0 {
		t.Errorf("report: ok %v, %d key problems (want %d), %d/%d/%d", rep.OK, rep.KeyProblems, d.encrypted, rep.Missing, rep.Extra, rep.Different)
	}
	emptyDir(t, tmp)
}

// TestDrillAlarm drills a snapshot taken while etcd had raised NOSPACE:
// etcd keeps its alarms in the db's "alarm" bucket, so the restored member
// comes up with it and refuses writes.
func TestDrillAlarm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := etcdtest.Start(t, etcdtest.WithQuotaBytes(1<<20))
	w, err := kubestore.New(s.Client, kubestore.Options{NoManagedFields: true, NoLastApplied: true})
	if err != nil {
		t.Fatal(err)
	}
	var full bool
	for i := range 200 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%d", i), Namespace: "default"},
			Data: map[string]string{"x": strings.Repeat("x", 64<<10)}}
		_, err := w.Create(ctx, cm)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			full = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !full {
		t.Fatal("the quota of 1 MiB never filled")
	}
	// etcd raises the alarm through raft after refusing the put: wait
	// until it is applied (and so in the db's alarm bucket)
	for {
		al, err := s.Client.AlarmList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(al.Alarms) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	snap := filepath.Join(t.TempDir(), "nospace.db")
	if _, err := snapshot.Save(ctx, s.Client, snap); err != nil {
		t.Fatal(err)
	}
	src := open(t, snap, source.Options{})
	tmp := t.TempDir()
	rep, err := Run(ctx, src, Options{TmpDir: tmp})
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrMismatch) {
		t.Fatalf("err %v, want ErrFailed without ErrMismatch", err)
	}
	if len(rep.Alarms) != 1 || !strings.HasPrefix(rep.Alarms[0], "NOSPACE") {
		t.Errorf("alarms %v, want NOSPACE", rep.Alarms)
	}
	if len(rep.Blockers) != 1 || rep.Blockers[0].Kind != "alarm" || !rep.Blockers[0].Fatal {
		t.Errorf("blockers %+v, want the alarm", rep.Blockers)
	}
	for _, c := range rep.Checks {
		if !c.OK && c.Name != "objects" {
			t.Errorf("check %s failed: %s (restore clears the alarm: the restored etcd takes writes)", c.Name, c.Detail)
		}
	}
	if !strings.Contains(err.Error(), "NOSPACE") {
		t.Errorf("error %q does not name the alarm", err)
	}
	emptyDir(t, tmp)
}

func failedCheck(r *Report, name string) bool {
	for _, c := range r.Checks {
		if c.Name == name && !c.OK {
			return true
		}
	}
	return false
}

// archiveOf backs db up with a kube dir whose etcd manifest sets quota
// (none when empty), encrypted to a new identity.
func archiveOf(t *testing.T, db, quota string) (string, age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	kube := t.TempDir()
	if err := os.MkdirAll(filepath.Join(kube, "manifests"), 0o700); err != nil {
		t.Fatal(err)
	}
	flags := "    - --data-dir=/var/lib/etcd\n"
	if quota != "" {
		flags += "    - --quota-backend-bytes=" + quota + "\n"
	}
	pod := "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --name=m1\n" + flags
	if err := os.WriteFile(filepath.Join(kube, "manifests", "etcd.yaml"), []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := backup.Run(context.Background(), backup.Options{DB: db, KubeDir: kube, Outputs: []backup.Output{{Target: store.NewLocal(out)}},
		Recipients: []age.Recipient{id.Recipient()}, Fingerprints: []string{archive.RecipientFingerprint(id.Recipient().String())},
		Cluster: "c", Host: "h", NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Where, id
}

func TestDrillArchiveQuota(t *testing.T) {
	d := demoSnapshot(t)
	cases := []struct {
		name      string
		quota     string
		wantQuota int64
		source    string
		blocked   bool
	}{
		{"no quota set", "", restore.DefaultQuotaBytes, "etcd's default", false},
		{"quota above the db", "8589934592", 8 << 30, archivedManifest, false},
		{"quota below the db", "65536", 65536, archivedManifest, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arch, id := archiveOf(t, d.snap, tc.quota)
			src := open(t, arch, source.Options{DecryptionConfig: d.encConfig,
				Identities: func() ([]age.Identity, error) { return []age.Identity{id}, nil }})
			tmp := t.TempDir()
			rep, err := Run(context.Background(), src, Options{TmpDir: tmp})
			if rep == nil {
				t.Fatalf("no report: %v", err)
			}
			if rep.Quota != tc.wantQuota || rep.QuotaSource != tc.source || !rep.Archive {
				t.Errorf("quota %d from %s (archive %v), want %d from %s", rep.Quota, rep.QuotaSource, rep.Archive, tc.wantQuota, tc.source)
			}
			if !tc.blocked {
				if failedCheck(rep, "archive manifest") || failedCheck(rep, "keys") || rep.KeysRead != d.keys {
					t.Errorf("checks %+v, %d keys read", rep.Checks, rep.KeysRead)
				}
				if err != nil || !rep.OK {
					t.Fatalf("drill: %v", err)
				}
				emptyDir(t, tmp)
				return
			}
			// even compacted, the db does not fit 64 KiB: the drill stops at
			// the restore, with the blocker
			if !errors.Is(err, ErrFailed) || !errors.Is(err, restore.ErrOverQuota) || len(rep.Blockers) != 1 || rep.Blockers[0].Kind != "quota" {
				t.Errorf("err %v, blockers %+v: want the quota blocker", err, rep.Blockers)
			}
			if !strings.Contains(err.Error(), archivedManifest) || strings.Contains(err.Error(), StagingPrefix) {
				t.Errorf("error %q: want the archive's manifest named, no private path", err)
			}
			emptyDir(t, tmp)
		})
	}
}

// TestDrillInterrupted stops the drill at each step, as Ctrl-C does: the
// error is the context's and nothing is left in the tmp dir.
func TestDrillInterrupted(t *testing.T) {
	d := demoSnapshot(t)
	for _, at := range []string{"index", "restore", "start", "read", "write"} {
		t.Run(at, func(t *testing.T) {
			src := open(t, d.snap, source.Options{DecryptionConfig: d.encConfig})
			tmp := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sawDir bool
			_, err := Run(ctx, src, Options{TmpDir: tmp, testHook: func(step, dir string) error {
				if step == at {
					_, serr := os.Stat(dir)
					sawDir = serr == nil
					cancel()
				}
				return nil
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			if !sawDir {
				t.Error("the drill dir did not exist at the step")
			}
			emptyDir(t, tmp)
		})
	}
}

// TestDrillSweepsKilledRun: a drill dir whose process died (its lock gone)
// is removed by the next drill.
func TestDrillSweepsKilledRun(t *testing.T) {
	d := demoSnapshot(t)
	tmp := t.TempDir()
	left := filepath.Join(tmp, StagingPrefix+"killed")
	if err := os.MkdirAll(filepath.Join(left, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, fsx.StagingLockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := open(t, d.snap, source.Options{DecryptionConfig: d.encConfig})
	var swept []string
	if _, err := Run(context.Background(), src, Options{TmpDir: tmp, OnSweep: func(dir string) { swept = append(swept, dir) }}); err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0] != left {
		t.Errorf("swept %v, want %s", swept, left)
	}
	emptyDir(t, tmp)
}

func TestWriteMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drill.prom")
	t1 := time.Unix(1_800_000_000, 0)
	if err := WriteMetrics(path, 90*time.Second, nil, t1); err != nil {
		t.Fatal(err)
	}
	want := func(lines ...string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !strings.Contains(string(b), "\n"+l+"\n") {
				t.Errorf("metrics lack %q:\n%s", l, b)
			}
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v", st.Mode())
		}
	}
	want("etcdsafe_drill_last_run_timestamp_seconds 1.8e+09", "etcdsafe_drill_last_run_success 1",
		"etcdsafe_drill_last_success_timestamp_seconds 1.8e+09", "etcdsafe_drill_last_duration_seconds 90")
	// a failed run keeps the last success
	if err := WriteMetrics(path, 5*time.Second, ErrFailed, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want("etcdsafe_drill_last_run_timestamp_seconds 1.8000036e+09", "etcdsafe_drill_last_run_success 0",
		"etcdsafe_drill_last_success_timestamp_seconds 1.8e+09", "etcdsafe_drill_last_duration_seconds 5")
	// a failed first run: no success yet
	fresh := filepath.Join(t.TempDir(), "drill.prom")
	if err := WriteMetrics(fresh, time.Second, ErrFailed, t1); err != nil {
		t.Fatal(err)
	}
	path = fresh
	want("etcdsafe_drill_last_success_timestamp_seconds 0", "etcdsafe_drill_last_run_success 0")
	des, _ := os.ReadDir(filepath.Dir(fresh))
	if len(des) != 1 {
		t.Errorf("temp files left: %v", des)
	}
}

// TestCompareOne: keys the restored etcd lacks, adds or serves with other
// revisions are counted and named (the value comparison is exercised by
// the drills above, whose values all match).
func TestCompareOne(t *testing.T) {
	entries := []inspect.Entry{
		{Key: "/registry/a", ModRevision: 5, CreateRevision: 5, Version: 1},
		{Key: "/registry/b", ModRevision: 6, CreateRevision: 6, Version: 1},
		{Key: "/registry/c", ModRevision: 7, CreateRevision: 3, Version: 2},
		{Key: "/registry/d", ModRevision: 8, CreateRevision: 8, Version: 1},
	}
	served := []*mvccpb.KeyValue{
		{Key: []byte("/registry/0"), ModRevision: 9, CreateRevision: 9, Version: 1}, // extra, before every key
		{Key: []byte("/registry/b"), ModRevision: 7, CreateRevision: 6, Version: 1}, // a missing, b's mod revision differs
		{Key: []byte("/registry/c"), ModRevision: 7, CreateRevision: 4, Version: 2}, // create revision differs
		{Key: []byte("/registry/d"), ModRevision: 8, CreateRevision: 8, Version: 3}, // version differs
		{Key: []byte("/registry/e"), ModRevision: 9, CreateRevision: 9, Version: 1}, // extra, after every key
	}
	rep := &Report{}
	i := 0
	for _, kv := range served {
		i = compareOne(nil, entries, i, kv, rep)
	}
	if i != len(entries) || rep.KeysRead != 5 || rep.Missing != 1 || rep.Extra != 2 || rep.Different != 3 {
		t.Errorf("i %d, read %d, missing %d, extra %d, different %d; want 4, 5, 1, 2, 3", i, rep.KeysRead, rep.Missing, rep.Extra, rep.Different)
	}
	want := []string{"extra: /registry/0", "missing: /registry/a", "differs: /registry/b: mod revision 6 in the snapshot, 7 restored",
		"differs: /registry/c: create revision 3 in the snapshot, 4 restored", "differs: /registry/d: version 1 in the snapshot, 3 restored", "extra: /registry/e"}
	if strings.Join(rep.Samples, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant:\n%s", strings.Join(rep.Samples, "\n"), strings.Join(want, "\n"))
	}
}
