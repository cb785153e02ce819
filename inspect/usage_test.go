package inspect

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// recordBytes sums the key bucket's keys and values straight from bbolt:
// the figure Usage's byte counts must add up to.
func recordBytes(t *testing.T, s *Snapshot) (total int64, n int) {
	t.Helper()
	err := s.tx.Bucket(bucketKey).ForEach(func(k, v []byte) error {
		total += int64(len(k) + len(v))
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total, n
}

// usageAllWays runs Usage with one walker and with several (every key's
// records then spread over ranges) and requires the same report.
func usageAllWays(t *testing.T, s *Snapshot, o UsageOptions) *Usage {
	t.Helper()
	var first *Usage
	for _, n := range []int{1, 3, 7} {
		u, err := s.usageWith(context.Background(), o, n)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = u
			continue
		}
		if !reflect.DeepEqual(first, u) {
			t.Fatalf("usage with %d walkers differs from one walker's:\n%+v\n%+v", n, u, first)
		}
	}
	return first
}

// checkTotals ties the report to the file: bytes and records add up to the
// bucket's, live keys and tombstones agree with Status, every breakdown
// sums to the total, compaction frees the history.
func checkTotals(t *testing.T, s *Snapshot, u *Usage) {
	t.Helper()
	bytes, n := recordBytes(t, s)
	st, err := s.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if u.Total.Bytes != bytes || u.Total.Revisions != int64(n) || u.Total.Tombstones != int64(st.Tombstones) ||
		u.Total.LiveKeys != int64(st.LiveKeys) || u.Revision != st.Revision {
		t.Errorf("total %+v rev %d; the file: %d bytes in %d records, status %d live keys, %d tombstones, revision %d",
			u.Total, u.Revision, bytes, n, st.LiveKeys, st.Tombstones, st.Revision)
	}
	if u.DBSize != st.DBSize || u.DBSizeInUse != st.DBSizeInUse || u.Defrag != st.DBSize-st.DBSizeInUse {
		t.Errorf("sizes %d/%d defrag %d, status %d/%d", u.DBSize, u.DBSizeInUse, u.Defrag, st.DBSize, st.DBSizeInUse)
	}
	if u.Total.Bytes != u.Total.LiveBytes+u.Total.HistoryBytes {
		t.Errorf("live %d + history %d != %d", u.Total.LiveBytes, u.Total.HistoryBytes, u.Total.Bytes)
	}
	c := u.Compaction
	// only a tombstone at the newest revision stays (etcd keeps it)
	if c.FreeBytes > u.Total.HistoryBytes || c.OldVersionBytes+c.DeletedBytes+c.TombstoneBytes != c.FreeBytes ||
		c.FreeRecords > u.Total.Revisions-u.Total.LiveKeys || c.FreeRecords < u.Total.Revisions-u.Total.LiveKeys-1 {
		t.Errorf("compaction %+v does not add up to the history of %+v", c, u.Total)
	}
	for name, gs := range map[string][]Group{"resources": u.Resources, "namespaces": u.Namespaces, "resourceNamespaces": u.ResourceNamespaces} {
		var sum Counts
		for i := range gs {
			sum.add(&gs[i].Counts)
			if i > 0 && gs[i].Bytes > gs[i-1].Bytes {
				t.Errorf("%s not biggest first: %+v", name, gs)
			}
		}
		if sum != u.Total {
			t.Errorf("%s sum to %+v, total %+v", name, sum, u.Total)
		}
	}
}

// TestUsage: a cluster the test wrote itself: one ConfigMap rewritten 60
// times (the top churning key), one big ConfigMap (the largest key),
// Events, a deleted Secret; then the same etcd compacted, where the first
// report's compaction estimate must be what the compaction freed.
func TestUsage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w, err := kubestore.New(srv.Client, kubestore.Options{Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	create := func(obj runtime.Object) {
		t.Helper()
		if _, err := w.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	for ns := range 3 {
		for i := range 5 {
			create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: fmt.Sprintf("ns-%d", ns)},
				Data: map[string]string{"k": strings.Repeat("v", 100*i)}})
		}
	}
	create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}})
	big := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "ns-1"}, Data: map[string]string{"blob": strings.Repeat("x", 200<<10)}}
	create(big)
	// deleted and re-created far apart: with several walkers its three
	// records lie in three ranges
	again := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "again", Namespace: "ns-2"}, Data: map[string]string{"k": "1"}}
	create(again)
	hot := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "leader", Namespace: "kube-system"}, Data: map[string]string{"holder": "a"}}
	create(hot)
	for i := range 59 {
		hot.Data["holder"] = fmt.Sprintf("holder-%d", i)
		if _, err := w.Update(ctx, hot, "leader-elector"); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 20:
			if _, err := w.Delete(ctx, again); err != nil {
				t.Fatal(err)
			}
		case 40:
			again = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "again", Namespace: "ns-2"}, Data: map[string]string{"k": "2"}}
			create(again)
		}
	}
	gone := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "ns-0"}, Data: map[string][]byte{"k": []byte("v")}}
	create(gone)
	if _, err := w.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// after the deletion: a compaction at the newest revision removes its tombstone
	for i := range 12 {
		create(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ev-%d", i), Namespace: "ns-2"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"}, Reason: "BackOff", Message: strings.Repeat("m", 300)})
	}

	s := snapshotOf(t, srv, "before.db")
	u := usageAllWays(t, s, UsageOptions{Top: 5, QuotaBytes: 1 << 20, QuotaSource: "flag"})
	checkTotals(t, s, u)

	const hotKey, bigKey = "/registry/configmaps/kube-system/leader", "/registry/configmaps/ns-1/big"
	if len(u.Churning) == 0 || u.Churning[0].Key != hotKey || u.Churning[0].Revisions != 60 || u.Churning[0].Version != 60 {
		t.Fatalf("top churning key: %+v", u.Churning)
	}
	for _, k := range u.Churning[1:] {
		if k.Revisions >= 60 {
			t.Errorf("churning: %+v ranks with the hot key", k)
		}
	}
	h := u.Churning[0]
	if h.Resource != "configmaps" || h.Namespace != "kube-system" || h.Name != "leader" || h.Deleted ||
		h.LiveBytes <= 0 || h.HistoryBytes != h.Bytes-h.LiveBytes || h.HistoryBytes < 59*h.LiveBytes*9/10 {
		t.Errorf("hot key: %+v", h)
	}
	if len(u.Largest) == 0 || u.Largest[0].Key != bigKey || u.Largest[0].Revisions != 1 || u.Largest[0].HistoryBytes != 0 {
		t.Fatalf("largest key: %+v", u.Largest)
	}
	var ag *KeyUsage
	for i := range u.Churning {
		if u.Churning[i].Key == "/registry/configmaps/ns-2/again" {
			ag = &u.Churning[i]
		}
	}
	if ag == nil || ag.Revisions != 3 || ag.Tombstones != 1 || ag.Deleted || ag.Version != 1 || ag.LiveBytes <= 0 {
		t.Errorf("re-created key: %+v", ag)
	}
	if len(u.Largest) != int(u.Total.Keys) || len(u.Churning) != 3 { // the hot key, the secret, the re-created key
		t.Errorf("%d largest of %d keys, %d churning", len(u.Largest), u.Total.Keys, len(u.Churning))
	}
	if u.Events.Keys != 12 || u.Events.Revisions != 12 || u.Events.HistoryBytes != 0 ||
		math.Abs(u.EventsShare-float64(u.Events.Bytes)/float64(u.Total.Bytes)) > 1e-12 || u.EventsShare <= 0 {
		t.Errorf("events %+v share %v of %d", u.Events, u.EventsShare, u.Total.Bytes)
	}
	if g := find(u.Resources, "events", ""); g == nil || g.Counts != u.Events {
		t.Errorf("events resource %+v, events %+v", g, u.Events)
	}
	if g := find(u.Resources, "clusterroles.rbac.authorization.k8s.io", ""); g == nil || g.Keys != 1 {
		t.Errorf("clusterroles: %+v", u.Resources)
	}
	if g := find(u.Namespaces, "", ""); g == nil || g.Keys != 1 { // the ClusterRole
		t.Errorf("cluster-scoped: %+v", u.Namespaces)
	}
	if g := find(u.ResourceNamespaces, "secrets", "ns-0"); g == nil || g.Keys != 1 || g.LiveKeys != 0 || g.Tombstones != 1 || g.LiveBytes != 0 {
		t.Errorf("deleted secret: %+v", g)
	}
	if u.Compaction.TombstoneBytes <= 0 || u.Compaction.DeletedBytes <= 0 || u.Compaction.OldVersionBytes <= h.HistoryBytes ||
		ag != nil && u.Compaction.OldVersionBytes >= h.HistoryBytes+ag.HistoryBytes { // the re-created key's first put is an old version
		t.Errorf("compaction %+v, hot key history %d", u.Compaction, h.HistoryBytes)
	}
	if u.Quota.Bytes != 1<<20 || u.Quota.Source != "flag" || math.Abs(u.Quota.UsedPercent-100*float64(u.DBSize)/(1<<20)) > 1e-9 {
		t.Errorf("quota %+v", u.Quota)
	}

	// Compacted at the newest revision: what is left is the live bytes,
	// and the estimate was what went.
	rev, err := srv.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	s2 := snapshotOf(t, srv, "after.db")
	u2 := usageAllWays(t, s2, UsageOptions{})
	checkTotals(t, s2, u2)
	if u.Total.Bytes-u2.Total.Bytes != u.Compaction.FreeBytes || u.Total.Revisions-u2.Total.Revisions != u.Compaction.FreeRecords ||
		u2.Total.LiveBytes != u.Total.LiveBytes || u2.Total.HistoryBytes != u.Total.HistoryBytes-u.Compaction.FreeBytes {
		t.Errorf("after compaction: %+v; before: %+v, compaction estimate %+v", u2.Total, u.Total, u.Compaction)
	}
	if u2.Compaction.FreeBytes != 0 || len(u2.Churning) != 0 || u2.CompactRevision != rev {
		t.Errorf("compacted file: %+v churning %+v compacted at %d, want %d", u2.Compaction, u2.Churning, u2.CompactRevision, rev)
	}
	if u2.Quota.Bytes != DefaultQuotaBytes || u2.Quota.Source != "default" {
		t.Errorf("default quota: %+v", u2.Quota)
	}
}

