// Command mkbench generates a large snapshot for benchmarks:
//
//	go run ./internal/cmd/mkbench -n 200000 -out /tmp/bench.db [-seed N]
//
// It writes about N objects of mixed kinds (protobuf ConfigMaps, Pods and
// Deployments, aescbc-encrypted Secrets, JSON custom resources) across
// N/1000 namespaces through a real embedded etcd in batched transactions,
// then updates 5% and deletes 2% of them, with a compaction half way, and saves the snapshot with
// snapshot.Save. The etcd data dir is temporary and removed at the end.
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

func main() {
	n := flag.Int("n", 200000, "number of objects to create")
	out := flag.String("out", "", "snapshot file to write (must not exist)")
	seed := flag.Uint64("seed", 1, "seed for names, data and uids")
	batch := flag.Int("batch", 500, "puts per transaction")
	managed := flag.Bool("managed-fields", true, "write managedFields and last-applied annotations (slower, realistic sizes)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n, *out, *seed, *batch, *managed); err != nil {
		fmt.Fprintf(os.Stderr, "mkbench: error: %v\n", err)
		os.Exit(1)
	}
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

func run(ctx context.Context, n int, out string, seed uint64, batch int, managed bool) error {
	if out == "" || n <= 0 || batch <= 0 {
		return errors.New("need -out FILE, -n > 0 and -batch > 0")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp("", "mkbench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	srv, err := etcdtest.StartDir(tmp, etcdtest.WithMaxTxnOps(uint(batch)), etcdtest.WithQuotaBytes(8<<30),
		etcdtest.WithMaxRequestBytes(32<<20), etcdtest.WithUnsafeNoFsync())
	if err != nil {
		return err
	}
	defer srv.Stop()
	opts := demodata.WriterOptions()
	opts.Seed = seed
	opts.NoManagedFields = !managed
	opts.NoLastApplied = !managed
	w, err := kubestore.New(nil, opts)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	l := &loader{ctx: ctx, c: srv.Client, batch: batch}
	nsCount := max(1, n/1000)
	type written struct {
		obj    runtime.Object
		plural string
	}
	var all []written
	for i := range nsCount {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%05d", i), Labels: map[string]string{"kubernetes.io/metadata.name": fmt.Sprintf("ns-%05d", i)}}}
		if err := put(w, l, ns); err != nil {
			return err
		}
	}
	for i := range n {
		ns := fmt.Sprintf("ns-%05d", rng.IntN(nsCount))
		name := fmt.Sprintf("obj-%07d", i)
		var obj runtime.Object
		plural := ""
		switch r := rng.IntN(100); {
		case r < 40:
			data := map[string]string{}
			for k := range 1 + rng.IntN(6) {
				data[fmt.Sprintf("key%d", k)] = randString(rng, 20+rng.IntN(400))
			}
			obj = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
		case r < 60:
			obj = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", rng.IntN(50)), Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:" + randString(rng, 6)}}}}
		case r < 70:
			lbl := map[string]string{"app": name}
			obj = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl}, Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(1 + rng.IntN(5))), Selector: &metav1.LabelSelector{MatchLabels: lbl},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:1"}}}}}}
		case r < 85:
			obj = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"password": []byte(randString(rng, 32))}}
		default:
			plural = "widgets"
			obj = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
				"metadata": map[string]any{"name": name, "namespace": ns},
				"spec":     map[string]any{"size": int64(rng.IntN(100)), "color": randString(rng, 8)}}}
		}
		if plural != "" {
			key, val, err := w.PrepareCreateCR(obj.(*unstructured.Unstructured), plural)
			if err != nil {
				return err
			}
			if err := l.add(clientv3.OpPut(key, string(val))); err != nil {
				return err
			}
		} else if err := put(w, l, obj); err != nil {
			return err
		}
		all = append(all, written{obj, plural})
	}
	// Updates (5%) then deletions (2%), so history and tombstones exist,
	// with a compaction half way through as kube-apiserver makes them
	// every 5 minutes: the history before it is gone, after it stays.
	var updates, deletes int
	changes := rng.Perm(len(all))[:len(all)*7/100]
	var compacted int64
	for j, i := range changes {
		if j == len(changes)/2 {
			if err := l.flush(); err != nil {
				return err
			}
			if compacted, err = compact(ctx, srv.Client); err != nil {
				return err
			}
		}
		wr := all[i]
		if wr.plural != "" {
			continue
		}
		key, err := w.KeyFor(wr.obj)
		if err != nil {
			return err
		}
		if updates < len(all)*5/100 {
			cur := w.Stored(key)
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
				return err
			}
			if err := l.add(clientv3.OpPut(k, string(val))); err != nil {
				return err
			}
			updates++
			continue
		}
		if err := l.add(clientv3.OpDelete(key)); err != nil {
			return err
		}
		deletes++
	}
	if err := l.flush(); err != nil {
		return err
	}
	loaded := time.Since(start)
	info, err := snapshot.Save(ctx, srv.Client, out)
	if err != nil {
		return err
	}
	rev, _ := srv.Revision(ctx)
	fmt.Printf("objects %d (+%d namespaces), updates %d, deletes %d, txns %d, compacted at %d, revision %d\n", n, nsCount, updates, deletes, l.txns, compacted, rev)
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

func put(w *kubestore.Writer, l *loader, obj runtime.Object) error {
	key, val, err := w.PrepareCreate(obj)
	if err != nil {
		return err
	}
	return l.add(clientv3.OpPut(key, string(val)))
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
