// Command mkbench generates the snapshots of `make bench`, reproducibly
// (seeded), through a real embedded etcd:
//
//	go run ./internal/cmd/mkbench -n 200000 -out /tmp/bench.db [-seed N]
//
// writes about N objects of mixed kinds (protobuf ConfigMaps, Pods and
// Deployments, aescbc-encrypted Secrets, JSON custom resources) across
// N/1000 namespaces in batched transactions, then updates 5% and deletes
// 2% of them, with a compaction half way, and saves the snapshot with
// snapshot.Save. The etcd data dir is temporary and removed at the end.
//
//	go run ./internal/cmd/mkbench -n 200000 -base /tmp/bench.db -next /tmp/bench-next.db
//	go run ./internal/cmd/mkbench -n 200000 -base /tmp/bench.db -nights /tmp/bench-nights [-count 30]
//
// continue the cluster of a snapshot made by -out with the same -n, -seed,
// -batch and -managed-fields (see continue.go): the next night (1% of the
// objects changed, 0.1% deleted, 0.1% added, one key rewritten -churn
// times), or a series of nights, each a small change set on the one
// before, with one Deployment changed on a few of them. A sidecar JSON
// (NEXT without .db plus .json; DIR/nights.json) records what changed.
// Output is not committed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// spec is what a base snapshot is made from; the same spec replays it.
type spec struct {
	n       int
	seed    uint64
	batch   int
	managed bool
}

func main() {
	var sp spec
	flag.IntVar(&sp.n, "n", 200000, "number of objects to create")
	out := flag.String("out", "", "snapshot file to write (must not exist)")
	flag.Uint64Var(&sp.seed, "seed", 1, "seed for names, data and uids")
	flag.IntVar(&sp.batch, "batch", 500, "puts per transaction")
	flag.BoolVar(&sp.managed, "managed-fields", true, "write managedFields and last-applied annotations (slower, realistic sizes)")
	base := flag.String("base", "", "continue the cluster of this snapshot (made by mkbench -out with the same -n, -seed, -batch, -managed-fields)")
	next := flag.String("next", "", "with -base: write the next night here (must not exist), its record beside it (.db replaced by .json)")
	nights := flag.String("nights", "", "with -base: write -count nights here, night-01.db... and nights.json (the directory must not exist)")
	count := flag.Int("count", 30, "with -nights: how many nights")
	churn := flag.Int("churn", 10000, "with -next: how many times one key is rewritten")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case *base == "" && *next == "" && *nights == "":
		err = run(ctx, sp, *out)
	case *base != "" && *out == "" && (*next == "") != (*nights == ""):
		err = runContinue(ctx, sp, continueOptions{base: *base, next: *next, nights: *nights, count: *count, churn: *churn})
	default:
		err = errors.New("give either -out FILE, or -base FILE with one of -next FILE and -nights DIR")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkbench: error: %v\n", err)
		os.Exit(1)
	}
}

// sink takes the writes of [generate]: a loader into etcd, or a replay
// that only records what each key ends up holding.
type sink interface {
	add(op clientv3.Op) error
	flush() error
	// compact compacts at the current revision (after a flush) and
	// returns that revision.
	compact() (int64, error)
}

type loader struct {
	ctx   context.Context
	c     *clientv3.Client
	ops   []clientv3.Op
	batch int
	txns  int
}

func (l *loader) add(op clientv3.Op) error {
	l.ops = append(l.ops, op)
	if len(l.ops) >= l.batch {
		return l.flush()
	}
	return nil
}

func (l *loader) flush() error {
	if len(l.ops) == 0 {
		return nil
	}
	if _, err := l.c.Txn(l.ctx).Then(l.ops...).Commit(); err != nil {
		return fmt.Errorf("txn of %d ops: %w", len(l.ops), err)
	}
	l.ops = l.ops[:0]
	l.txns++
	return nil
}

func (l *loader) compact() (int64, error) {
	if err := l.flush(); err != nil {
		return 0, err
	}
	return compact(l.ctx, l.c)
}

// item is one object generate created.
type item struct {
	key    string
	plural string // custom resources only
}

// generated is what generate wrote.
type generated struct {
	items            []item // in creation order
	deleted          map[string]bool
	nsCount          int
	updates, deletes int
	compacted        int64
}

// newWriter returns the writer every mode uses; c may be nil.
func newWriter(c *clientv3.Client, sp spec) (*kubestore.Writer, error) {
	opts := demodata.WriterOptions()
	opts.Seed = sp.seed
	opts.NoManagedFields = !sp.managed
	opts.NoLastApplied = !sp.managed
	return kubestore.New(c, opts)
}