// TestUsageRealSnapshot: the snapshot a real kube-apiserver wrote: the
// Deployment scaled and updated (three revisions), the ConfigMap created
// and deleted, the figures tied to the file and to Status.
func TestUsageRealSnapshot(t *testing.T) {
	t.Parallel()
	before := fileHash(t, realSnapshot)
	s, err := Open(realSnapshot, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := usageAllWays(t, s, UsageOptions{Top: 50, Largest: 1000})
	checkTotals(t, s, u)
	if u.Total.Keys != 212 || u.Total.LiveKeys != 211 || u.Total.Revisions != 230 || u.Total.Tombstones != 1 || len(u.Problems) != 0 {
		t.Errorf("total %+v problems %v", u.Total, u.Problems)
	}
	if len(u.Largest) != 212 {
		t.Errorf("%d keys in Largest, want every one of 212", len(u.Largest))
	}
	var dep, tmp *KeyUsage
	for i, k := range u.Largest {
		switch k.Key {
		case "/registry/deployments/payments/api":
			dep = &u.Largest[i]
		case "/registry/configmaps/payments/tmp-debug":
			tmp = &u.Largest[i]
		}
		if !strings.HasPrefix(k.Resource, "(") && k.Name == "" {
			t.Errorf("key not classified: %+v", k)
		}
	}
	if dep == nil || dep.Revisions != 3 || dep.Version != 3 || dep.Resource != "deployments.apps" || dep.Namespace != "payments" || dep.Name != "api" {
		t.Errorf("deployment: %+v", dep)
	}
	// the deletion is the newest revision: a compaction there keeps its
	// tombstone, and frees the put before it
	if tmp == nil || !tmp.Deleted || tmp.Revisions != 2 || tmp.Tombstones != 1 || tmp.LiveBytes != 0 || tmp.Revision != u.Revision ||
		u.Compaction.TombstoneBytes != 0 || u.Compaction.DeletedBytes <= 0 || u.Compaction.DeletedBytes >= tmp.Bytes ||
		u.Compaction.FreeRecords != u.Total.Revisions-u.Total.LiveKeys-1 {
		t.Errorf("deleted configmap: %+v, compaction %+v", tmp, u.Compaction)
	}
	found := false
	for _, k := range u.Churning {
		found = found || k.Key == "/registry/deployments/payments/api"
		if k.Revisions < 2 {
			t.Errorf("churning key with one revision: %+v", k)
		}
	}
	if !found {
		t.Errorf("the deployment is not among the churning keys: %+v", u.Churning)
	}
	if g := find(u.Resources, "customresourcedefinitions.apiextensions.k8s.io", ""); g == nil || g.Keys != 1 {
		t.Errorf("CRDs: %+v", g)
	}
	if fileHash(t, realSnapshot) != before {
		t.Fatal("snapshot file changed")
	}
}

// TestUsageClassify: keys the table does not know still land in a group.
func TestUsageClassify(t *testing.T) {
	t.Parallel()
	tl := newUsageTally(UsageOptions{}.withDefaults(), 0)
	for _, tc := range []struct{ key, res, ns, name string }{
		{"/registry/pods/default/p", "pods", "default", "p"},
		{"/registry/minions/n1", "nodes", "", "n1"},
		{"/registry/cert-manager.io/certificates/payments/tls", "certificates.cert-manager.io", "payments", "tls"},
		{"/registry/cert-manager.io/clusterissuers/le", "clusterissuers.cert-manager.io", "", "le"},
		{"/registry/weird/thing/x", "(unknown: weird)", "", "thing/x"},
		{"/other/key", "(outside /registry)", "", "/other/key"},
		{"compact_rev_key", "compact_rev_key", "", ""},
	} {
		res, ns, name, _ := tl.classify(tc.key)
		if tc.key == "compact_rev_key" {
			if res == "" || strings.HasPrefix(res, "(") {
				t.Errorf("%s: resource %q", tc.key, res)
			}
			continue
		}
		if res != tc.res || ns != tc.ns || name != tc.name {
			t.Errorf("%s: %q %q %q, want %q %q %q", tc.key, res, ns, name, tc.res, tc.ns, tc.name)
		}
	}
}

func find(gs []Group, res, ns string) *Group {
	for i := range gs {
		if gs[i].Resource == res && gs[i].Namespace == ns {
			return &gs[i]
		}
	}
	return nil
}

// BenchmarkUsage: du's walk (make bench runs it on the 100k snapshot).
func BenchmarkUsage(b *testing.B) {
	s, err := Open(benchDB(b), OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var u *Usage
	for b.Loop() {
		if u, err = s.Usage(context.Background(), UsageOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b, int(u.Total.Revisions))
}
