package kdiff_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/kdiff"
	"github.com/etcdsafe/etcdsafe/source"
)

// The Secret values the nights hold; none may show in any output.
var secretValues = []string{"sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_demo_rotated_9Xq2LmN8vB4cR7tY", "kube-system-old-token", "kube-system-new-token"}

// noiseKey is the object whose status only changes.
const noiseKey = "/registry/daemonsets/monitoring/node-exporter"

// night is what the test wrote: the key -> change it expects.
type night struct {
	a, b   string
	enc    []byte
	expect map[string]string
}

func snapshotTo(t *testing.T, srv *etcdtest.Server, path string) {
	t.Helper()
	rc, err := srv.Client.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// nightOne writes the demo cluster plus what the test changes later: a
// namespace of ConfigMaps, a kube-system Secret, a key outside the
// registry. tamper changes one ConfigMap's value (another cluster that
// reused the revisions).
func nightOne(ctx context.Context, t *testing.T, srv *etcdtest.Server, tamper bool) *kubestore.Writer {
	t.Helper()
	w, err := kubestore.New(srv.Client, demodata.WriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demodata.Fill(ctx, srv.Client, w); err != nil {
		t.Fatal(err)
	}
	must := func(_ int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		v := "1"
		if tamper && i == 11 {
			v = "tampered"
		}
		must(w.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: fmt.Sprintf("job-%02d", i)}, Data: map[string]string{"n": v}}))
	}
	must(w.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bootstrap"}, Data: map[string][]byte{"token": []byte("kube-system-old-token"), "ca": []byte("same")}}))
	if _, err := srv.Client.Put(ctx, "/custom/flag", "on"); err != nil {
		t.Fatal(err)
	}
	return w
}

