package kubestore

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/storage/value"
	aestransformer "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	secretboxtransformer "k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
	"sigs.k8s.io/yaml"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		gk       schema.GroupKind
		ns, name string
		want     string
		wantErr  bool
	}{
		{gk: schema.GroupKind{Kind: "Service"}, ns: "a", name: "b", want: "/registry/services/specs/a/b"},
		{gk: schema.GroupKind{Kind: "Endpoints"}, ns: "a", name: "b", want: "/registry/services/endpoints/a/b"},
		{gk: schema.GroupKind{Kind: "Node"}, name: "n1", want: "/registry/minions/n1"},
		{gk: schema.GroupKind{Kind: "ReplicationController"}, ns: "a", name: "rc", want: "/registry/controllers/a/rc"},
		{gk: schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}, ns: "a", name: "i", want: "/registry/ingress/a/i"},
		{gk: schema.GroupKind{Group: "apps", Kind: "Deployment"}, ns: "a", name: "d", want: "/registry/deployments/a/d"},
		{gk: schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, name: "x.y", want: "/registry/apiextensions.k8s.io/customresourcedefinitions/x.y"},
		{gk: schema.GroupKind{Kind: "Namespace"}, ns: "a", name: "b", wantErr: true},
		{gk: schema.GroupKind{Kind: "Pod"}, name: "p", wantErr: true},
		{gk: schema.GroupKind{Kind: "Pod"}, ns: "a", wantErr: true},
		{gk: schema.GroupKind{Group: "example.com", Kind: "Widget"}, ns: "a", name: "w", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.gk.String()+"/"+tc.name, func(t *testing.T) {
			got, err := Key(DefaultPrefix, tc.gk, tc.ns, tc.name)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Key = %q, %v; want %q (err %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if got, _ := CRKey("/openshift.io", "example.com", "widgets", "", "w"); got != "/openshift.io/example.com/widgets/w" {
		t.Errorf("CRKey = %q", got)
	}
}

// Every provider's output decrypts with the apiserver's own transformer
// for the key named in the written EncryptionConfiguration, with random and
// with deterministic IVs.
func TestEncryptionRoundTrip(t *testing.T) {
	t.Parallel()
	keys := []EncryptionKey{
		{Resource: "secrets", Provider: "aescbc", Name: "key1", Secret: bytes.Repeat([]byte{1}, 32)},
		{Resource: "configmaps", Provider: "aesgcm", Name: "g1", Secret: bytes.Repeat([]byte{2}, 16)},
		{Resource: "leases.coordination.k8s.io", Provider: "secretbox", Name: "sb", Secret: bytes.Repeat([]byte{3}, 32)},
	}
	var cfg apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(EncryptionConfigYAML(keys), &cfg); err != nil {
		t.Fatalf("written config does not parse: %v", err)
	}
	if len(cfg.Resources) != 3 || cfg.Resources[0].Providers[1].Identity == nil {
		t.Fatalf("config: %+v", cfg)
	}
	for _, det := range []bool{false, true} {
		w, err := New(nil, Options{Encryption: keys, DeterministicCrypto: det, NoManagedFields: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, rc := range cfg.Resources {
			rc := rc
			p := rc.Providers[0]
			var tr value.Transformer
			var prefix, secret string
			switch {
			case p.AESCBC != nil:
				prefix, secret = "k8s:enc:aescbc:v1:"+p.AESCBC.Keys[0].Name+":", p.AESCBC.Keys[0].Secret
				tr = aestransformer.NewCBCTransformer(mustBlock(t, secret))
			case p.AESGCM != nil:
				prefix, secret = "k8s:enc:aesgcm:v1:"+p.AESGCM.Keys[0].Name+":", p.AESGCM.Keys[0].Secret
				tr, err = aestransformer.NewGCMTransformer(mustBlock(t, secret))
				if err != nil {
					t.Fatal(err)
				}
			case p.Secretbox != nil:
				prefix, secret = "k8s:enc:secretbox:v1:"+p.Secretbox.Keys[0].Name+":", p.Secretbox.Keys[0].Secret
				var kb [32]byte
				copy(kb[:], mustB64(t, secret))
				tr = secretboxtransformer.NewSecretboxTransformer(kb)
			}
			tr = value.NewPrefixTransformers(nil, value.PrefixTransformer{Prefix: []byte(prefix), Transformer: tr})
			objs := []runtimeObject{
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("sk_live_x")}},
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Data: map[string]string{"a": "sk_live_x"}},
				&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "ns"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("sk_live_x")}},
			}
			key, val, err := w.PrepareCreate(objs[i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(val, []byte(prefix)) {
				t.Fatalf("value of %s lacks prefix %q: %q", key, prefix, val[:20])
			}
			plain, _, err := tr.TransformFromStorage(context.Background(), val, value.DefaultContext(key))
			if err != nil {
				t.Fatalf("det=%v %s: apiserver transformer cannot decrypt: %v", det, key, err)
			}
			if !bytes.HasPrefix(plain, []byte("k8s\x00")) {
				t.Fatalf("decrypted value is not protobuf: %q", plain[:10])
			}
			if bytes.Contains(val, []byte("sk_live_x")) {
				t.Fatal("secret value stored in plain text")
			}
			if p.AESGCM != nil {
				// GCM binds the value to its key: moved, it must not decrypt.
				if _, _, err := tr.TransformFromStorage(context.Background(), val, value.DefaultContext(key+"x")); err == nil {
					t.Fatal("aesgcm value decrypted under another key")
				}
			}
		}
	}
}

// Deterministic mode writes identical bytes for identical calls.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	mk := func() []byte {
		w, err := New(nil, Options{Seed: 7, DeterministicCrypto: true,
			Encryption: []EncryptionKey{{Resource: "secrets", Provider: "aescbc", Name: "k", Secret: bytes.Repeat([]byte{9}, 32)}}})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, o := range []runtimeObject{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}},
		} {
			_, v, err := w.PrepareCreate(o)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v...)
		}
		return out
	}
	a, b := mk(), mk()
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
}

