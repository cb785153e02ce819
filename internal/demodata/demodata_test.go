package demodata

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// filled starts an embedded etcd and fills it with the demo cluster.
func filled(t *testing.T) (context.Context, *etcdtest.Server, *kubestore.Writer, Summary) {
	t.Helper()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	w, err := kubestore.New(s.Client, WriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Fill(ctx, s.Client, w)
	if err != nil {
		t.Fatalf("Fill: %v", err)
	}
	return ctx, s, w, sum
}

func TestFill(t *testing.T) {
	t.Parallel()
	ctx, s, _, sum := filled(t)
	kinds := map[string]int{}
	for _, o := range sum.Objects {
		kinds[o.Kind]++
		resp, err := s.Client.Get(ctx, o.Key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("%s: %v %v", o.Key, resp, err)
		}
		kv := resp.Kvs[0]
		if kv.ModRevision != o.Revision {
			t.Errorf("%s: mod revision %d, summary says %d", o.Key, kv.ModRevision, o.Revision)
		}
		enc := bytes.HasPrefix(kv.Value, []byte("k8s:enc:aescbc:v1:key1:"))
		if enc != o.Encrypted || enc != (o.Kind == "Secret") {
			t.Errorf("%s: encrypted=%v, summary %v", o.Key, enc, o.Encrypted)
		}
		if bytes.Contains(kv.Value, []byte("sk_test_demo")) {
			t.Errorf("%s: secret in plain text", o.Key)
		}
	}
	for _, k := range []string{"Namespace", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "CronJob", "Job", "Service", "EndpointSlice",
		"ConfigMap", "Secret", "ServiceAccount", "ClusterRole", "RoleBinding", "Pod", "Node", "Lease", "Event", "PersistentVolume",
		"PersistentVolumeClaim", "CustomResourceDefinition", "Certificate", "ClusterIssuer", "APIService"} {
		if kinds[k] == 0 {
			t.Errorf("no %s written", k)
		}
	}
	if kinds["Namespace"] != 4 || kinds["Secret"] < 3 || kinds["Certificate"] != 2 || kinds["CustomResourceDefinition"] != 2 {
		t.Errorf("kinds %v", kinds)
	}
	if !strings.HasPrefix(sum.UpdatedKey, "/registry/deployments/") || len(sum.UpdateRevisions) != 3 {
		t.Fatalf("updated %s %v", sum.UpdatedKey, sum.UpdateRevisions)
	}
	for i, rev := range sum.UpdateRevisions {
		resp, err := s.Client.Get(ctx, sum.UpdatedKey, clientv3.WithRev(rev))
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version != int64(i+1) || resp.Kvs[0].ModRevision != rev {
			t.Fatalf("revision %d of %s: %v %v", rev, sum.UpdatedKey, resp, err)
		}
	}
	if resp, _ := s.Client.Get(ctx, sum.DeletedKey); len(resp.Kvs) != 0 {
		t.Error("deleted key present")
	}
	if resp, err := s.Client.Get(ctx, sum.DeletedKey, clientv3.WithRev(sum.DeletedCreated)); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("deleted key history: %v %v", resp, err)
	}
	for _, k := range sum.SpecialKeys {
		if resp, err := s.Client.Get(ctx, k); err != nil || len(resp.Kvs) != 1 {
			t.Errorf("special key %s: %v %v", k, resp, err)
		}
	}
	if resp, _ := s.Client.Get(ctx, "/registry/masterleases/192.0.2.10"); len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Error("masterlease not on a lease")
	}
	if resp, _ := s.Client.Get(ctx, "/registry/namespaces/default", clientv3.WithRev(sum.CompactRevision-1)); resp != nil {
		t.Error("read below the compacted revision succeeded")
	}
	rev, err := s.Revision(ctx)
	if err != nil || rev != sum.Revision {
		t.Errorf("store revision %d, summary %d (%v)", rev, sum.Revision, err)
	}
}

func TestNextDay(t *testing.T) {
	t.Parallel()
	ctx, s, w, sum := filled(t)
	const renewals = 50
	day, err := NextDay(ctx, w, renewals)
	if err != nil {
		t.Fatalf("NextDay: %v", err)
	}
	if len(day.Changed) != 3 || len(day.Deleted) != 1 || len(day.Added) != 3+day.Events || day.Events != 20 || day.Renewals != renewals {
		t.Fatalf("day %+v", day)
	}
	for _, k := range append(day.Changed, day.Added...) {
		resp, err := s.Client.Get(ctx, k)
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision <= sum.Revision {
			t.Errorf("%s: not written after the first day: %v %v", k, resp, err)
		}
	}
	for _, k := range day.Deleted {
		if resp, _ := s.Client.Get(ctx, k); len(resp.Kvs) != 0 {
			t.Errorf("%s still there", k)
		}
	}
	resp, err := s.Client.Get(ctx, day.ChurnedKey)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version != renewals+1 {
		t.Fatalf("churned key %s: %v %v", day.ChurnedKey, resp, err)
	}
	resp, err = s.Client.Get(ctx, "/registry/secrets/payments/stripe")
	if err != nil || len(resp.Kvs) != 1 || bytes.Contains(resp.Kvs[0].Value, []byte("sk_test_demo")) || !bytes.HasPrefix(resp.Kvs[0].Value, []byte("k8s:enc:aescbc:v1:key1:")) {
		t.Errorf("rotated secret not stored encrypted: %v", err)
	}
	if rev, err := s.Revision(ctx); err != nil || rev != day.Revision {
		t.Errorf("store revision %d, day says %d (%v)", rev, day.Revision, err)
	}
}