// twoNights writes night A, takes its snapshot, lives a day (demodata's
// and the test's own changes) and takes night B.
func twoNights(t *testing.T) night {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w := nightOne(ctx, t, srv, false)
	n := night{a: filepath.Join(dir, "a.db"), b: filepath.Join(dir, "b.db"), enc: w.EncryptionConfigYAML(), expect: map[string]string{}}
	snapshotTo(t, srv, n.a)

	day, err := demodata.NextDay(ctx, w, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range day.Changed {
		n.expect[k] = "changed"
	}
	for _, k := range day.Added {
		n.expect[k] = "added"
	}
	for _, k := range day.Deleted {
		n.expect[k] = "deleted"
	}
	n.expect[day.ChurnedKey] = "changed"
	for i := range 12 { // a mass deletion
		k := fmt.Sprintf("/registry/configmaps/batch/job-%02d", i)
		if _, err := w.DeleteKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		n.expect[k] = "deleted"
	}
	sec := w.Stored("/registry/secrets/kube-system/bootstrap").(*corev1.Secret)
	sec.Data["token"] = []byte("kube-system-new-token")
	if _, err := w.Update(ctx, sec, "kubeadm"); err != nil {
		t.Fatal(err)
	}
	n.expect["/registry/secrets/kube-system/bootstrap"] = "changed"
	crd := "/registry/apiextensions.k8s.io/customresourcedefinitions/clusterissuers.cert-manager.io"
	if _, err := w.DeleteKey(ctx, crd); err != nil {
		t.Fatal(err)
	}
	n.expect[crd] = "deleted"
	// status only: noise
	ds := w.Stored(noiseKey)
	if ds == nil {
		t.Fatal("no " + noiseKey + " in the demo")
	}
	d := ds.(*appsv1.DaemonSet)
	d.Status.ObservedGeneration++
	d.Status.NumberReady = 7
	if _, err := w.Update(ctx, d, "kube-controller-manager"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Put(ctx, "/custom/flag", "off"); err != nil {
		t.Fatal(err)
	}
	n.expect["/custom/flag"] = "changed"
	snapshotTo(t, srv, n.b)
	return n
}

func open(t *testing.T, path string, enc []byte) *source.Source {
	t.Helper()
	s, err := source.Open(context.Background(), path, source.Options{DecryptionConfig: enc, Prefix: "/registry"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run diffs a and b and returns the plan, the emitted objects and the
// result; a problem fails the test.
func run(t *testing.T, a, b *source.Source, o kdiff.Options) (*kdiff.Plan, []*kdiff.Object, *kdiff.Result) {
	t.Helper()
	o.OnProblem = func(side, key string, err error) { t.Errorf("problem in %s: %s: %v", side, key, err) }
	p, err := kdiff.Prepare(context.Background(), a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*kdiff.Object
	res, err := p.Objects(context.Background(), func(o *kdiff.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, objs, res
}

func changes(objs []*kdiff.Object) map[string]string {
	m := map[string]string{}
	for _, o := range objs {
		m[o.Key] = o.Change
	}
	return m
}

func diffMaps(got, want map[string]string) string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: got %q, not expected", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// TestDiffTwoNights: the exact change set the test made, the findings,
// secrets masked but their change visible, status-only changes counted
// as noise, revisions trusted (and the same answer comparing values).
func TestDiffTwoNights(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	n := twoNights(t)
	a, b := open(t, n.a, n.enc), open(t, n.b, n.enc)

	p, objs, res := run(t, a, b, kdiff.Options{})
	if d := diffMaps(changes(objs), n.expect); d != "" {
		t.Fatalf("changes:\n%s", d)
	}
	if p.Lineage.Mode != "revisions" || p.Lineage.Forced || p.Skipped == 0 || !strings.Contains(p.Lineage.Reason, "one cluster history") {
		t.Errorf("lineage %+v, skipped %d", p.Lineage, p.Skipped)
	}
	// the changed keys whose revisions differ are compared: the day's
	// changes, the noise-only Deployment
	if p.Compared != res.Changed+res.NoiseOnly {
		t.Errorf("compared %d, want %d changed + %d noise", p.Compared, res.Changed, res.NoiseOnly)
	}
	if res.NoiseOnly != 1 {
		t.Errorf("noise only: %d, want 1 (the status update)", res.NoiseOnly)
	}
	if res.Added+res.Deleted+res.Changed != len(n.expect) || !res.Differs() {
		t.Errorf("counts %+v for %d expected", res, len(n.expect))
	}

	// findings
	var types []string
	for _, f := range p.Findings {
		types = append(types, f.Type)
	}
	slices.Sort(types)
	want := []string{kdiff.FindingAdmissionWebhook, kdiff.FindingClusterAdmin, kdiff.FindingCRDRemoved, kdiff.FindingKubeSystemSecret, kdiff.FindingMassDeletion}
	if !slices.Equal(types, want) {
		t.Errorf("findings %v, want %v: %+v", types, want, p.Findings)
	}
	for _, f := range p.Findings {
		switch f.Type {
		case kdiff.FindingMassDeletion:
			if len(f.Keys) != 12 || !strings.Contains(f.Message, "12 of 1") {
				t.Errorf("mass deletion: %+v", f)
			}
		case kdiff.FindingClusterAdmin:
			if f.Severity != "high" || !strings.Contains(f.Message, "ServiceAccount payments/default") {
				t.Errorf("cluster-admin: %+v", f)
			}
		case kdiff.FindingAdmissionWebhook:
			if !strings.Contains(f.Message, "https://203.0.113.7:8443/validate") {
				t.Errorf("webhook: %+v", f)
			}
		}
	}

	// Secrets: masked, the change visible, no value nor its base64
	byKey := map[string]*kdiff.Object{}
	all, _ := json.Marshal(objs)
	fs, _ := json.Marshal(p.Findings)
	all = append(all, fs...)
	for _, o := range objs {
		byKey[o.Key] = o
	}
	for _, v := range secretValues {
		if strings.Contains(string(all), v) || strings.Contains(string(all), base64.StdEncoding.EncodeToString([]byte(v))) {
			t.Errorf("secret value %q in the output", v)
		}
	}
	boot := byKey["/registry/secrets/kube-system/bootstrap"].Diff
	for _, line := range []string{"-  token: (masked, 21 bytes, old value)", "+  token: (masked, 21 bytes, new value)", "   ca: (masked, 4 bytes)"} {
		if !strings.Contains(boot, line+"\n") {
			t.Errorf("Secret diff lacks %q:\n%s", line, boot)
		}
	}
	stripe := byKey["/registry/secrets/payments/stripe"].Diff
	if !strings.Contains(stripe, "-  apiKey: (masked, 37 bytes, old value)") || strings.Contains(stripe, "last-applied-configuration: |") {
		t.Errorf("stripe:\n%s", stripe)
	}

	// a YAML diff of the create-ready objects, noise left out
	api := byKey["/registry/deployments/payments/api"]
	if !strings.HasPrefix(api.Diff, "--- a/deployments.apps/payments/api\n+++ b/deployments.apps/payments/api\n") ||
		!strings.Contains(api.Diff, "+      - image: registry.example.com/payments/api:1.9.0\n") {
		t.Errorf("api diff:\n%s", api.Diff)
	}
	for _, noise := range []string{"resourceVersion", "managedFields", "generation", "status:", "uid:", "creationTimestamp"} {
		if strings.Contains(api.Diff, noise) {
			t.Errorf("api diff shows %s:\n%s", noise, api.Diff)
		}
	}
	if o := byKey["/registry/cronjobs/payments/settle"]; o.Label() != "CronJob.batch payments/settle" || !strings.HasPrefix(o.Diff, "--- a/cronjobs.batch/payments/settle\n+++ /dev/null\n") {
		t.Errorf("deleted: %s\n%s", o.Label(), o.Diff)
	}
	flag := byKey["/custom/flag"]
	if flag.Undecoded == "" || flag.Diff != "" || flag.A.SHA256 == "" || flag.A.SHA256 == flag.B.SHA256 || flag.A.Size != 2 || flag.B.Size != 3 {
		t.Errorf("raw key: %+v %+v %+v", flag, flag.A, flag.B)
	}
	if byKey["/registry/secrets/payments/stripe"].B.Encryption != "aescbc:key1" {
		t.Errorf("encryption: %+v", byKey["/registry/secrets/payments/stripe"].B)
	}

	// order: cluster-scoped first, then by namespace, kind, name; keys last
	if objs[0].Namespace != "" || objs[len(objs)-1].Key != "/custom/flag" {
		t.Errorf("order: first %s, last %s", objs[0].Key, objs[len(objs)-1].Key)
	}
	for i := 1; i < len(objs)-1; i++ {
		if objs[i-1].Namespace > objs[i].Namespace {
			t.Errorf("order: %s before %s", objs[i-1].Key, objs[i].Key)
		}
	}

	// status shown: the Deployment is a change
	_, objs2, res2 := run(t, a, b, kdiff.Options{IncludeStatus: true})
	if res2.NoiseOnly != 0 || changes(objs2)[noiseKey] != "changed" {
		t.Errorf("--include-status: noise %d", res2.NoiseOnly)
	}
	// every value compared: the same answer, nothing skipped
	p3, objs3, _ := run(t, a, b, kdiff.Options{Lineage: kdiff.LineageValues})
	if d := diffMaps(changes(objs3), n.expect); d != "" || p3.Skipped != 0 || p3.Lineage.Mode != "values" || !p3.Lineage.Forced {
		t.Errorf("compare values: %+v skipped %d\n%s", p3.Lineage, p3.Skipped, d)
	}
	// a selection
	_, objs4, _ := run(t, a, b, kdiff.Options{Args: []string{"secrets"}, Namespace: "kube-system"})
	if d := diffMaps(changes(objs4), map[string]string{"/registry/secrets/kube-system/bootstrap": "changed"}); d != "" {
		t.Errorf("selection:\n%s", d)
	}
	_, objs5, _ := run(t, a, b, kdiff.Options{Args: []string{"cert/missing"}})
	if len(objs5) != 0 {
		t.Errorf("custom type selection: %d objects", len(objs5))
	}
	// --stat: counts, no diffs
	_, objs6, res6 := run(t, a, b, kdiff.Options{Stat: true})
	if res6.Added != res.Added || res6.NoiseOnly != 1 || len(res6.Stats) != len(res.Stats) {
		t.Errorf("stat: %+v vs %+v", res6, res)
	}
	for _, o := range objs6 {
		if o.Diff != "" {
			t.Errorf("stat rendered %s", o.Key)
		}
	}
	// shown on request
	_, objs7, _ := run(t, a, b, kdiff.Options{ShowSecrets: true, Args: []string{"secret/stripe"}})
	if len(objs7) != 1 || !strings.Contains(objs7[0].Diff, base64.StdEncoding.EncodeToString([]byte(secretValues[1]))) {
		t.Errorf("--show-secrets: %+v", objs7)
	}
}

// TestDiffRestoredCluster: another cluster (same member ID, the same
// writes but for one value) reuses A's revisions for another value: the
// files show it, values are compared and the one difference is found;
// trusting revisions anyway misses it.
func TestDiffRestoredCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	one := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w := nightOne(ctx, t, one, false)
	snapshotTo(t, one, filepath.Join(dir, "a.db"))
	two := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	nightOne(ctx, t, two, true)
	for range 5 { // past A's revision
		if _, err := two.Client.Put(ctx, "/custom/later", "x"); err != nil {
			t.Fatal(err)
		}
	}
	snapshotTo(t, two, filepath.Join(dir, "b.db"))
	a, b := open(t, filepath.Join(dir, "a.db"), w.EncryptionConfigYAML()), open(t, filepath.Join(dir, "b.db"), w.EncryptionConfigYAML())

	p, objs, _ := run(t, a, b, kdiff.Options{})
	want := map[string]string{"/registry/configmaps/batch/job-11": "changed", "/custom/later": "added"}
	if d := diffMaps(changes(objs), want); d != "" || p.Lineage.Mode != "values" || p.Skipped != 0 || !strings.Contains(p.Lineage.Reason, "reused") {
		t.Fatalf("lineage %+v, skipped %d:\n%s", p.Lineage, p.Skipped, d)
	}
	if !strings.Contains(objs[0].Diff, "-  \"n\": \"1\"\n+  \"n\": tampered\n") {
		t.Errorf("diff:\n%s", objs[0].Diff)
	}
	p2, objs2, _ := run(t, a, b, kdiff.Options{Lineage: kdiff.LineageSame})
	if d := diffMaps(changes(objs2), map[string]string{"/custom/later": "added"}); d != "" || p2.Lineage.Mode != "revisions" {
		t.Errorf("forced lineage trusts revisions: %+v\n%s", p2.Lineage, d)
	}
	// two archives naming two clusters: values compared whatever the files show
	p3, _, _ := run(t, a, a, kdiff.Options{ClusterIDA: "1", ClusterIDB: "2"})
	if p3.Lineage.Mode != "values" || !strings.Contains(p3.Lineage.Reason, "two clusters") {
		t.Errorf("cluster IDs: %+v", p3.Lineage)
	}
}

// TestDiffRealFixture: a snapshot a real kube-apiserver wrote, against
// itself (nothing differs, every key trusted by revision) and against the
// demo cluster (two clusters: values compared; every object of the real
// file added, decoded without a problem, its Secrets masked, its
// bootstrap cluster-admin binding flagged).
func TestDiffRealFixture(t *testing.T) {
	t.Parallel()
	const dir = "../testdata/real-k8s1.37-etcd3.7/"
	realEnc, err := os.ReadFile(dir + "encryption-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	demoEnc, err := os.ReadFile("../testdata/generated/encryption-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	real1, real2 := open(t, dir+"snapshot.db", realEnc), open(t, dir+"snapshot.db", realEnc)
	p, objs, res := run(t, real1, real2, kdiff.Options{})
	if len(objs) != 0 || res.Differs() || p.Lineage.Mode != "revisions" || p.Compared != 0 || p.Unchanged != p.Skipped || p.Skipped < 100 {
		t.Errorf("real against itself: %d objects, %+v, %+v", len(objs), p.Lineage, res)
	}

	demo := open(t, "../testdata/generated/demo.db", demoEnc)
	p, objs, res = run(t, demo, real1, kdiff.Options{})
	if p.Lineage.Mode != "values" || !strings.Contains(p.Lineage.Reason, "member sets differ") {
		t.Errorf("lineage: %+v", p.Lineage)
	}
	// every Secret and Deployment the API served is added, or changed
	// from the demo's object of that name (payments/api-config is the
	// demo's but for uid and time: noise)
	shown := map[string]*kdiff.Object{}
	for _, o := range objs {
		if o.Change != "deleted" {
			shown[o.Kind+" "+o.Namespace+"/"+o.Name] = o
		}
	}
	all, _ := json.Marshal(objs)
	for _, f := range []string{"secrets.json", "deployments.apps.json"} {
		b, err := os.ReadFile(dir + "api/" + f)
		if err != nil {
			t.Fatal(err)
		}
		var served struct {
			Items []struct {
				Kind     string            `json:"kind"`
				Data     map[string]string `json:"data"`
				Metadata struct{ Name, Namespace string }
			} `json:"items"`
		}
		if err := json.Unmarshal(b, &served); err != nil {
			t.Fatal(err)
		}
		for _, it := range served.Items {
			o := shown[it.Kind+" "+it.Metadata.Namespace+"/"+it.Metadata.Name]
			if o == nil {
				t.Errorf("%s %s/%s not shown", it.Kind, it.Metadata.Namespace, it.Metadata.Name)
				continue
			}
			for k, v := range it.Data {
				if it.Kind != "Secret" {
					continue
				}
				raw, _ := base64.StdEncoding.DecodeString(v)
				if strings.Contains(string(all), v) || !strings.Contains(o.Diff, fmt.Sprintf("+  %s: (masked, %d bytes", k, len(raw))) {
					t.Errorf("Secret %s %s not masked:\n%s", it.Metadata.Name, k, o.Diff)
				}
			}
		}
	}
	found := false
	for _, f := range p.Findings {
		found = found || f.Type == kdiff.FindingClusterAdmin && slices.Contains(f.Keys, "/registry/clusterrolebindings/cluster-admin")
	}
	if !found || res.Added == 0 || res.Deleted == 0 || res.NoiseOnly == 0 {
		t.Errorf("findings %+v, result %+v", p.Findings, res)
	}
}