// generate makes the base snapshot's writes through w into s. Everything
// it does follows from sp: the same spec gives the same writes, the same
// bytes, the same writer state (replayed by -base).
func generate(sp spec, w *kubestore.Writer, s sink) (*generated, error) {
	rng := rand.New(rand.NewPCG(sp.seed, 99))
	g := &generated{nsCount: max(1, sp.n/1000), deleted: map[string]bool{}}
	for i := range g.nsCount {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%05d", i), Labels: map[string]string{"kubernetes.io/metadata.name": fmt.Sprintf("ns-%05d", i)}}}
		key, val, err := w.PrepareCreate(ns)
		if err != nil {
			return nil, err
		}
		if err := s.add(clientv3.OpPut(key, string(val))); err != nil {
			return nil, err
		}
	}
	for i := range sp.n {
		obj, plural := newObject(rng, i, g.nsCount)
		var key string
		var val []byte
		var err error
		if plural != "" {
			key, val, err = w.PrepareCreateCR(obj.(*unstructured.Unstructured), plural)
		} else {
			key, val, err = w.PrepareCreate(obj)
		}
		if err != nil {
			return nil, err
		}
		if err := s.add(clientv3.OpPut(key, string(val))); err != nil {
			return nil, err
		}
		g.items = append(g.items, item{key, plural})
	}
	// Updates (5%) then deletions (2%), so history and tombstones exist,
	// with a compaction half way through as kube-apiserver makes them
	// every 5 minutes: the history before it is gone, after it stays.
	all := g.items
	changes := rng.Perm(len(all))[:len(all)*7/100]
	for j, i := range changes {
		if j == len(changes)/2 {
			var err error
			if g.compacted, err = s.compact(); err != nil {
				return nil, err
			}
		}
		it := all[i]
		if it.plural != "" {
			continue
		}
		if g.updates < len(all)*5/100 {
			cur := w.Stored(it.key)
			if m, ok := cur.(metav1.Object); ok {
				ann := m.GetAnnotations()
				if ann == nil {
					ann = map[string]string{}
				}
				ann["bench.etcdsafe.io/touched"] = randString(rng, 12)
				m.SetAnnotations(ann)
			}
			k, val, err := w.PrepareUpdate(cur, "bench")
			if err != nil {
				return nil, err
			}
			if err := s.add(clientv3.OpPut(k, string(val))); err != nil {
				return nil, err
			}
			g.updates++
			continue
		}
		if err := s.add(clientv3.OpDelete(it.key)); err != nil {
			return nil, err
		}
		g.deleted[it.key] = true
		g.deletes++
	}
	return g, s.flush()
}

// newObject is object i: a ConfigMap (40%), Pod (20%), Deployment (10%),
// Secret (15%) or Widget custom resource (15%, plural "widgets") in a
// random one of nsCount namespaces.
func newObject(rng *rand.Rand, i, nsCount int) (runtime.Object, string) {
	ns := fmt.Sprintf("ns-%05d", rng.IntN(nsCount))
	name := fmt.Sprintf("obj-%07d", i)
	switch r := rng.IntN(100); {
	case r < 40:
		data := map[string]string{}
		for k := range 1 + rng.IntN(6) {
			data[fmt.Sprintf("key%d", k)] = randString(rng, 20+rng.IntN(400))
		}
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}, ""
	case r < 60:
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", rng.IntN(50)), Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:" + randString(rng, 6)}}}}, ""
	case r < 70:
		lbl := map[string]string{"app": name}
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1 + rng.IntN(5))), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:1"}}}}}}, ""
	case r < 85:
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"password": []byte(randString(rng, 32))}}, ""
	default:
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec":     map[string]any{"size": int64(rng.IntN(100)), "color": randString(rng, 8)}}}, "widgets"
	}
}

// startOptions are the etcd settings of every mode: big transactions, no
// fsync (throwaway data dirs).
func startOptions(batch int) []etcdtest.Option {
	return []etcdtest.Option{etcdtest.WithMaxTxnOps(uint(batch)), etcdtest.WithQuotaBytes(8 << 30),
		etcdtest.WithMaxRequestBytes(32 << 20), etcdtest.WithUnsafeNoFsync()}
}

func run(ctx context.Context, sp spec, out string) error {
	if out == "" || sp.n <= 0 || sp.batch <= 0 {
		return errors.New("need -out FILE, -n > 0 and -batch > 0")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp("", "mkbench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	srv, err := etcdtest.StartDir(tmp, startOptions(sp.batch)...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	w, err := newWriter(nil, sp)
	if err != nil {
		return err
	}
	l := &loader{ctx: ctx, c: srv.Client, batch: sp.batch}
	g, err := generate(sp, w, l)
	if err != nil {
		return err
	}
	loaded := time.Since(start)
	info, err := snapshot.Save(ctx, srv.Client, out)
	if err != nil {
		return err
	}
	rev, _ := srv.Revision(ctx)
	fmt.Printf("objects %d (+%d namespaces), updates %d, deletes %d, txns %d, compacted at %d, revision %d\n", sp.n, g.nsCount, g.updates, g.deletes, l.txns, g.compacted, rev)
	fmt.Printf("load %s, total %s, snapshot %s: %d bytes (%.1f MiB), sha256 %s\n",
		loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), out, info.Size, float64(info.Size)/(1<<20), info.SHA256)
	return nil
}

// compact compacts etcd at its current revision the way kube-apiserver
// does (k8s.io/apiserver/pkg/storage/etcd3/compact.go): compact_rev_key
// set to the revision in a transaction guarded by its version, then the
// compaction itself.
func compact(ctx context.Context, c *clientv3.Client) (int64, error) {
	cur, err := c.Get(ctx, "compact_rev_key")
	if err != nil {
		return 0, err
	}
	var version int64
	if len(cur.Kvs) > 0 {
		version = cur.Kvs[0].Version
	}
	rev := cur.Header.Revision
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Version("compact_rev_key"), "=", version)).
		Then(clientv3.OpPut("compact_rev_key", strconv.FormatInt(rev, 10))).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("compact_rev_key changed under us")
	}
	if _, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return 0, err
	}
	return rev, nil
}

const letters = "abcdefghijklmnopqrstuvwxyz0123456789"

func randString(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }
