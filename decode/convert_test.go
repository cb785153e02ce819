package decode

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// convJSON renders v as indented JSON with sorted keys, for diffs.
func convJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// convNormalize round-trips through JSON so int64 and float64 compare equal.
func convNormalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func convDiff(t *testing.T, got, want any) {
	t.Helper()
	g, w := convNormalize(t, got), convNormalize(t, want)
	if reflect.DeepEqual(g, w) {
		return
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(convJSON(t, w)), B: difflib.SplitLines(convJSON(t, g)),
		FromFile: "want", ToFile: "got", Context: 3,
	})
	t.Errorf("mismatch:\n%s", d)
}

// TestConvertCRDRealSnapshot: the CRD kube-apiserver 1.37 stored as
// apiextensions.k8s.io/v1beta1 JSON must convert to exactly what the API
// served for it, except resourceVersion (the caller sets it from the mod
// revision) and managedFields (kubectl hides them).
func TestConvertCRDRealSnapshot(t *testing.T) {
	const key = "/registry/apiextensions.k8s.io/customresourcedefinitions/certificates.cert-manager.io"
	kv, ok := resNewest(t)[key]
	if !ok || len(kv.Value) == 0 {
		t.Fatalf("snapshot lacks %s", key)
	}
	stored := &unstructured.Unstructured{}
	if err := stored.UnmarshalJSON(kv.Value); err != nil {
		t.Fatal(err)
	}
	if got := stored.GetAPIVersion(); got != "apiextensions.k8s.io/v1beta1" {
		t.Fatalf("stored at %s; the fixture no longer exercises the v1beta1 conversion", got)
	}
	served, err := os.ReadFile(resRealPath(t, "api/customresourcedefinitions.apiextensions.k8s.io.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal(served, &list); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	for _, it := range list.Items {
		if m, _ := it["metadata"].(map[string]any); m["name"] == "certificates.cert-manager.io" {
			want = it
		}
	}
	if want == nil {
		t.Fatal("served list lacks the CRD")
	}
	unstructured.RemoveNestedField(want, "metadata", "resourceVersion")

	before := convJSON(t, stored.Object)
	got, converted, err := ConvertToServed(stored)
	if err != nil || !converted {
		t.Fatalf("converted=%v err=%v", converted, err)
	}
	if convJSON(t, stored.Object) != before {
		t.Errorf("ConvertToServed modified its input")
	}
	unstructured.RemoveNestedField(got.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(got.Object, "metadata", "resourceVersion")
	convDiff(t, got.Object, want)
}
