package main

import (
	"context"
	"crypto/sha1" // etcd derives the cluster ID with SHA-1
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// continueOptions are the flags of -base.
type continueOptions struct {
	base, next, nights string
	count, churn       int
}

// lineage identifies the cluster a snapshot belongs to, as etcd reports it.
type lineage struct {
	MemberID  string `json:"memberID"`
	ClusterID string `json:"clusterID"`
	// BaseRevision is the base snapshot's revision; every later one is
	// above it.
	BaseRevision int64 `json:"baseRevision"`
	member       decode.Member
}

// runContinue restores the base snapshot as the member that wrote it (same
// name, peer URLs and cluster token, so etcd derives the same member and
// cluster IDs, and revisions go on from the base's), starts a real etcd on
// it, replays the base's writes into a writer (checking every object's
// value against etcd's: the base was made with this spec) and writes the
// next night or the nights on top.
func runContinue(ctx context.Context, sp spec, o continueOptions) error {
	start := time.Now()
	if sp.n <= 0 || sp.batch <= 0 || o.count <= 0 || o.churn < 0 {
		return errors.New("need -n > 0, -batch > 0, -count > 0 and -churn >= 0")
	}
	for _, p := range []string{o.next, o.nights} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists", p)
		}
	}
	st, err := readStatus(ctx, o.base)
	if err != nil {
		return err
	}
	if len(st.Members) != 1 || len(st.Members[0].PeerURLs) != 1 {
		return fmt.Errorf("base %s: want one member with one peer URL, have %v", o.base, st.Members)
	}
	m := st.Members[0]
	tmp, err := os.MkdirTemp("", "mkbench-continue-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	dataDir := filepath.Join(tmp, "data")
	// The cluster token is etcd's default, as etcdtest (which made the
	// base) leaves it.
	err = etcdsnap.NewV3(zap.NewNop()).Restore(etcdsnap.RestoreConfig{
		SnapshotPath: o.base, Name: m.Name, OutputDataDir: dataDir, PeerURLs: m.PeerURLs,
		InitialCluster: m.Name + "=" + m.PeerURLs[0], InitialClusterToken: embed.NewConfig().InitialClusterToken,
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", o.base, err)
	}
	peer, err := url.Parse(m.PeerURLs[0])
	if err != nil {
		return fmt.Errorf("base member's peer URL: %w", err)
	}
	srv, err := etcdtest.StartDir(dataDir, append(startOptions(sp.batch), etcdtest.WithMember(m.Name, *peer))...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	lin, err := checkLineage(ctx, srv, st)
	if err != nil {
		return err
	}
	restored := time.Since(start)
	w, err := newWriter(srv.Client, sp)
	if err != nil {
		return err
	}
	rp := &replay{vals: map[string][sha256.Size]byte{}}
	g, err := generate(sp, w, rp)
	if err != nil {
		return err
	}
	if err := rp.check(ctx, srv.Client); err != nil {
		return fmt.Errorf("base %s was not made by mkbench -n %d -seed %d -batch %d -managed-fields=%v: %w",
			o.base, sp.n, sp.seed, sp.batch, sp.managed, err)
	}
	replayed := time.Since(start) - restored
	fmt.Printf("restored %s as member %s (%s) of cluster %s at revision %d in %s; replayed and checked %d objects in %s\n",
		o.base, m.Name, lin.MemberID, lin.ClusterID, lin.BaseRevision, restored.Round(time.Millisecond), len(rp.vals), replayed.Round(time.Millisecond))
	c := &world{ctx: ctx, srv: srv, w: w, sp: sp, lin: lin, nsCount: g.nsCount, nextID: sp.n}
	for _, it := range g.items {
		if !g.deleted[it.key] {
			c.live = append(c.live, it)
		}
	}
	t := timings{Restore: restored.Seconds(), Replay: replayed.Seconds()}
	if o.next != "" {
		return c.writeNext(o, t, start)
	}
	return c.writeNights(o, t, start)
}

func readStatus(ctx context.Context, path string) (*inspect.Status, error) {
	s, err := inspect.Open(path, inspect.OpenOptions{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.Status(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", path, err)
	}
	if len(st.Problems) > 0 {
		return nil, fmt.Errorf("status of %s: %v", path, st.Problems)
	}
	return st, nil
}

// clusterID is the ID etcd derives from its members' IDs
// (membership.RaftCluster.genID): the first 8 bytes of the SHA-1 of the
// sorted IDs, big endian.
func clusterID(ids []uint64) uint64 {
	ids = slices.Sorted(slices.Values(ids))
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// checkLineage asserts that the etcd started on the restored base is the
// base's member of the base's cluster, at the base's revision.
func checkLineage(ctx context.Context, srv *etcdtest.Server, base *inspect.Status) (lineage, error) {
	m := base.Members[0]
	ml, err := srv.Client.MemberList(ctx)
	if err != nil {
		return lineage{}, fmt.Errorf("member list: %w", err)
	}
	want := clusterID([]uint64{m.ID})
	if len(ml.Members) != 1 || ml.Members[0].ID != m.ID || ml.Header.MemberId != m.ID || ml.Header.ClusterId != want {
		return lineage{}, fmt.Errorf("restored etcd is member %x of cluster %x with members %v, the base's is member %x of cluster %x",
			ml.Header.MemberId, ml.Header.ClusterId, ml.Members, m.ID, want)
	}
	rev, err := srv.Revision(ctx)
	if err != nil {
		return lineage{}, err
	}
	if rev != base.Revision {
		return lineage{}, fmt.Errorf("restored etcd is at revision %d, the base at %d", rev, base.Revision)
	}
	return lineage{MemberID: fmt.Sprintf("%x", m.ID), ClusterID: fmt.Sprintf("%x", want), BaseRevision: rev, member: m}, nil
}

// checkSaved asserts that a snapshot saved from the continued cluster
// names the base's member (same ID, name, peer URLs) and is at revision
// rev, above the base's.
func checkSaved(ctx context.Context, path string, lin lineage, rev int64) (*inspect.Status, error) {
	st, err := readStatus(ctx, path)
	if err != nil {
		return nil, err
	}
	m := lin.member
	if len(st.Members) != 1 || st.Members[0].ID != m.ID || st.Members[0].Name != m.Name || !slices.Equal(st.Members[0].PeerURLs, m.PeerURLs) {
		return nil, fmt.Errorf("%s has members %v, the base %v", path, st.Members, m)
	}
	if st.Revision != rev || rev <= lin.BaseRevision {
		return nil, fmt.Errorf("%s is at revision %d, want %d (above the base's %d)", path, st.Revision, rev, lin.BaseRevision)
	}
	return st, nil
}

// sameLineage asks etcdsafe's own rule ([inspect.CompareLineage], what
// diff uses to trust revisions) whether older and newer are two moments
// of one cluster's history.
func sameLineage(older, newer string) (inspect.LineageVerdict, error) {
	a, err := inspect.Open(older, inspect.OpenOptions{})
	if err != nil {
		return inspect.LineageVerdict{}, err
	}
	defer a.Close()
	b, err := inspect.Open(newer, inspect.OpenOptions{})
	if err != nil {
		return inspect.LineageVerdict{}, err
	}
	defer b.Close()
	return inspect.CompareLineage(a, b)
}

// replay is a sink that writes nothing: it records the hash of the value
// each key ends up with.
type replay struct {
	vals map[string][sha256.Size]byte
}

func (r *replay) add(op clientv3.Op) error {
	switch {
	case op.IsPut():
		r.vals[string(op.KeyBytes())] = sha256.Sum256(op.ValueBytes())
	case op.IsDelete():
		delete(r.vals, string(op.KeyBytes()))
	default:
		return errors.New("replay: not a put or delete")
	}
	return nil
}

func (r *replay) flush() error            { return nil }
func (r *replay) compact() (int64, error) { return 0, nil }

// check compares every key under /registry/ in etcd with the replay.
func (r *replay) check(ctx context.Context, c *clientv3.Client) error {
	const prefix = "/registry/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	key, seen := prefix, 0
	for {
		resp, err := c.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(2000))
		if err != nil {
			return fmt.Errorf("read %s...: %w", key, err)
		}
		for _, kv := range resp.Kvs {
			want, ok := r.vals[string(kv.Key)]
			if !ok {
				return fmt.Errorf("%s is in etcd, not in the replay", kv.Key)
			}
			if sha256.Sum256(kv.Value) != want {
				return fmt.Errorf("%s differs from the replay", kv.Key)
			}
			seen++
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if seen != len(r.vals) {
		return fmt.Errorf("etcd has %d keys under %s, the replay %d", seen, prefix, len(r.vals))
	}
	return nil
}

// world is the continued cluster and what lives in it.
type world struct {
	ctx     context.Context
	srv     *etcdtest.Server
	w       *kubestore.Writer
	sp      spec
	lin     lineage
	live    []item
	nsCount int
	nextID  int // name number of the next object created
}

// changeSet is one night's random changes.
type changeSet struct {
	modify, del, add int
	keep             map[string]bool // never picked
}

// nightResult is what one night changed.
type nightResult struct {
	CompactedAt              int64 `json:"compactedAt"`
	Modified                 int   `json:"modified"`
	Deleted                  int   `json:"deleted"`
	Added                    int   `json:"added"`
	modified, deleted, added []string
}

type timings struct {
	Restore float64 `json:"restore"`
	Replay  float64 `json:"replay"`
	Nights  float64 `json:"nights"`
	Save    float64 `json:"save"`
	Total   float64 `json:"total"`
}

// night compacts at the current revision (kube-apiserver compacts every
// 5 minutes: a nightly snapshot holds the night's history only), then
// makes cs's changes in random order, one write per revision, calling
// between(i, total) after the i-th.
func (c *world) night(rng *rand.Rand, cs changeSet, between func(i, total int) error) (*nightResult, error) {
	res := &nightResult{}
	var err error
	if res.CompactedAt, err = compact(c.ctx, c.srv.Client); err != nil {
		return nil, err
	}
	type op struct {
		kind int // 0 modify, 1 delete, 2 add
		it   item
	}
	var ops []op
	picked := map[string]bool{}
	for _, i := range rng.Perm(len(c.live)) {
		if len(ops) == cs.modify+cs.del {
			break
		}
		it := c.live[i]
		if cs.keep[it.key] {
			continue
		}
		kind := 0
		if len(ops) < cs.del {
			kind = 1
		}
		ops = append(ops, op{kind, it})
		picked[it.key] = true
	}
	if len(ops) < cs.modify+cs.del {
		return nil, fmt.Errorf("only %d objects to change, want %d", len(ops), cs.modify+cs.del)
	}
	for range cs.add {
		ops = append(ops, op{kind: 2})
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	for i, o := range ops {
		switch o.kind {
		case 0:
			if err := c.modify(rng, o.it, "bench-night"); err != nil {
				return nil, err
			}
			res.modified = append(res.modified, o.it.key)
		case 1:
			if _, err := c.w.DeleteKey(c.ctx, o.it.key); err != nil {
				return nil, err
			}
			res.deleted = append(res.deleted, o.it.key)
		case 2:
			obj, plural := newObject(rng, c.nextID, c.nsCount)
			c.nextID++
			var err error
			if plural != "" {
				_, err = c.w.CreateCR(c.ctx, obj.(*unstructured.Unstructured), plural)
				o.it = item{plural: plural}
				o.it.key, _ = kubestore.CRKey(c.w.Prefix(), "example.com", plural, obj.(*unstructured.Unstructured).GetNamespace(), obj.(*unstructured.Unstructured).GetName())
			} else {
				_, err = c.w.Create(c.ctx, obj)
				o.it.key, _ = c.w.KeyFor(obj)
			}
			if err != nil {
				return nil, err
			}
			c.live = append(c.live, o.it)
			res.added = append(res.added, o.it.key)
		}
		if between != nil {
			if err := between(i, len(ops)); err != nil {
				return nil, err
			}
		}
	}
	if len(ops) == 0 && between != nil {
		if err := between(0, 1); err != nil {
			return nil, err
		}
	}
	if len(res.deleted) > 0 {
		gone := map[string]bool{}
		for _, k := range res.deleted {
			gone[k] = true
		}
		c.live = slices.DeleteFunc(c.live, func(it item) bool { return gone[it.key] })
	}
	res.Modified, res.Deleted, res.Added = len(res.modified), len(res.deleted), len(res.added)
	return res, nil
}

// modify changes one object the way its kind changes in a cluster: a
// ConfigMap's data, a Pod's annotation, a Deployment's replicas (spec: a
// new generation), a Secret's password, a Widget's size.
func (c *world) modify(rng *rand.Rand, it item, manager string) error {
	cur := c.w.Stored(it.key)
	switch o := cur.(type) {
	case *corev1.ConfigMap:
		if o.Data == nil {
			o.Data = map[string]string{}
		}
		o.Data[fmt.Sprintf("key%d", rng.IntN(max(1, len(o.Data))))] = randString(rng, 20+rng.IntN(400))
	case *corev1.Pod:
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations["bench.etcdsafe.io/touched"] = randString(rng, 12)
	case *appsv1.Deployment:
		o.Spec.Replicas = ptr(*o.Spec.Replicas%5 + 1)
	case *corev1.Secret:
		o.Data["password"] = []byte(randString(rng, 32))
	case *unstructured.Unstructured:
		size, _, _ := unstructured.NestedInt64(o.Object, "spec", "size")
		if err := unstructured.SetNestedField(o.Object, (size+1+int64(rng.IntN(98)))%100, "spec", "size"); err != nil {
			return err
		}
		_, err := c.w.UpdateCR(c.ctx, o, it.plural, manager)
		return err
	default:
		return fmt.Errorf("modify %s: unexpected %T", it.key, cur)
	}
	_, err := c.w.Update(c.ctx, cur, manager)
	return err
}

// pickLive returns a live object of resource (the key's second segment)
// not in skip, chosen by rng.
func (c *world) pickLive(rng *rand.Rand, resource string, skip map[string]bool) (item, error) {
	for _, i := range rng.Perm(len(c.live)) {
		it := c.live[i]
		if !skip[it.key] && strings.HasPrefix(it.key, c.w.Prefix()+"/"+resource+"/") {
			return it, nil
		}
	}
	return item{}, fmt.Errorf("no live %s to pick", resource)
}

// objectRef names an object as the bench's commands take it.
type objectRef struct {
	Key       string `json:"key"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func refOf(prefix, key string) objectRef {
	p := strings.Split(strings.TrimPrefix(key, prefix+"/"), "/")
	r := objectRef{Key: key, Resource: p[0], Name: p[len(p)-1]}
	if len(p) >= 3 {
		r.Namespace = p[len(p)-2]
	}
	return r
}

// samples is a few keys of each change, sorted, for tests to name.
func samples(keys []string) []string {
	s := slices.Sorted(slices.Values(keys))
	return s[:min(5, len(s))]
}

// nextRecord is the sidecar of -next.
type nextRecord struct {
	Base    string `json:"base"`
	Objects int    `json:"objects"`
	Seed    uint64 `json:"seed"`
	lineage
	Revision int64 `json:"revision"`
	nightResult
	Churn struct {
		objectRef
		Writes int `json:"writes"`
	} `json:"churn"`
	// Diff is what a diff of the objects (keys under /registry/) of the
	// base and the next night must find; the churned object is modified.
	Diff struct {
		Added    int `json:"added"`
		Deleted  int `json:"deleted"`
		Modified int `json:"modified"`
	} `json:"diff"`
	// OtherKeys changed that are no object.
	OtherKeys []string `json:"otherKeys"`
	Samples   struct {
		Modified []string `json:"modified"`
		Deleted  []string `json:"deleted"`
		Added    []string `json:"added"`
	} `json:"samples"`
	// Lineage is etcdsafe's verdict on base and next night.
	Lineage string  `json:"lineage"`
	Bytes   int64   `json:"bytes"`
	Seconds timings `json:"seconds"`
}

// leaderAnnotation is where leader election kept its record before Leases.
const leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

// writeNext makes the next night: 1% of the objects modified, 0.1%
// deleted, 0.1% added, and one ConfigMap rewritten o.churn times (a
// leader-election record renewed all night), spread over the night.
func (c *world) writeNext(o continueOptions, t timings, start time.Time) error {
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(c.sp.seed, 1000))
	churn, err := c.pickLive(rng, "configmaps", nil)
	if err != nil {
		return err
	}
	cs := changeSet{modify: max(1, c.sp.n/100), del: max(1, c.sp.n/1000), add: max(1, c.sp.n/1000), keep: map[string]bool{churn.key: true}}
	done := 0
	renew := func(i, total int) error {
		for ; done < (i+1)*o.churn/total; done++ {
			if err := c.renew(churn.key, done); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := c.night(rng, cs, renew)
	if err != nil {
		return err
	}
	rev, err := c.srv.Revision(c.ctx)
	if err != nil {
		return err
	}
	t.Nights = time.Since(t0).Seconds()
	rec := nextRecord{Base: filepath.Base(o.base), Objects: c.sp.n, Seed: c.sp.seed, lineage: c.lin, Revision: rev, nightResult: *res}
	rec.Churn.objectRef = refOf(c.w.Prefix(), churn.key)
	rec.Churn.Writes = done
	rec.Diff.Added, rec.Diff.Deleted, rec.Diff.Modified = res.Added, res.Deleted, res.Modified
	if done > 0 {
		rec.Diff.Modified++
	}
	rec.OtherKeys = []string{"compact_rev_key"}
	rec.Samples.Modified, rec.Samples.Deleted, rec.Samples.Added = samples(res.modified), samples(res.deleted), samples(res.added)
	t1 := time.Now()
	tmp := o.next + fmt.Sprintf(".part-%d", os.Getpid())
	info, err := snapshot.Save(c.ctx, c.srv.Client, tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := checkSaved(c.ctx, tmp, c.lin, rev); err != nil {
		return err
	}
	v, err := sameLineage(o.base, tmp)
	if err != nil {
		return err
	}
	if !v.Same {
		return fmt.Errorf("etcdsafe does not take %s for the next moment of %s: %s", o.next, o.base, v.Reason)
	}
	rec.Lineage = v.Reason
	rec.Bytes = info.Size
	t.Save = time.Since(t1).Seconds()
	t.Total = time.Since(start).Seconds()
	rec.Seconds = t
	if err := writeJSON(strings.TrimSuffix(o.next, ".db")+".json", rec); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.next); err != nil {
		return err
	}
	fmt.Printf("next night %s: revision %d (base %d), %d modified, %d deleted, %d added, %s rewritten %d times; %.1f MiB; restore %.1fs, replay %.1fs, night %.1fs, save %.1fs, total %.1fs\n",
		o.next, rev, c.lin.BaseRevision, res.Modified, res.Deleted, res.Added, churn.key, done, float64(info.Size)/(1<<20),
		t.Restore, t.Replay, t.Nights, t.Save, t.Total)
	return nil
}

// renew rewrites the leader-election record of the ConfigMap under key.
func (c *world) renew(key string, k int) error {
	cm, ok := c.w.Stored(key).(*corev1.ConfigMap)
	if !ok {
		return fmt.Errorf("renew %s: not a ConfigMap", key)
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	now := c.w.Now().UTC().Format(time.RFC3339)
	cm.Annotations[leaderAnnotation] = fmt.Sprintf(`{"holderIdentity":"master-%d_%08x","leaseDurationSeconds":15,"acquireTime":"%s","renewTime":"%s","leaderTransitions":%d}`,
		k/1000%3, k/1000, now, now, k/1000)
	_, err := c.w.Update(c.ctx, cm, "kube-scheduler")
	return err
}

// version is one change of the timeline object.
type version struct {
	Night    int    `json:"night"`
	Revision int64  `json:"revision"`
	Manager  string `json:"manager"`
	Change   string `json:"change"`
}

// nightEntry is one night of nights.json.
type nightEntry struct {
	File     string `json:"file"`
	Night    int    `json:"night"`
	Revision int64  `json:"revision"`
	nightResult
}

// nightsRecord is DIR/nights.json.
type nightsRecord struct {
	Base    string `json:"base"`
	Objects int    `json:"objects"`
	Seed    uint64 `json:"seed"`
	lineage
	Nights []nightEntry `json:"nights"`
	// BaseLineage is etcdsafe's verdict on the base and night 1 (each
	// later night passes as the next moment of the one before).
	BaseLineage string `json:"baseLineage"`
	// Object is the Deployment that changes on a few nights (Nights),
	// twice on one of them; Versions lists each change.
	Object struct {
		objectRef
		Type     string    `json:"type"`
		Nights   []int     `json:"nights"`
		Versions []version `json:"versions"`
	} `json:"object"`
	Seconds timings `json:"seconds"`
}

// timelinePlan is when the timeline object changes: night → changes.
var timelinePlan = map[int][]string{4: {"scale"}, 11: {"image"}, 19: {"image", "annotate"}, 26: {"scale"}}

// writeNights makes o.count nights, each compacting the night before and
// changing 0.1% of the objects, deleting 0.01% and adding 0.01%; one
// Deployment changes on the nights of timelinePlan, half way through.
func (c *world) writeNights(o continueOptions, t timings, start time.Time) error {
	rng := rand.New(rand.NewPCG(c.sp.seed, 2000))
	obj, err := c.pickLive(rng, "deployments", nil)
	if err != nil {
		return err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(o.nights), "."+filepath.Base(o.nights)+".part-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	rec := nightsRecord{Base: filepath.Base(o.base), Objects: c.sp.n, Seed: c.sp.seed, lineage: c.lin}
	rec.Object.objectRef = refOf(c.w.Prefix(), obj.key)
	rec.Object.Type = "deployment"
	cs := changeSet{modify: max(1, c.sp.n/1000), del: max(1, c.sp.n/10000), add: max(1, c.sp.n/10000), keep: map[string]bool{obj.key: true}}
	for night := 1; night <= o.count; night++ {
		t0 := time.Now()
		nrng := rand.New(rand.NewPCG(c.sp.seed, uint64(2000+night)))
		changes := timelinePlan[night]
		between := func(i, total int) error {
			if i != total/2 {
				return nil
			}
			for _, ch := range changes {
				v, err := c.changeTimelineObject(obj.key, ch, night)
				if err != nil {
					return err
				}
				rec.Object.Versions = append(rec.Object.Versions, v)
			}
			return nil
		}
		res, err := c.night(nrng, cs, between)
		if err != nil {
			return fmt.Errorf("night %d: %w", night, err)
		}
		if len(changes) > 0 {
			rec.Object.Nights = append(rec.Object.Nights, night)
		}
		rev, err := c.srv.Revision(c.ctx)
		if err != nil {
			return err
		}
		t.Nights += time.Since(t0).Seconds()
		t1 := time.Now()
		file := fmt.Sprintf("night-%02d.db", night)
		p := filepath.Join(tmpDir, file)
		if _, err := snapshot.Save(c.ctx, c.srv.Client, p); err != nil {
			return err
		}
		if _, err := checkSaved(c.ctx, p, c.lin, rev); err != nil {
			return err
		}
		// The restore restarted the raft log (index = members), so night 1
		// may show a lower raft index than the base: etcdsafe then rightly
		// compares values rather than trusting revisions. From night 1 on
		// the log only grows: each night must pass as the next moment of
		// the one before.
		prev := filepath.Join(tmpDir, fmt.Sprintf("night-%02d.db", night-1))
		if night == 1 {
			prev = o.base
		}
		v, err := sameLineage(prev, p)
		if err != nil {
			return err
		}
		if night == 1 {
			rec.BaseLineage = v.Reason
		} else if !v.Same {
			return fmt.Errorf("etcdsafe does not take night %d for the next moment of night %d: %s", night, night-1, v.Reason)
		}
		t.Save += time.Since(t1).Seconds()
		rec.Nights = append(rec.Nights, nightEntry{file, night, rev, *res})
		fmt.Printf("night %d: revision %d, %d modified, %d deleted, %d added%s\n", night, rev, res.Modified, res.Deleted, res.Added,
			map[bool]string{true: fmt.Sprintf(", %s: %v", obj.key, changes)}[len(changes) > 0])
	}
	t.Total = time.Since(start).Seconds()
	rec.Seconds = t
	if err := writeJSON(filepath.Join(tmpDir, "nights.json"), rec); err != nil {
		return err
	}
	if err := os.Rename(tmpDir, o.nights); err != nil {
		return err
	}
	fmt.Printf("nights %s: %d snapshots, object %s changed on nights %v; restore %.1fs, replay %.1fs, nights %.1fs, save %.1fs, total %.1fs\n",
		o.nights, o.count, obj.key, rec.Object.Nights, t.Restore, t.Replay, t.Nights, t.Save, t.Total)
	return nil
}

// changeTimelineObject makes one change of the timeline Deployment, as
// kubectl scale, set image or annotate would.
func (c *world) changeTimelineObject(key, change string, night int) (version, error) {
	d, ok := c.w.Stored(key).(*appsv1.Deployment)
	if !ok {
		return version{}, fmt.Errorf("%s: not a Deployment", key)
	}
	v := version{Night: night}
	switch change {
	case "scale":
		d.Spec.Replicas = ptr(*d.Spec.Replicas%5 + 1)
		v.Manager, v.Change = "kubectl-scale", fmt.Sprintf("replicas %d", *d.Spec.Replicas)
	case "image":
		img := fmt.Sprintf("registry.example.com/app:night-%02d", night)
		d.Spec.Template.Spec.Containers[0].Image = img
		v.Manager, v.Change = "kubectl-set", "image "+img
	case "annotate":
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations["kubernetes.io/change-cause"] = fmt.Sprintf("rollout of night %02d", night)
		v.Manager, v.Change = "kubectl-annotate", "annotation kubernetes.io/change-cause"
	default:
		return version{}, fmt.Errorf("unknown change %q", change)
	}
	var err error
	v.Revision, err = c.w.Update(c.ctx, d, v.Manager)
	return v, err
}

// writeJSON writes v to path atomically (temp file, rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".part"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
