package decode

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLabels: the labels of a protobuf value are read from its metadata;
// a value damaged inside its metadata fails, one damaged after it (in the
// spec) still gives its labels, which ls -l needs and nothing more.
func TestLabels(t *testing.T) {
	t.Parallel()
	dec := NewDecoder(nil)
	key := []byte("/registry/deployments/payments/api")
	good := encodeProtobuf(t, testDeployment())
	l, err := dec.Labels(key, good)
	if err != nil || fmt.Sprint(l) != "map[app:api]" {
		t.Fatalf("labels %v, %v", l, err)
	}
	d := testDeployment()
	d.Labels = nil
	if l, err := dec.Labels(key, encodeProtobuf(t, d)); err != nil || l != nil {
		t.Fatalf("no labels: %v, %v", l, err)
	}
	// JSON (a custom resource, or a type stored as JSON) is decoded whole
	if l, err := dec.Labels([]byte("/registry/example.com/widgets/n/w"), []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","labels":{"a":"b"}}}`)); err != nil || fmt.Sprint(l) != "map[a:b]" {
		t.Fatalf("JSON: %v, %v", l, err)
	}
	// the labels' bytes are in the metadata, near the start: cut there
	i := bytes.Index(good, []byte("app"))
	if _, err := dec.Labels(key, good[:i+1]); !errors.Is(err, ErrBadValue) {
		t.Fatalf("cut in the metadata: %v, want ErrBadValue", err)
	}
	// the image name is in the spec, after the metadata
	bad := bytes.Clone(good)
	j := bytes.Index(bad, []byte("registry.example.com"))
	bad[j-1] = 0xff // the string's length: past the end
	if _, err := dec.Decode(key, bad); err == nil {
		t.Fatal("Decode took a damaged spec")
	}
	if l, err := dec.Labels(key, bad); err != nil || fmt.Sprint(l) != "map[app:api]" {
		t.Fatalf("damaged spec: %v, %v", l, err)
	}
	if _, err := dec.Labels(key, []byte("k8s\x00garbage")); !errors.Is(err, ErrBadValue) {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzLabels: Labels never panics, and where a full decode succeeds it
// gives the same labels.
func FuzzLabels(f *testing.F) {
	f.Add(encodeProtobuf(f, testDeployment()))
	f.Add(encodeProtobuf(f, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"a": "1", "b": ""}}}))
	f.Add([]byte("k8s\x00\x0a\x02\x0a\x00"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"k":"v"}}}`))
	dec := NewDecoder(nil)
	key := []byte("/registry/x/y")
	f.Fuzz(func(t *testing.T, b []byte) {
		l, lerr := dec.Labels(key, b)
		v, err := dec.Decode(key, b)
		if err != nil {
			return
		}
		if lerr != nil {
			t.Fatalf("Decode succeeds, Labels fails: %v", lerr)
		}
		if want := v.Object.GetLabels(); fmt.Sprint(l) != fmt.Sprint(want) {
			t.Fatalf("labels %v, Decode finds %v", l, want)
		}
	})
}

// BenchmarkLabels against BenchmarkLabelsByDecode: what -l costs per
// object with the wire reading and with a whole decode (go test -bench
// Labels ./decode/).
func BenchmarkLabels(b *testing.B) {
	benchLabels(b, func(dec *Decoder, key, val []byte) (map[string]string, error) { return dec.Labels(key, val) })
}

func BenchmarkLabelsByDecode(b *testing.B) {
	benchLabels(b, func(dec *Decoder, key, val []byte) (map[string]string, error) {
		v, err := dec.Decode(key, val)
		if err != nil {
			return nil, err
		}
		return v.Object.GetLabels(), nil
	})
}

func benchLabels(b *testing.B, labels func(*Decoder, []byte, []byte) (map[string]string, error)) {
	dec := NewDecoder(nil)
	key := []byte("/registry/deployments/payments/api")
	val := encodeProtobuf(b, testDeployment())
	b.SetBytes(int64(len(val)))
	for b.Loop() {
		l, err := labels(dec, key, val)
		if err != nil || l["app"] != "api" {
			b.Fatal(l, err)
		}
	}
}
