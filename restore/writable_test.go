package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// noSpaceQuota is the quota of the NOSPACE fixture's etcd.
const noSpaceQuota = 4 << 20

// noSpaceFixture is a snapshot of an etcd filled until it raised NOSPACE:
// ten keys overwritten with 64 KiB values (history that compaction
// drops), and the keys --clean-leases removes, next to one it keeps.
type noSpaceFixture struct {
	snap  string
	live  map[string]string // the newest value of every live key
	stale []string          // what CleanLeases must remove, sorted
	rev   int64
}

var noSpace struct {
	once sync.Once
	f    *noSpaceFixture
	err  error
}

func newNoSpaceFixture(t *testing.T) *noSpaceFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	noSpace.once.Do(func() { noSpace.f, noSpace.err = buildNoSpace() })
	if noSpace.err != nil {
		t.Fatalf("fixture: %v", noSpace.err)
	}
	f := *noSpace.f
	f.snap = filepath.Join(t.TempDir(), "nospace.db")
	copyFile(t, noSpace.f.snap, f.snap)
	return &f
}

func buildNoSpace() (_ *noSpaceFixture, err error) {
	dir, err := os.MkdirTemp("", "etcdsafe-restore-nospace-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcdtest.StartDir(filepath.Join(dir, "etcd"), etcdtest.WithQuotaBytes(noSpaceQuota), etcdtest.WithUnsafeNoFsync())
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	f := &noSpaceFixture{live: map[string]string{}}
	lease, err := s.Client.Grant(ctx, 3600)
	if err != nil {
		return nil, err
	}
	for k, stale := range map[string]bool{
		"/registry/masterleases/10.0.0.11":                        true,
		"/registry/leases/kube-system/apiserver-6x3ouhvw3uqmkeyn": true,
		"/registry/leases/kube-node-lease/master-1":               true,
		"/registry/leases/kube-system/kube-controller-manager":    false,
		"/registry/leases/kube-system/apiserver":                  false, // not an identity lease
	} {
		opts := []clientv3.OpOption{}
		if strings.HasPrefix(k, MasterLeasesPrefix) {
			opts = append(opts, clientv3.WithLease(lease.ID))
		}
		if _, err := s.Client.Put(ctx, k, "k8s\x00lease", opts...); err != nil {
			return nil, err
		}
		if stale {
			f.stale = append(f.stale, k)
		} else {
			f.live[k] = "k8s\x00lease"
		}
	}
	slices.Sort(f.stale)
	big := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		k, v := fmt.Sprintf("/registry/configmaps/default/cm-%d", i%10), fmt.Sprintf("%d:%s", i, big)
		_, err := s.Client.Put(ctx, k, v)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			break
		}
		if err != nil {
			return nil, err
		}
		if i > 1000 {
			return nil, errors.New("no NOSPACE after 1000 puts")
		}
		f.live[k] = v
	}
	al, err := s.Client.AlarmList(ctx)
	if err != nil || len(al.Alarms) != 1 {
		return nil, fmt.Errorf("alarms %v: %w", al, err)
	}
	if f.rev, err = s.Revision(ctx); err != nil {
		return nil, err
	}
	f.snap = filepath.Join(dir, "snapshot.db")
	if _, err := snapshot.Save(ctx, s.Client, f.snap); err != nil {
		return nil, err
	}
	return f, nil
}

