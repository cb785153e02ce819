package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// serverAssigned are the paths a create-ready object legitimately comes back
// with different values, per resource, and why: the receiving API server
// assigns them itself.
var serverAssigned = map[string]struct {
	paths  *regexp.Regexp
	reason string
}{
	"services": {regexp.MustCompile(`^\.spec\.(clusterIP|clusterIPs(\[\d+\])?|ports\[\d+\]\.nodePort)$`),
		"cluster IPs and unrequested node ports are allocated by the new cluster"},
	"pods": {regexp.MustCompile(`^\.spec\.(nodeName|volumes(\[\d+\].*)?|containers\[\d+\]\.volumeMounts(\[\d+\].*)?)$`),
		"nodeName is the scheduler's; the projected service-account token volume gets a new random name"},
	"jobs.batch": {regexp.MustCompile(`^\.(spec\.selector\.matchLabels\..*|spec\.template\.metadata\.labels\..*(controller-uid|job-name)|metadata\.labels\..*(controller-uid|job-name))$`),
		"the controller-uid selector and labels are generated from the new Job's uid"},
}

// createReady dumps a namespace from the archive, creates every object in a
// second, empty API server, and compares them with the originals.
func createReady(ctx context.Context, t *testing.T, bin harness.Binaries, es, archive, key, root string, orig *harness.Cluster) {
	const ns = "payments"
	dir := filepath.Join(root, "second")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c2, err := harness.Layout(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c2.Stop(); err != nil {
			t.Errorf("stop second control plane: %v", err)
		}
	}()
	cfg2, err := c2.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg1, err := orig.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn2, err := dynamic.NewForConfig(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	dyn1, err := dynamic.NewForConfig(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	nsDump := filepath.Join(root, "dump-ns")
	crdDump := filepath.Join(root, "dump-crds")
	mustCLI(t, es, "dump", archive, "--out", nsDump, "-n", ns, "-i", key)
	mustCLI(t, es, "dump", archive, "--out", crdDump, "customresourcedefinitions", "-i", key)
	nsYAML := mustCLI(t, es, "get", archive, "namespaces/"+ns, "-i", key)

	type item struct {
		resource string
		obj      *unstructured.Unstructured
	}
	parse := func(resource string, b []byte) item {
		t.Helper()
		var u unstructured.Unstructured
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatalf("%s: not YAML: %v", resource, err)
		}
		if err := json.Unmarshal(j, &u.Object); err != nil {
			t.Fatalf("%s: %v", resource, err)
		}
		return item{resource, &u}
	}
	load := func(d string) []item {
		var out []item
		files, _ := filepath.Glob(filepath.Join(d, "*", "*", "*.yaml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, parse(filepath.Base(filepath.Dir(f)), b))
		}
		return out
	}
	crds := load(crdDump)
	objs := load(nsDump)
	if len(crds) != 2 || len(objs) < 25 {
		t.Fatalf("dump wrote %d CRDs and %d objects of %s", len(crds), len(objs), ns)
	}
	first := map[string]int{"serviceaccounts": 0, "secrets": 1, "configmaps": 2}
	sort.SliceStable(objs, func(i, j int) bool {
		pi, ok := first[objs[i].resource]
		if !ok {
			pi = 9
		}
		pj, ok := first[objs[j].resource]
		if !ok {
			pj = 9
		}
		return pi < pj
	})
	gvrOf := func(it item) schema.GroupVersionResource {
		gv, err := schema.ParseGroupVersion(it.obj.GetAPIVersion())
		if err != nil {
			t.Fatalf("%s %s: apiVersion %q: %v", it.resource, it.obj.GetName(), it.obj.GetAPIVersion(), err)
		}
		res, _, _ := strings.Cut(it.resource, ".")
		return gv.WithResource(res)
	}
	createIn := func(it item) error {
		ri := dynamic.ResourceInterface(dyn2.Resource(gvrOf(it)))
		if it.obj.GetNamespace() != "" {
			ri = dyn2.Resource(gvrOf(it)).Namespace(it.obj.GetNamespace())
		}
		_, err := ri.Create(ctx, it.obj, metav1.CreateOptions{})
		return err
	}
	accepted, rejected := 0, 0
	for _, it := range append([]item{parse("namespaces", []byte(nsYAML))}, crds...) {
		if err := createIn(it); err != nil {
			t.Fatalf("%s %s rejected: %v", it.resource, it.obj.GetName(), err)
		}
		accepted++
	}
	for _, it := range objs {
		var err error
		// the second server serves a new CRD's resources a moment after it exists
		_ = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			err = createIn(it)
			return err == nil || !strings.Contains(err.Error(), "the server could not find the requested resource"), nil
		})
		if err != nil {
			rejected++
			t.Errorf("%s %s/%s rejected by the second API server: %v", it.resource, it.obj.GetNamespace(), it.obj.GetName(), err)
			continue
		}
		accepted++
	}

	// compare what the second server now serves with the original object
	equal, differ := 0, 0
	reasons := map[string]int{}
	for _, it := range objs {
		gvr := gvrOf(it)
		o1, err1 := dyn1.Resource(gvr).Namespace(it.obj.GetNamespace()).Get(ctx, it.obj.GetName(), metav1.GetOptions{})
		o2, err2 := dyn2.Resource(gvr).Namespace(it.obj.GetNamespace()).Get(ctx, it.obj.GetName(), metav1.GetOptions{})
		if err1 != nil || err2 != nil {
			if err2 == nil || rejected == 0 {
				t.Errorf("%s %s: original: %v; copy: %v", it.resource, it.obj.GetName(), err1, err2)
			}
			continue
		}
		diffs := jsonDiff("", specOf(o1.Object), specOf(o2.Object))
		var unexplained []string
		for _, d := range diffs {
			path, _, _ := strings.Cut(d, ": api=")
			if sa, ok := serverAssigned[it.resource]; ok && sa.paths.MatchString(path) {
				reasons[it.resource]++
				continue
			}
			unexplained = append(unexplained, d)
		}
		if len(unexplained) > 0 {
			differ++
			t.Errorf("%s %s: the copy differs from the original:\n  %s", it.resource, it.obj.GetName(), strings.Join(unexplained, "\n  "))
			continue
		}
		equal++
	}
	for r, n := range reasons {
		t.Logf("%s: %d fields differ as expected: %s", r, n, serverAssigned[r].reason)
	}
	t.Logf("create-ready: %d accepted, %d rejected; %d/%d equal to the originals", accepted, rejected, equal, len(objs))
	fmt.Printf("e2e create-ready: %d/%d accepted, %d/%d specs equal\n", accepted, accepted+rejected, equal, len(objs))
}

// specOf keeps what a user wrote: every top-level field but metadata
// and status, plus labels and annotations.
func specOf(o map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range o {
		if k != "metadata" && k != "status" {
			out[k] = v
		}
	}
	md, _ := o["metadata"].(map[string]any)
	out["metadata"] = map[string]any{"labels": md["labels"], "annotations": md["annotations"], "name": md["name"], "namespace": md["namespace"]}
	return out
}
