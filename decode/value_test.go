package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/utils/ptr"
)

func encodeProtobuf(t testing.TB, obj runtime.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := protobuf.NewSerializer(scheme, scheme).Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "payments", UID: "2ab38d", Labels: map[string]string{"app": "api"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example.com/payments/api:1.4.0"}}},
			},
		},
	}
}

func TestDecodeProtobuf(t *testing.T) {
	t.Parallel()
	dep := testDeployment()
	stored := encodeProtobuf(t, dep)
	if SniffEncoding(stored) != EncodingProtobuf {
		t.Fatalf("sniff = %s", SniffEncoding(stored))
	}
	env, err := ParseEnvelope(stored)
	if err != nil || env.APIVersion != "apps/v1" || env.Kind != "Deployment" {
		t.Fatalf("envelope = %+v, %v", env, err)
	}
	v, err := NewDecoder(nil).Decode([]byte("/registry/deployments/payments/api"), stored)
	if err != nil {
		t.Fatal(err)
	}
	if v.Encoding != EncodingProtobuf || v.Encryption.String() != "identity" {
		t.Errorf("encoding %s, encryption %s", v.Encoding, v.Encryption)
	}
	wantJSON, _ := json.Marshal(dep)
	var want map[string]any
	if err := json.Unmarshal(wantJSON, &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(v.Object.Object)
	var got map[string]any
	if err := json.Unmarshal(gotJSON, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded object differs:\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestDecodeJSONAndCBOR(t *testing.T) {
	t.Parallel()
	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "api-cert", "namespace": "payments"},
		"spec":     map[string]any{"secretName": "api-tls", "dnsNames": []any{"api.example.com"}, "duration": int64(42)},
	}}
	js, _ := json.Marshal(cr.Object)
	var cb bytes.Buffer
	if err := cbor.NewSerializer(scheme, scheme).Encode(cr, &cb); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		in  []byte
		enc Encoding
	}{"json": {js, EncodingJSON}, "cbor": {cb.Bytes(), EncodingCBOR}} {
		t.Run(name, func(t *testing.T) {
			v, err := NewDecoder(nil).Decode([]byte("/registry/cert-manager.io/certificates/payments/api-cert"), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if v.Encoding != tc.enc {
				t.Errorf("encoding = %s, want %s", v.Encoding, tc.enc)
			}
			if !reflect.DeepEqual(v.Object.Object, cr.Object) {
				t.Errorf("got %#v\nwant %#v", v.Object.Object, cr.Object)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	dep := encodeProtobuf(t, testDeployment())
	unknownType := encodeProtobuf(t, testDeployment())
	// rename the kind inside the envelope: "Deployment" -> "Deploymenx"
	i := bytes.Index(unknownType, []byte("Deployment"))
	unknownType[i+9] = 'x'
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrEmptyValue},
		{"magic only", []byte("k8s\x00"), ErrBadValue},
		{"truncated protobuf", dep[:len(dep)/2], ErrBadValue},
		{"unknown type", unknownType, ErrUnknownType},
		{"binary garbage", []byte{0x01, 0x02, 0xff}, ErrUnknownEncoding},
		{"json list", []byte(`{"apiVersion":"v1","kind":"List","items":[]}`), ErrBadValue},
		{"json without kind", []byte(`{"metadata":{}}`), ErrBadValue},
		{"cbor garbage", []byte{0xd9, 0xd9, 0xf7, 0xff}, ErrBadValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewDecoder(nil).Decode([]byte("/registry/x"), tc.in)
			if !errors.Is(err, tc.want) || v != nil {
				t.Fatalf("got %v, %v; want %v", v, err, tc.want)
			}
		})
	}
}

func TestSniffEncoding(t *testing.T) {
	t.Parallel()
	tests := map[string]Encoding{
		"":                   EncodingEmpty,
		"k8s\x00\x0a":        EncodingProtobuf,
		"\xd9\xd9\xf7\xa1":   EncodingCBOR,
		` {"kind":"x"}`:      EncodingJSON,
		"12345":              EncodingText,
		"\x00\x01binary\xff": EncodingUnknown,
	}
	for in, want := range tests {
		if got := SniffEncoding([]byte(in)); got != want {
			t.Errorf("SniffEncoding(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add(encodeProtobuf(f, testDeployment()))
	f.Add([]byte("k8s\x00\x0a\x02\x0a\x00"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`))
	f.Add([]byte{0xd9, 0xd9, 0xf7, 0xa0})
	dec := NewDecoder(nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b)
		if err != nil && (env.Kind != "" || env.Raw != nil) {
			t.Fatal("envelope with error")
		}
		v, err := dec.Decode([]byte("/registry/x/y"), b)
		if (err == nil) == (v == nil) {
			t.Fatalf("value %v with error %v", v, err)
		}
		if err == nil && v.Object.GetKind() == "" {
			t.Fatal("object without kind")
		}
	})
}
