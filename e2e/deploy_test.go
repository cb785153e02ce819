package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// deployGVRs are the resources of the kinds deploy/ ships.
var deployGVRs = map[string]schema.GroupVersionResource{
	"Namespace":      {Version: "v1", Resource: "namespaces"},
	"ServiceAccount": {Version: "v1", Resource: "serviceaccounts"},
	"Secret":         {Version: "v1", Resource: "secrets"},
	"CronJob":        {Group: "batch", Version: "v1", Resource: "cronjobs"},
	"PrometheusRule": {Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"},
}

// TestDeployManifests has the real kube-apiserver accept deploy/'s
// Kubernetes objects in a server-side dry run (dryRun=All, strict field
// validation: an unknown or misspelt field is an error): the CronJob with
// its Namespace, ServiceAccount and example Secret, and the PrometheusRule
// after prometheus-operator's own CRD (e2e/testdata/prometheus-operator).
// Broken copies are refused, so the dry run does validate; nothing but the
// namespaces and the CRD is created.
func TestDeployManifests(t *testing.T) {
	bin, _ := bins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	master := filepath.Join(t.TempDir(), "master")
	if err := os.MkdirAll(master, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := harness.Layout(master, bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	installCRD(ctx, t, ext, "testdata/prometheus-operator/monitoring.coreos.com_prometheusrules.yaml")
	ns := dyn.Resource(deployGVRs["Namespace"])
	if _, err := ns.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "monitoring"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var all []*unstructured.Unstructured
	for _, f := range []string{"kubernetes/cronjob.yaml", "kubernetes/secret.example.yaml", "prometheus/prometheusrule.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decodeDocs(t, f, string(b)) {
			t.Logf("deploy: dry run of %s %s/%s (%s)", o.GetKind(), o.GetNamespace(), o.GetName(), f)
			dryRun(ctx, t, dyn, o)
			all = append(all, o)
			if o.GetKind() == "Namespace" {
				// the dry run left nothing: the objects in it need it for real
				if _, err := ns.Create(ctx, o, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, o := range all {
		if o.GetKind() == "Namespace" {
			continue
		}
		_, err := dyn.Resource(deployGVRs[o.GetKind()]).Namespace(o.GetNamespace()).Get(ctx, o.GetName(), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s %s after a dry run: %v, want NotFound", o.GetKind(), o.GetName(), err)
		}
	}

	// broken copies: the server's validation (built-in types and the CRD's
	// schema) is really applied to the dry run
	for _, tc := range []struct {
		name, file, old, repl, want string
	}{
		{"cronjob misspelt field", "kubernetes/cronjob.yaml", "concurrencyPolicy: Forbid", "concurencyPolicy: Forbid", `unknown field "spec.concurencyPolicy"`},
		{"cronjob bad schedule", "kubernetes/cronjob.yaml", `schedule: "17 1 * * *"`, `schedule: "17 25 * * *"`, "spec.schedule"},
		{"cronjob bad host path type", "kubernetes/cronjob.yaml", "type: DirectoryOrCreate", "type: DirOrCreate", "hostPath.type"},
		{"prometheusrule misspelt field", "prometheus/prometheusrule.yaml", "        - alert: EtcdsafeBackupFailed\n          expr:", "        - alert: EtcdsafeBackupFailed\n          exprs:", `unknown field "spec.groups[0].rules[1].exprs"`},
		{"prometheusrule without expr", "prometheus/prometheusrule.yaml", "          expr: etcdsafe_backup_last_run_success == 0\n", "", "expr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "deploy", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s has no %q", tc.file, tc.old)
			}
			broken := strings.Replace(string(b), tc.old, tc.repl, 1)
			var refused error
			for _, o := range decodeDocs(t, tc.file, broken) {
				if o.GetKind() == "Namespace" {
					continue
				}
				_, err := dyn.Resource(deployGVRs[o.GetKind()]).Namespace(o.GetNamespace()).Create(ctx, o,
					metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
				if err != nil {
					refused = err
				}
			}
			if refused == nil {
				t.Fatal("kube-apiserver accepted it")
			}
			if !strings.Contains(refused.Error(), tc.want) {
				t.Fatalf("refused with %v; want %q in it", refused, tc.want)
			}
			t.Logf("refused: %v", refused)
		})
	}
}

// decodeDocs splits a multi-document YAML file into objects of the kinds
// in deployGVRs.
func decodeDocs(t *testing.T, name, text string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(text, "\n---\n") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := deployGVRs[o.GetKind()]; !ok {
			t.Fatalf("%s: unexpected kind %q", name, o.GetKind())
		}
		out = append(out, o)
	}
	return out
}

// dryRun creates o with dryRun=All and strict field validation; the new
// CRD's REST mapping may take a moment to reach the handler, so a NotFound
// on the resource is retried.
func dryRun(ctx context.Context, t *testing.T, dyn dynamic.Interface, o *unstructured.Unstructured) {
	t.Helper()
	ri := dyn.Resource(deployGVRs[o.GetKind()])
	var r dynamic.ResourceInterface = ri
	if o.GetKind() != "Namespace" {
		r = ri.Namespace(o.GetNamespace())
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := r.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
		last = err
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err) && o.GetKind() == "PrometheusRule":
			return false, nil
		default:
			return false, err
		}
	})
	if err != nil {
		t.Fatalf("kube-apiserver refused %s %s/%s: %v (last: %v)", o.GetKind(), o.GetNamespace(), o.GetName(), err, last)
	}
}

// installCRD creates the CRD in file and waits until it is established.
func installCRD(ctx context.Context, t *testing.T, ext apiextclient.Interface, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD %s: %v", crd.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", crd.Name, err)
	}
}
