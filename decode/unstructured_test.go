package decode

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// TestToUnstructuredMatchesJSON: for fuzzed objects of every registered
// kind, the converter toUnstructured uses gives exactly what the JSON
// encoding (what the API server serves) gives.
func TestToUnstructuredMatchesJSON(t *testing.T) {
	t.Parallel()
	fz := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(7), serializer.NewCodecFactory(scheme)).NilChance(0.2).MaxDepth(6)
	kinds := 0
	for gvk := range scheme.AllKnownTypes() {
		if gvk.Version == "__internal" || strings.HasSuffix(gvk.Kind, "List") || strings.HasSuffix(gvk.Kind, "Options") || gvk.Kind == "WatchEvent" {
			continue
		}
		for i := 0; i < 3; i++ {
			obj, err := scheme.New(gvk)
			if err != nil {
				t.Fatal(err)
			}
			fz.Fill(obj)
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			u, err := toUnstructured(obj)
			if err != nil {
				t.Fatalf("%s: %v", gvk, err)
			}
			js, err := json.Marshal(obj)
			if err != nil {
				continue // fuzzed values JSON cannot hold (NaN...): not a stored object
			}
			want, err := decodeJSON(js)
			if err != nil {
				t.Fatalf("%s: %v", gvk, err)
			}
			// compare JSON forms: the converter may keep []byte-derived
			// or typed values that print identically
			a, _ := json.Marshal(u.Object)
			b, _ := json.Marshal(want.Object)
			var am, bm any
			if err := json.Unmarshal(a, &am); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &bm); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(am, bm) {
				t.Errorf("%s: converter and JSON differ:\nconverter %.600s\njson      %.600s", gvk, a, b)
				break
			}
		}
		kinds++
	}
	t.Logf("%d kinds compared", kinds)
}
