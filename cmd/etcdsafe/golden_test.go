package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/etcdsafe/etcdsafe/decode"
)

// update rewrites the golden files: go test ./cmd/etcdsafe -run TestGolden -update
var update = flag.Bool("update", false, "rewrite cmd/etcdsafe/testdata/golden/*.golden from the current output")

const (
	goldenDir = "testdata/golden"
	demoEnc   = "../../testdata/generated/encryption-config.yaml"
)

// goldenCompare compares got with testdata/golden/<name>.golden, or writes
// it with -update. A mismatch prints a unified diff.
func goldenCompare(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(goldenDir, name+".golden")
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if string(want) == got {
		return
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(want)), B: difflib.SplitLines(got),
		FromFile: path, ToFile: "got", Context: 3,
	})
	t.Errorf("output differs from %s (go test ./cmd/etcdsafe -run TestGolden -update, then review the diff):\n%s", path, diff)
}

// goldenRecord renders one CLI run: the command line (fixture paths
// shortened), the exit code, stdout, and stderr when there is any.
func goldenRecord(args []string, stdout, stderr string, code int) string {
	short := strings.NewReplacer(demoDB, "demo.db", demoEnc, "encryption-config.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "$ etcdsafe %s\n# exit %d\n", short.Replace(strings.Join(args, " ")), code)
	b.WriteString(stdout)
	if stderr != "" {
		b.WriteString("# stderr\n")
		b.WriteString(stderr)
	}
	return b.String()
}

func fileSHA(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestGolden pins the CLI's output on the committed demo snapshot. Each
// golden file is a claim that the output is right for an operator: review
// every -update diff as such.
func TestGolden(t *testing.T) {
	before := fileSHA(t, demoDB)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"status-json", []string{"status", demoDB, "-o", "json"}, 0},
		{"status-table", []string{"status", demoDB}, 0},
		{"ls-all", []string{"ls", demoDB}, 0},
		{"ls-deployments-all-namespaces", []string{"ls", demoDB, "deployments", "-A"}, 0},
		{"ls-secrets-payments", []string{"ls", demoDB, "secrets", "-n", "payments"}, 0},
		{"ls-deleted", []string{"ls", demoDB, "--deleted"}, 0},
		{"ls-certificates", []string{"ls", demoDB, "certificates"}, 0},
		{"ls-keys", []string{"ls", demoDB, "-o", "keys"}, 0},
		{"ls-json", []string{"ls", demoDB, "-o", "json"}, 0},
		{"get-deployment-create-ready", []string{"get", demoDB, "deployment/api", "-n", "payments"}, 0},
		{"get-deployment-raw", []string{"get", demoDB, "deployment/api", "-n", "payments", "--raw"}, 0},
		{"get-deployment-at-revision-26", []string{"get", demoDB, "deployment/api", "-n", "payments", "--revision", "26", "--raw"}, 0},
		{"get-secret-decrypted", []string{"get", demoDB, "secret/stripe", "-n", "payments", "--decryption-config", demoEnc}, 0},
		{"get-secret-no-key", []string{"get", demoDB, "secret/stripe", "-n", "payments"}, 4},
		{"get-custom-resource", []string{"get", demoDB, "certificate/api-cert", "-n", "payments"}, 0},
		{"get-crd-served-v1", []string{"get", demoDB, "crd/certificates.cert-manager.io"}, 0},
		{"get-crd-raw-served-v1", []string{"get", demoDB, "crd/certificates.cert-manager.io", "--raw"}, 0},
		{"get-crd-storage-version", []string{"get", demoDB, "crd/certificates.cert-manager.io", "--raw", "--storage-version"}, 0},
		{"get-service-nodeport", []string{"get", demoDB, "service/api-public", "-n", "payments"}, 0},
		{"get-key-compact-rev", []string{"get", demoDB, "--key", "compact_rev_key"}, 0},
		{"get-pods-selector", []string{"get", demoDB, "pods", "-A", "-l", "app=api"}, 0},
		{"get-services-json-list", []string{"get", demoDB, "services", "-n", "payments", "-o", "json"}, 0},
		{"history-deployment-api", []string{"history", demoDB, "deployment/api", "-n", "payments"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			goldenCompare(t, tc.name, goldenRecord(tc.args, stdout, stderr, code))
		})
	}
	if after := fileSHA(t, demoDB); after != before {
		t.Errorf("demo.db changed while the CLI read it")
	}
}

// TestGoldenDump pins `dump -n payments`: the sorted list of files and the
// content of three of them (a Deployment, a decrypted Secret, a custom
// resource).
func TestGoldenDump(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dump")
	args := []string{"dump", demoDB, "--out", out, "-n", "payments", "--decryption-config", demoEnc}
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("dump: exit %d\n%s", code, stderr)
	}
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(goldenRecord(args, stdout, stderr, code), out, "OUT"))
	files := listFiles(t, out)
	b.WriteString("# files\n")
	for _, f := range files {
		b.WriteString(filepath.ToSlash(f) + "\n")
	}
	for _, f := range []string{
		"payments/deployments.apps/api.yaml",
		"payments/secrets/stripe.yaml",
		"payments/certificates.cert-manager.io/api-cert.yaml",
	} {
		content, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f)))
		if err != nil {
			t.Errorf("dump has no %s: %v (files: %v)", f, err, files)
			continue
		}
		fmt.Fprintf(&b, "# file %s\n%s", f, content)
	}
	goldenCompare(t, "dump-payments", b.String())
}