// quotaManifest writes an etcd static pod manifest with the quota.
func quotaManifest(t *testing.T, quota int64) string {
	t.Helper()
	man := filepath.Join(t.TempDir(), "etcd.yaml")
	b := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    command: [etcd, --name=m1, --data-dir=/var/lib/etcd, --quota-backend-bytes=%d]
`, quota)
	if err := os.WriteFile(man, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return man
}

// TestNoSpacePlan: the plan of a snapshot taken under NOSPACE states the
// alarm and the db size against the manifest's quota; over it, a dry run
// lists the blocker and a real restore refuses, unless Compact.
func TestNoSpacePlan(t *testing.T) {
	t.Parallel()
	f := newNoSpaceFixture(t)
	man := quotaManifest(t, noSpaceQuota)
	peer := freePeerURL(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	o := Options{Source: f.snap, DataDir: dataDir, Manifest: man,
		Membership:   MembershipFlags{InitialAdvertisePeerURLs: peer.String()},
		BumpRevision: DefaultBumpRevision, MarkCompacted: true, DryRun: true, CleanLeases: true}
	p, err := Prepare(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Alarms) != 1 || p.Alarms[0].Type != "NOSPACE" {
		t.Errorf("alarms %+v, want one NOSPACE", p.Alarms)
	}
	q := p.Quota // within one request of the quota, under or over: see TestNoSpaceRestoreCompact
	if q.Bytes != noSpaceQuota || !strings.Contains(q.From, man) || !q.Over || q.DBSize <= noSpaceQuota-MaxRequestBytes || q.DBSize%4096 != 0 {
		t.Errorf("quota %+v", q)
	}
	if !slices.Equal(p.StaleKeys, f.stale) {
		t.Errorf("stale keys %q, want %q", p.StaleKeys, f.stale)
	}
	if p.NewRevision != f.rev+1+DefaultBumpRevision {
		t.Errorf("new revision %d, want %d + 1 (the deletions) + bump", p.NewRevision, f.rev)
	}
	if len(p.Blockers) != 1 || p.Blockers[0].Kind != BlockOverQuota || !p.Blockers[0].Refuses || !errors.Is(p.Refusal(), ErrOverQuota) {
		t.Errorf("blockers %+v, refusal %v", p.Blockers, p.Refusal())
	}
	if _, err := p.Execute(t.Context()); err == nil {
		t.Fatal("a dry run executed")
	}

	o.DryRun = false
	if _, err := Prepare(t.Context(), o); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("real restore over quota: want ErrOverQuota, got %v", err)
	}
	if _, err := os.Lstat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused restore wrote %s: %v", dataDir, err)
	}

	// Below the quota but within etcd's largest write of it, as a real
	// NOSPACE snapshot usually is: refused all the same.
	o.Manifest = quotaManifest(t, q.DBSize+1<<20)
	o.DryRun = true
	p1, err := Prepare(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	if !p1.Quota.Over || !errors.Is(p1.Refusal(), ErrOverQuota) || !strings.Contains(p1.Refusal().Error(), "within 1.5 MiB (1572864 bytes) (etcd's largest write) of its quota") {
		t.Errorf("db 1 MiB below the quota: %+v, refusal %v", p1.Quota, p1.Refusal())
	}

	o.DryRun, o.Compact = true, true
	p2, err := Prepare(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if len(p2.Blockers) != 0 || p2.Refusal() != nil {
		t.Errorf("with Compact: blockers %+v", p2.Blockers)
	}
}

// TestNoSpaceRestoreCompact: Compact and CleanLeases restore the NOSPACE
// snapshot under its quota; a real etcd with that quota starts on it
// without the alarm, serves the newest value of every key but the stale
// ones, keeps the Kubernetes-safe revision bump and compaction mark, and
// accepts writes.
func TestNoSpaceRestoreCompact(t *testing.T) {
	t.Parallel()
	f := newNoSpaceFixture(t)
	peer := freePeerURL(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	p, err := Prepare(t.Context(), Options{Source: f.snap, DataDir: dataDir, Manifest: quotaManifest(t, noSpaceQuota),
		Membership:   MembershipFlags{InitialAdvertisePeerURLs: peer.String()},
		BumpRevision: DefaultBumpRevision, MarkCompacted: true, Compact: true, CleanLeases: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := p.Execute(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("db %d -> %d bytes, %d keys removed, %d alarms cleared", res.DBSizeBefore, res.DBSize, res.KeysRemoved, res.AlarmsCleared)
	// etcd raises NOSPACE when a write would pass the quota: the db is
	// then within one request of it, under or over (its pages grow in
	// steps, with the commit timing)
	if res.DBSizeBefore <= noSpaceQuota-MaxRequestBytes || res.DBSize >= noSpaceQuota/2 || res.KeysRemoved != len(f.stale) || res.AlarmsCleared != 1 {
		t.Errorf("result %+v", res)
	}
	// The restored db, read offline: no alarm, one record per live key,
	// one tombstone per stale key (mvcc keeps the newest record at the
	// compaction revision; etcd's own compaction at the marked revision
	// drops them when it starts), and the bump's marker.
	db := filepath.Join(dataDir, "member", "snap", "db")
	alarms, _, _, err := snapshotFacts(db)
	if err != nil || len(alarms) != 0 {
		t.Fatalf("alarms in the restored db %v, %v", alarms, err)
	}
	in, err := inspect.Open(db, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := in.Status(t.Context(), true)
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != p.NewRevision || st.Revisions != len(f.live)+len(f.stale)+1 || st.Tombstones != len(f.stale) || len(st.CheckErrors) > 0 {
		t.Errorf("restored db: revision %d (want %d), %d records for %d live keys, %d tombstones, check %v",
			st.Revision, p.NewRevision, st.Revisions, len(f.live), st.Tombstones, st.CheckErrors)
	}

	s, err := etcdtest.StartDir(dataDir, etcdtest.WithMember("m1", peer), etcdtest.WithQuotaBytes(noSpaceQuota))
	if err != nil {
		t.Fatalf("etcd does not start on the restored dir: %v", err)
	}
	defer s.Stop()
	ctx := t.Context()
	if al, err := s.Client.AlarmList(ctx); err != nil || len(al.Alarms) != 0 {
		t.Fatalf("alarms after restore %v, %v", al, err)
	}
	resp, err := s.Client.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(got) != len(f.live) {
		t.Errorf("%d keys restored, want %d", len(got), len(f.live))
	}
	for k, v := range f.live {
		if got[k] != v {
			t.Errorf("%s: restored len=%d, want len=%d", k, len(got[k]), len(v))
		}
	}
	if resp.Header.Revision != p.NewRevision {
		t.Errorf("revision %d, want %d", resp.Header.Revision, p.NewRevision)
	}
	if _, err := s.Client.Get(ctx, "/registry/configmaps/default/cm-0", clientv3.WithRev(f.rev)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("read at the snapshot's revision: want compacted, got %v", err)
	}
	for i := range 5 {
		if _, err := s.Client.Put(ctx, fmt.Sprintf("/registry/configmaps/default/after-%d", i), strings.Repeat("y", 64<<10)); err != nil {
			t.Fatalf("write %d after the restore: %v", i, err)
		}
	}
}

// TestNoSpaceAlarmCleared: under a quota it fits, the NOSPACE snapshot
// restores without Compact, and the alarm is not carried over.
func TestNoSpaceAlarmCleared(t *testing.T) {
	t.Parallel()
	f := newNoSpaceFixture(t)
	peer := freePeerURL(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	p, err := Prepare(t.Context(), Options{Source: f.snap, DataDir: dataDir, Manifest: quotaManifest(t, 64<<20),
		Membership:   MembershipFlags{InitialAdvertisePeerURLs: peer.String()},
		BumpRevision: DefaultBumpRevision, MarkCompacted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Quota.Over || len(p.Blockers) != 0 || len(p.StaleKeys) != 0 || p.NewRevision != f.rev+DefaultBumpRevision {
		t.Fatalf("plan: quota %+v, blockers %+v, stale %q, new revision %d", p.Quota, p.Blockers, p.StaleKeys, p.NewRevision)
	}
	res, err := p.Execute(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.AlarmsCleared != 1 || res.KeysRemoved != 0 {
		t.Errorf("result %+v", res)
	}
	s, err := etcdtest.StartDir(dataDir, etcdtest.WithMember("m1", peer), etcdtest.WithQuotaBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if al, err := s.Client.AlarmList(t.Context()); err != nil || len(al.Alarms) != 0 {
		t.Fatalf("alarms after restore %v, %v", al, err)
	}
	if _, err := s.Client.Put(t.Context(), "/registry/configmaps/default/after", "v"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Client.Get(t.Context(), MasterLeasesPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || r.Count != 1 {
		t.Errorf("masterleases without CleanLeases: %v, %v", r, err)
	}
}

// TestDryRunBlockers: a dry run never refuses: etcd running and kube dir
// conflicts become blockers, each with the error the real restore gives.
func TestDryRunBlockers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := etcdtest.Start(t)
	p, err := Prepare(t.Context(), Options{Source: f.snap, DataDir: s.DataDir, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var kinds []string
	for _, b := range p.Blockers {
		kinds = append(kinds, b.Kind)
	}
	// The running member's db is ahead of the fixture's snapshot, too.
	if !slices.Contains(kinds, BlockEtcdRunning) || !errors.Is(p.Refusal(), ErrEtcdRunning) {
		t.Errorf("blockers %+v, refusal %v", p.Blockers, p.Refusal())
	}
	if _, err := Prepare(t.Context(), Options{Source: f.snap, DataDir: s.DataDir}); !errors.Is(err, ErrEtcdRunning) {
		t.Errorf("real restore: want ErrEtcdRunning, got %v", err)
	}
}

// TestNewerDataDirWarning: replacing a data dir that is ahead of the
// snapshot is a warning, not a refusal.
func TestNewerDataDirWarning(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	o := Options{Source: f.snap, DataDir: dataDir, Membership: MembershipFlags{Name: "m1", InitialAdvertisePeerURLs: "http://127.0.0.1:2380"},
		BumpRevision: DefaultBumpRevision, MarkCompacted: true}
	p, err := Prepare(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	o.DryRun = true
	p, err = Prepare(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Blockers) != 1 || p.Blockers[0].Kind != BlockNewerDataDir || p.Blockers[0].Refuses || p.Refusal() != nil ||
		!strings.Contains(p.Blockers[0].Message, fmt.Sprintf("ahead of the snapshot's %d", f.rev)) {
		t.Errorf("blockers %+v", p.Blockers)
	}
}
