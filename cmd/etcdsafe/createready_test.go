package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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

// demoEnc is the demo snapshot's EncryptionConfiguration.
const demoEnc = "../../testdata/generated/encryption-config.yaml"

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
	t.Parallel()
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