// serverSetMeta are metadata fields the server assigns; `kubectl create`
// of an object carrying uid or resourceVersion fails, and the others are
// noise or wrong on a new cluster.
var serverSetMeta = []string{"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}

var dnsLabelKinds = regexp.MustCompile(`^(Namespace|Service)$`)

// TestDumpCreateReady: every create-ready object of a full dump decodes
// strictly into its Go type (no unknown or misspelled field) and passes the
// object-meta validation kube-apiserver runs on create, without any
// server-set field.
func TestDumpCreateReady(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dump")
	if _, stderr, code := runCLI(t, "dump", demoDB, "--out", out, "--include-owned", "--decryption-config", demoEnc); code != 0 {
		t.Fatalf("dump: exit %d\n%s", code, stderr)
	}
	files := listFiles(t, out)
	if len(files) < 40 {
		t.Fatalf("dump wrote %d files, want every object of the demo (40+)", len(files))
	}
	typedKinds, untyped := 0, 0
	for _, f := range files {
		t.Run(filepath.ToSlash(f), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			var u unstructured.Unstructured
			if err := yaml.Unmarshal(raw, &u.Object); err != nil {
				t.Fatalf("not YAML: %v", err)
			}
			gvk := u.GroupVersionKind()
			if gvk.Kind == "" || gvk.Version == "" {
				t.Fatalf("no apiVersion/kind: %q %q", u.GetAPIVersion(), u.GetKind())
			}
			md, _, _ := unstructured.NestedMap(u.Object, "metadata")
			for _, k := range serverSetMeta {
				if _, ok := md[k]; ok {
					t.Errorf("metadata.%s present: kubectl create would fail or carry stale state", k)
				}
			}
			if _, ok := u.Object["status"]; ok {
				t.Errorf("status present in create-ready output")
			}
			if len(u.GetOwnerReferences()) > 0 {
				t.Errorf("ownerReferences kept (owners do not exist on a new cluster): %v", u.GetOwnerReferences())
			}
			dir := strings.Split(filepath.ToSlash(f), "/")[0]
			if ns := u.GetNamespace(); (dir == "_cluster") != (ns == "") || (ns != "" && ns != dir) {
				t.Errorf("namespace %q in directory %q", ns, dir)
			}

			nameFn := apivalidation.NameIsDNSSubdomain
			if dnsLabelKinds.MatchString(gvk.Kind) && gvk.Group == "" {
				nameFn = apivalidation.NameIsDNSLabel
			}
			accessor, err := metaAccessor(&u)
			if err != nil {
				t.Fatal(err)
			}
			errs := apivalidation.ValidateObjectMetaAccessor(accessor, u.GetNamespace() != "", nameFn, field.NewPath("metadata"))
			errs = append(errs, metav1validation.ValidateLabels(u.GetLabels(), field.NewPath("metadata", "labels"))...)
			for _, e := range errs {
				t.Errorf("object meta: %v", e)
			}

			if !decode.Scheme().Recognizes(gvk) {
				untyped++ // custom resources: no Go type to check against
				return
			}
			typedKinds++
			obj, err := decode.Scheme().New(gvk)
			if err != nil {
				t.Fatal(err)
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
				t.Fatalf("strict decode into %T: %v", obj, err)
			}
			switch o := obj.(type) {
			case *corev1.Service:
				if ip := o.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
					t.Errorf("service keeps clusterIP %s (another cluster's allocation)", ip)
				}
			case *corev1.Pod:
				if o.Spec.NodeName != "" {
					t.Errorf("pod keeps nodeName %s", o.Spec.NodeName)
				}
			}
			for _, sel := range labelSelectors(obj) {
				for _, e := range metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, field.NewPath("spec", "selector")) {
					t.Errorf("selector: %v", e)
				}
			}
		})
	}
	t.Logf("%d files: %d typed objects checked strictly, %d custom resources checked for metadata only", len(files), typedKinds, untyped)
	if typedKinds == 0 {
		t.Error("no typed object was checked")
	}
}

// metaAccessor is metav1.ObjectMetaAccessor over an unstructured object.
func metaAccessor(u *unstructured.Unstructured) (metav1.Object, error) {
	var om metav1.ObjectMeta
	md, _, _ := unstructured.NestedMap(u.Object, "metadata")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(md, &om, true); err != nil {
		return nil, fmt.Errorf("metadata does not decode strictly: %w", err)
	}
	return &om, nil
}

// labelSelectors returns the metav1 label selectors of workload kinds.
func labelSelectors(obj runtime.Object) []*metav1.LabelSelector {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil
	}
	m, ok, _ := unstructured.NestedMap(u, "spec", "selector")
	if !ok {
		return nil
	}
	if _, isMatch := m["matchLabels"]; !isMatch {
		if _, isExpr := m["matchExpressions"]; !isExpr {
			return nil // a Service's map selector
		}
	}
	var sel metav1.LabelSelector
	if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &sel) != nil {
		return nil
	}
	return []*metav1.LabelSelector{&sel}
}

// TestGoldenRecordFormat guards the golden renderer itself: the fixture
// paths are shortened and stderr is kept apart from stdout.
func TestGoldenRecordFormat(t *testing.T) {
	got := goldenRecord([]string{"get", demoDB, "--decryption-config", demoEnc}, "out\n", "err\n", 4)
	want := "$ etcdsafe get demo.db --decryption-config encryption-config.yaml\n# exit 4\nout\n# stderr\nerr\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !bytes.Contains([]byte(goldenRecord(nil, "", "", 0)), []byte("# exit 0")) {
		t.Error("exit code missing")
	}
}