func TestWriterAgainstEtcd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := New(s.Client, Options{Seed: 1,
		StorageVersions: map[schema.GroupKind]string{{Group: "discovery.k8s.io", Kind: "EndpointSlice"}: "v1beta1"}})
	if err != nil {
		t.Fatal(err)
	}
	codecs := serializer.NewCodecFactory(w.Scheme())
	get := func(key string) (*clientv3.GetResponse, runtimeObject) {
		t.Helper()
		resp, err := s.Client.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v %v", key, resp, err)
		}
		obj, _, err := codecs.UniversalDeserializer().Decode(resp.Kvs[0].Value, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", key, err)
		}
		return resp, obj
	}

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "pay", ResourceVersion: "99"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(3))}}
	rev1, err := w.Create(ctx, dep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create(ctx, dep); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v", err)
	}
	resp, obj := get("/registry/deployments/pay/api")
	d1 := obj.(*appsv1.Deployment)
	if d1.ResourceVersion != "" || d1.Generation != 1 || d1.UID == "" || d1.CreationTimestamp.IsZero() ||
		len(d1.ManagedFields) != 1 || d1.ManagedFields[0].Manager != "kubectl-client-side-apply" ||
		d1.Annotations[LastAppliedAnnotation] == "" || resp.Kvs[0].ModRevision != rev1 {
		t.Fatalf("created deployment metadata: %+v", d1.ObjectMeta)
	}

	// Spec change bumps generation; metadata-only change does not.
	up := d1.DeepCopy()
	up.Spec.Replicas = ptr(int32(5))
	rev2, err := w.Update(ctx, up, "kubectl-scale")
	if err != nil {
		t.Fatal(err)
	}
	up2 := up.DeepCopy()
	up2.Labels = map[string]string{"x": "y"}
	if _, err := w.Update(ctx, up2, "kubectl-label"); err != nil {
		t.Fatal(err)
	}
	resp, obj = get("/registry/deployments/pay/api")
	d3 := obj.(*appsv1.Deployment)
	if d3.Generation != 2 || d3.UID != d1.UID || !d3.CreationTimestamp.Equal(&d1.CreationTimestamp) ||
		resp.Kvs[0].Version != 3 || resp.Kvs[0].CreateRevision != rev1 || rev2 <= rev1 {
		t.Fatalf("after updates: gen %d uid %s version %d", d3.Generation, d3.UID, resp.Kvs[0].Version)
	}
	managers := map[string]bool{}
	for _, m := range d3.ManagedFields {
		managers[m.Manager] = true
	}
	if !managers["kubectl-scale"] || !managers["kubectl-label"] || !managers["kubectl-client-side-apply"] {
		t.Errorf("managers %v", managers)
	}
	if err := assertNoManager(d3.ManagedFields, "kubectl-client-side-apply", "f:replicas"); err != "" {
		t.Error(err)
	}

	// Older storage version.
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "pay"}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr("n1")}}}
	if _, err := w.Create(ctx, es); err != nil {
		t.Fatal(err)
	}
	resp, _ = get("/registry/endpointslices/pay/e")
	if !bytes.Contains(resp.Kvs[0].Value[:40], []byte("discovery.k8s.io/v1beta1")) {
		t.Fatalf("endpointslice not stored as v1beta1: %q", resp.Kvs[0].Value[:40])
	}

	// Delete leaves a tombstone: the key is gone, its history remains.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "tmp", Namespace: "pay"}}
	crev, err := w.Create(ctx, cm)
	if err != nil {
		t.Fatal(err)
	}
	drev, err := w.Delete(ctx, cm)
	if err != nil || drev <= crev {
		t.Fatalf("delete: %d %v", drev, err)
	}
	if r, _ := s.Client.Get(ctx, "/registry/configmaps/pay/tmp"); len(r.Kvs) != 0 {
		t.Fatal("deleted key still present")
	}
	if r, err := s.Client.Get(ctx, "/registry/configmaps/pay/tmp", clientv3.WithRev(crev)); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("history of deleted key: %v %v", r, err)
	}
	if _, err := w.Delete(ctx, cm); err == nil {
		t.Fatal("deleting a missing key succeeded")
	}

	// CRD: three revisions, stored as v1beta1 JSON, Established at the end.
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}}}}
	if _, err := w.CreateCRD(ctx, crd); err != nil {
		t.Fatal(err)
	}
	r, err := s.Client.Get(ctx, "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com")
	if err != nil || len(r.Kvs) != 1 || r.Kvs[0].Version != 3 {
		t.Fatalf("crd: %v %v", r, err)
	}
	v := string(r.Kvs[0].Value)
	for _, want := range []string{`{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1beta1"`, `"listKind":"WidgetList"`,
		`"reason":"InitialNamesAccepted"`, `"storedVersions":["v1"]`, `"manager":"kube-apiserver"`} {
		if !strings.Contains(v, want) {
			t.Errorf("crd value lacks %s", want)
		}
	}

	// Custom resource JSON, sorted keys, trailing newline.
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": "pay"}, "spec": map[string]any{"size": int64(3)}}}
	if _, err := w.CreateCR(ctx, u, "widgets"); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Client.Get(ctx, "/registry/example.com/widgets/pay/w1")
	if len(r.Kvs) != 1 || !bytes.HasPrefix(r.Kvs[0].Value, []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"annotations"`)) ||
		!bytes.HasSuffix(r.Kvs[0].Value, []byte("}\n")) || !bytes.Contains(r.Kvs[0].Value, []byte(`"generation":1`)) {
		t.Fatalf("cr value %q", r.Kvs[0].Value)
	}
}

func assertNoManager(mf []metav1.ManagedFieldsEntry, manager, field string) string {
	for _, m := range mf {
		if m.Manager == manager && bytes.Contains(m.FieldsV1.GetRawBytes(), []byte(field)) {
			return manager + " still owns " + field + ": " + string(m.FieldsV1.GetRawBytes())
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBlock(t *testing.T, s string) cipherBlock {
	t.Helper()
	b, err := aes.NewCipher(mustB64(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
