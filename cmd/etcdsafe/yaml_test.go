package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sigs.k8s.io/yaml"
)

// TestMarshalYAMLMatchesSigsYAML: every object of the fixtures, raw and
// create-ready, prints the same with marshalYAML as with sigs.k8s.io/yaml.
func TestMarshalYAMLMatchesSigsYAML(t *testing.T) {
	t.Parallel()
	n := 0
	for _, src := range []struct{ db, enc string }{
		{filepath.Join(realDir, "snapshot.db"), filepath.Join(realDir, "encryption-config.yaml")},
		{demoDB, filepath.Join(filepath.Dir(demoDB), "encryption-config.yaml")},
	} {
		for _, mode := range [][]string{{"--raw"}, nil} {
			args := append([]string{"get", src.db, "--prefix", "/", "-o", "json", "--decryption-config", src.enc}, mode...)
			stdout, stderr, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var list struct{ Items []map[string]any }
			d := json.NewDecoder(bytes.NewReader([]byte(stdout)))
			d.UseNumber()
			if err := d.Decode(&list); err != nil {
				t.Fatal(err)
			}
			for _, it := range list.Items {
				// back to the unstructured form (int64/float64)
				b, _ := json.Marshal(it)
				u := unstructuredFromJSON(t, b)
				want, err := yaml.Marshal(u)
				if err != nil {
					t.Fatal(err)
				}
				got, err := marshalYAML(u)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("YAML differs for %v:\n--- sigs.k8s.io/yaml\n%s\n--- marshalYAML\n%s", it["metadata"], want, got)
				}
				n++
			}
		}
	}
	if n < 400 {
		t.Fatalf("only %d objects compared", n)
	}
	t.Logf("%d objects print identically", n)
}

func unstructuredFromJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*unstructured.Unstructured).Object
}
