package inspect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pmezard/go-difflib/difflib"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	cborserializer "k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"reflect"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// rtSeed fixes the fuzzer so that a failure names an input that can be
// reproduced; change it locally to explore other inputs.
const rtSeed = 20260115

// rtNamespace is the namespace of every namespaced round-trip object.
const rtNamespace = "roundtrip"

// rtSecretKey is the aescbc key Secrets are encrypted with.
var rtSecretKey = bytes.Repeat([]byte{0x42}, 32)

// rtCase is one object written to etcd and what decoding it must give back.
type rtCase struct {
	name     string // subtest name: plural.group
	key      string // etcd key
	gvk      schema.GroupVersionKind
	want     runtime.Object // typed (built-ins) or *unstructured.Unstructured (custom)
	encoding decode.Encoding
	provider string // "" = identity
	served   bool   // compare after decode.ConvertToServed (CRDs: stored as v1beta1)
	how      string // "fuzz", "hand-built", "custom"
}

// snapshotTo streams a snapshot through the etcd Maintenance API into path.
// The snapshot package is off limits here (inspect tests may import only
// decode and internal/*), so this is the same RPC, without the trailer
// checks that package adds.
func snapshotTo(ctx context.Context, t *testing.T, c *clientv3.Client, path string) {
	t.Helper()
	rc, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot rpc: %v", err)
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		t.Fatalf("copy snapshot: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rtName is the object name of a resource's round-trip object; unique per
// resource because core and events.k8s.io Events share one key path.
func rtName(r decode.Resource) string {
	n := "rt-" + strings.ToLower(r.Kind)
	if r.Group != "" {
		n += "-" + strings.ReplaceAll(r.Group, ".", "-")
	}
	return n
}

// rtFuzz fills a new object of gvk with random but serializable values and
// then fixes what kube-apiserver never stores: TypeMeta (set by the
// envelope), a resourceVersion, a selfLink, and random names.
func rtFuzz(t *testing.T, sch *runtime.Scheme, f interface{ Fill(any) }, gvk schema.GroupVersionKind, ns, name string) runtime.Object {
	t.Helper()
	obj, err := sch.New(gvk)
	if err != nil {
		t.Fatalf("new %s: %v", gvk, err)
	}
	f.Fill(obj)
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	m.SetName(name)
	m.SetNamespace(ns)
	m.SetResourceVersion("")
	m.SetSelfLink("")
	return obj
}

// rtCRD is a hand-built CRD: fuzzing JSONSchemaProps yields schemas no API
// server accepts, and the v1 -> v1beta1 -> v1 conversion is only lossless
// for valid CRDs, so a realistic one is written instead.
func rtCRD() *apiextensionsv1.CustomResourceDefinition {
	minimum := 1.0
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.rt.example.com", Labels: map[string]string{"app": "rt"}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "rt.example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList", ShortNames: []string{"wg"},
			},
			Scope:      apiextensionsv1.NamespaceScoped,
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size":  {Type: "integer", Minimum: &minimum},
							"color": {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"blue"`)}}},
						}},
					},
				}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Size", Type: "integer", JSONPath: ".spec.size"},
				},
			}, {
				Name: "v1beta1", Served: true, Storage: false, Deprecated: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr(true),
				}},
			}},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}},
	}
}

func ptr[T any](v T) *T { return &v }

// TestRoundTripEveryStorageType writes one populated object of every
// built-in resource etcdsafe knows (and a few custom resources: JSON and
// CBOR) into a real etcd the way kube-apiserver does, snapshots it, and
// requires that inspect + decode give back exactly what was written.
func TestRoundTripEveryStorageType(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w, err := kubestore.New(srv.Client, kubestore.Options{
		Seed:       rtSeed,
		Encryption: []kubestore.EncryptionKey{{Resource: "secrets", Provider: "aescbc", Name: "key1", Secret: rtSecretKey}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sch := decode.Scheme()
	fz := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(rtSeed), serializer.NewCodecFactory(sch)).
		NilChance(0.2).NumElements(1, 2).MaxDepth(12)

	table := decode.BuiltinResources()
	var cases []rtCase
	var skipped []string
	for _, r := range table.All() {
		gvk := r.GroupVersionKind()
		if r.Internal {
			continue
		}
		if !sch.Recognizes(gvk) {
			skipped = append(skipped, gvk.String())
			continue
		}
		ns := ""
		if r.Namespaced {
			ns = rtNamespace
		}
		name := rtName(r)
		c := rtCase{name: r.GroupResource(), gvk: gvk, encoding: decode.EncodingProtobuf, how: "fuzz"}
		var obj runtime.Object
		switch gvk.GroupKind() {
		case schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:
			obj, c.how, c.served = rtCRD(), "hand-built", true
			c.encoding = decode.EncodingJSON
		case schema.GroupKind{Group: "apiregistration.k8s.io", Kind: "APIService"}:
			obj = rtFuzz(t, sch, fz, gvk, ns, "v1.rt-"+strings.ToLower(r.Kind)+".example.com")
			c.encoding = decode.EncodingJSON
		default:
			obj = rtFuzz(t, sch, fz, gvk, ns, name)
		}
		if gvk.GroupKind() == (schema.GroupKind{Kind: "Secret"}) {
			c.provider = "aescbc"
		}
		m, _ := meta.Accessor(obj)
		c.key = table.KeyPrefix(kubestore.DefaultPrefix, r, ns) + m.GetName()
		if wkey, err := w.KeyFor(obj); err == nil {
			// A kind kubestore knows: written exactly as kube-apiserver
			// writes it (metadata, managedFields, storage version,
			// encryption). Its key table is independent of decode's.
			if wkey != c.key {
				t.Errorf("%s: kubestore key %q, decode key %q", c.name, wkey, c.key)
			}
			if _, err := w.Create(ctx, obj); err != nil {
				t.Fatalf("%s: create: %v", c.name, err)
			}
			c.want = w.Stored(wkey)
		} else {
			// Not in kubestore's table: the same protobuf envelope, metadata
			// as fuzzed.
			if _, err := w.PutObject(ctx, c.key, obj); err != nil {
				t.Fatalf("%s: put: %v", c.name, err)
			}
			c.want = obj
		}
		cases = append(cases, c)
	}
	cases = append(cases, rtCustom(ctx, t, w)...)
	t.Logf("%d resources round-tripped; not in the decode scheme (skipped): %v", len(cases), skipped)

	snapPath := filepath.Join(t.TempDir(), "rt.db")
	snapshotTo(ctx, t, srv.Client, snapPath)
	srv.Stop()

	dec, err := decode.ParseEncryptionConfig(w.EncryptionConfigYAML())
	if err != nil {
		t.Fatal(err)
	}
	d := decode.NewDecoder(dec)
	s, err := inspect.Open(snapPath, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, problems, err := s.Index(ctx, inspect.Query{Prefixes: [][]byte{[]byte("/registry/")}})
	if err != nil || len(problems) > 0 {
		t.Fatalf("index: %v %v", err, problems)
	}
	byKey := map[string]inspect.Entry{}
	for _, e := range entries {
		byKey[e.Key] = e
	}
	if len(entries) != len(cases) {
		t.Errorf("index has %d keys, wrote %d", len(entries), len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := byKey[c.key]
			if !ok {
				t.Fatalf("key %s not in index", c.key)
			}
			rec, err := s.Get(e.Rev)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s (%s): %d bytes stored", c.key, c.how, e.ValueSize)
			if string(rec.Key) != c.key {
				t.Fatalf("record key %q, want %q", rec.Key, c.key)
			}
			v, err := d.Decode(rec.Key, rec.Value)
			if err != nil {
				t.Fatalf("decode (%s): %v", c.how, err)
			}
			if v.Encoding != c.encoding {
				t.Errorf("encoding %s, want %s", v.Encoding, c.encoding)
			}
			if got := v.Encryption.Provider; got != c.provider && !(c.provider == "" && !v.Encryption.Encrypted()) {
				t.Errorf("encryption provider %q, want %q", got, c.provider)
			}
			if want := e.Encryption(); (c.provider == "") != (want == "identity") {
				t.Errorf("index says encryption %q, want provider %q", want, c.provider)
			}
			got := v.Object
			if c.served {
				if got, _, err = decode.ConvertToServed(v.Object); err != nil {
					t.Fatalf("convert to served: %v", err)
				}
			}
			rtCompare(t, c, got)
		})
	}
}

// rtCompare requires got (decoded, unstructured) to equal c.want:
// semantically after conversion back to the typed object for built-ins,
// as JSON for custom resources.
func rtCompare(t *testing.T, c rtCase, got *unstructured.Unstructured) {
	t.Helper()
	if got.GroupVersionKind().GroupKind() != c.gvk.GroupKind() {
		t.Fatalf("decoded %s, want %s", got.GroupVersionKind(), c.gvk)
	}
	if got.GetResourceVersion() != "" {
		t.Errorf("decoded object has resourceVersion %q; kube-apiserver stores none", got.GetResourceVersion())
	}
	if wu, ok := c.want.(*unstructured.Unstructured); ok {
		a, b := rtJSON(t, wu.Object), rtJSON(t, got.Object)
		if a != b {
			t.Errorf("custom resource differs after round trip (%s):\n%s", c.how, rtDiff(a, b))
		}
		return
	}
	typed, err := decode.Scheme().New(got.GroupVersionKind())
	if err != nil {
		t.Fatal(err)
	}
	// Strict: a field the decoder invented, or misspelled, fails here.
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(got.Object, typed, true); err != nil {
		t.Fatalf("decoded object does not convert back to %T: %v", typed, err)
	}
	typed.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	want := c.want.DeepCopyObject()
	want.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	if !rtEqual.DeepEqual(want, typed) {
		d := rtDiff(rtJSON(t, want), rtJSON(t, typed))
		if d == "" { // same JSON: show the Go-level difference
			d = cmp.Diff(want, typed, cmpopts.EquateEmpty(), cmp.Exporter(func(reflect.Type) bool { return true }))
		}
		t.Errorf("%s object differs after round trip:\n%s", c.how, d)
		return
	}
	// The comparison must be able to fail: one changed label is a difference.
	m, err := meta.Accessor(typed)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLabels(map[string]string{"changed": "yes"})
	if rtEqual.DeepEqual(want, typed) {
		t.Errorf("comparison blind to a changed label")
	}
}

// rtEqual is apimachinery's semantic equality, plus: embedded raw JSON
// (managedFields sets, RawExtensions) compares as JSON values. The decoder
// hands out objects as JSON maps, so converting one back to a typed object
// re-marshals that JSON with sorted keys and HTML escaping; the bytes differ,
// the value does not (and kube-apiserver serves these fields as values too).
var rtEqual = func() conversion.Equalities {
	e := conversion.EqualitiesOrDie()
	for k, v := range apiequality.Semantic.Equalities {
		e.Equalities[k] = v
	}
	err := e.AddFuncs(
		func(a, b metav1.FieldsV1) bool { return rtJSONEqual(a.GetRawBytes(), b.GetRawBytes()) },
		func(a, b runtime.RawExtension) bool { return rtJSONEqual(a.Raw, b.Raw) },
	)
	if err != nil {
		panic(err) // a programming error in the functions above
	}
	return e
}()

// rtJSONEqual compares two JSON documents as values; empty equals null.
func rtJSONEqual(a, b []byte) bool {
	var va, vb any
	if len(bytes.TrimSpace(a)) == 0 {
		a = []byte("null")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("null")
	}
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

func rtJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rtDiff(want, got string) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(want), B: difflib.SplitLines(got), FromFile: "written", ToFile: "decoded", Context: 2,
	})
	return d
}

// rtCustom writes custom resources: two as JSON through kubestore (one
// namespaced, one cluster-scoped, with nested and numeric fields) and one
// as CBOR (kube-apiserver's alpha CBOR storage), which kubestore cannot
// encode itself, so it goes through PutRaw.
func rtCustom(ctx context.Context, t *testing.T, w *kubestore.Writer) []rtCase {
	t.Helper()
	var out []rtCase
	mk := func(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "spec": spec}}
		u.SetName(name)
		if ns != "" {
			u.SetNamespace(ns)
		}
		u.SetLabels(map[string]string{"team": "rt"})
		return u
	}
	jsonCRs := []struct {
		u      *unstructured.Unstructured
		plural string
	}{
		{mk("rt.example.com/v1", "Widget", rtNamespace, "w1", map[string]any{
			"size": int64(3), "ratio": 0.25, "color": "red", "tags": []any{"a", "b"},
			"nested": map[string]any{"deep": map[string]any{"on": true, "none": nil}},
		}), "widgets"},
		{mk("ops.example.org/v1alpha1", "ClusterPolicy", "", "deny-all", map[string]any{
			"rules": []any{map[string]any{"action": "deny", "ports": []any{int64(22), int64(3389)}}},
		}), "clusterpolicies"},
	}
	for _, cr := range jsonCRs {
		if _, err := w.CreateCR(ctx, cr.u, cr.plural); err != nil {
			t.Fatal(err)
		}
		key, err := kubestore.CRKey(w.Prefix(), cr.u.GroupVersionKind().Group, cr.plural, cr.u.GetNamespace(), cr.u.GetName())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rtCase{name: cr.plural + "." + cr.u.GroupVersionKind().Group + "/json", key: key,
			gvk: cr.u.GroupVersionKind(), want: w.Stored(key), encoding: decode.EncodingJSON, how: "custom"})
	}

	u := mk("rt.example.com/v1", "Gadget", rtNamespace, "g1", map[string]any{
		"size": int64(7), "label": "ünïcode", "flags": []any{true, false}, "limits": map[string]any{"cpu": "500m"},
	})
	u.SetUID("0b0e9bd2-3e2f-4b5e-9a51-8a2c3f1d0c11")
	u.SetCreationTimestamp(metav1.NewTime(time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)))
	u.SetGeneration(1)
	var buf bytes.Buffer
	if err := cborserializer.NewSerializer(decode.Scheme(), decode.Scheme()).Encode(u, &buf); err != nil {
		t.Fatalf("cbor encode: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte{0xd9, 0xd9, 0xf7}) {
		t.Fatalf("cbor serializer wrote no self-described tag: % x", buf.Bytes()[:min(3, buf.Len())])
	}
	key, err := kubestore.CRKey(w.Prefix(), "rt.example.com", "gadgets", rtNamespace, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutRaw(ctx, key, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	out = append(out, rtCase{name: "gadgets.rt.example.com/cbor", key: key, gvk: u.GroupVersionKind(), want: u,
		encoding: decode.EncodingCBOR, how: "custom"})
	return out
}

// fileDigest returns the sha256 and modification time of path.
func fileDigest(t *testing.T, path string) (string, time.Time) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), fi.ModTime()
}

// TestReadOnlyGuarantee runs every inspect query and a decode of every
// value over a copy of the demo fixture and requires the file's bytes,
// mode and modification time to be unchanged.
func TestReadOnlyGuarantee(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "testdata", "generated", "demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	encCfg, err := os.ReadFile(filepath.Join("..", "testdata", "generated", "encryption-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decode.ParseEncryptionConfig(encCfg)
	if err != nil {
		t.Fatal(err)
	}
	d := decode.NewDecoder(dec)
	before, mtime := fileDigest(t, path)
	fiBefore, _ := os.Stat(path)

	ctx := context.Background()
	decoded := 0
	for round := range 2 { // a second Open sees what the first left behind
		s, err := inspect.Open(path, inspect.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Status(ctx, true); err != nil {
			t.Errorf("status --check: %v", err)
		}
		for _, q := range []inspect.Query{{}, {Deleted: true}, {Revision: 20}, {Prefixes: [][]byte{[]byte("/registry/secrets/")}}} {
			entries, _, err := s.Index(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				rec, err := s.Get(e.Rev)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.History(ctx, rec.Key, 0); err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(e.Key, "/registry/") {
					if _, err := d.Decode(rec.Key, rec.Value); err == nil && round == 0 {
						decoded++
					}
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if decoded < 40 {
		t.Errorf("decoded only %d values: the queries did not exercise the file", decoded)
	}
	after, mtimeAfter := fileDigest(t, path)
	fiAfter, _ := os.Stat(path)
	if before != after {
		t.Errorf("snapshot changed: sha256 %s before, %s after", before, after)
	}
	if !mtime.Equal(mtimeAfter) {
		t.Errorf("snapshot modification time changed: %v -> %v", mtime, mtimeAfter)
	}
	if fiBefore.Mode() != fiAfter.Mode() || fiBefore.Size() != fiAfter.Size() {
		t.Errorf("mode/size changed: %v %d -> %v %d", fiBefore.Mode(), fiBefore.Size(), fiAfter.Mode(), fiAfter.Size())
	}
}

// TestIndexAtRevision: Index with Revision R returns each key as it was at
// R: the value of an object updated twice since, no key created after R,
// and a key deleted after R with its last value.
func TestIndexAtRevision(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w, err := kubestore.New(srv.Client, kubestore.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	cm := func(name, v string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string]string{"v": v}}
	}
	must := func(rev int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	revGone := must(w.Create(ctx, cm("gone", "x")))
	rev1 := must(w.Create(ctx, cm("app", "one")))
	rev2 := must(w.Update(ctx, cm("app", "two"), "kubectl-edit"))
	rev3 := must(w.Update(ctx, cm("app", "three"), "kubectl-edit"))
	revLate := must(w.Create(ctx, cm("late", "y")))
	revDel := must(w.Delete(ctx, cm("gone", "")))
	snapPath := filepath.Join(t.TempDir(), "rev.db")
	snapshotTo(ctx, t, srv.Client, snapPath)
	srv.Stop()

	s, err := inspect.Open(snapPath, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := decode.NewDecoder(nil)
	const (
		app  = "/registry/configmaps/ns/app"
		gone = "/registry/configmaps/ns/gone"
		late = "/registry/configmaps/ns/late"
	)
	type want struct {
		modRev int64
		data   string
	}
	tests := []struct {
		name string
		rev  int64
		want map[string]want // key -> value; absent keys must not be listed
	}{
		{"before anything of app", revGone, map[string]want{gone: {revGone, "x"}}},
		{"first version", rev1, map[string]want{gone: {revGone, "x"}, app: {rev1, "one"}}},
		{"second version", rev2, map[string]want{gone: {revGone, "x"}, app: {rev2, "two"}}},
		{"third version, before late", rev3, map[string]want{gone: {revGone, "x"}, app: {rev3, "three"}}},
		{"late created, gone not yet deleted", revLate, map[string]want{gone: {revGone, "x"}, app: {rev3, "three"}, late: {revLate, "y"}}},
		{"at the deletion", revDel, map[string]want{app: {rev3, "three"}, late: {revLate, "y"}}},
		{"newest (0)", 0, map[string]want{app: {rev3, "three"}, late: {revLate, "y"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries, problems, err := s.Index(ctx, inspect.Query{Prefixes: [][]byte{[]byte("/registry/configmaps/")}, Revision: tc.rev})
			if err != nil || len(problems) > 0 {
				t.Fatalf("index: %v %v", err, problems)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Key)
				w, ok := tc.want[e.Key]
				if !ok {
					continue
				}
				if e.ModRevision != w.modRev {
					t.Errorf("%s: mod revision %d, want %d", e.Key, e.ModRevision, w.modRev)
				}
				rec, err := s.Get(e.Rev)
				if err != nil {
					t.Fatal(err)
				}
				v, err := d.Decode(rec.Key, rec.Value)
				if err != nil {
					t.Fatal(err)
				}
				if data, _, _ := unstructured.NestedString(v.Object.Object, "data", "v"); data != w.data {
					t.Errorf("%s at revision %d: data.v = %q, want %q", e.Key, tc.rev, data, w.data)
				}
			}
			var keys []string
			for k := range tc.want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if fmt.Sprint(got) != fmt.Sprint(keys) {
				t.Errorf("keys at revision %d: %v, want %v", tc.rev, got, keys)
			}
		})
	}
	// Deleted as of a revision before the deletion: nothing is deleted yet.
	if del, _, err := s.Index(ctx, inspect.Query{Deleted: true, Revision: revLate}); err != nil || len(del) != 0 {
		t.Errorf("deleted at %d: %v %v, want none", revLate, del, err)
	}
	if del, _, err := s.Index(ctx, inspect.Query{Deleted: true}); err != nil || len(del) != 1 || del[0].Key != gone || del[0].DeletedRevision != revDel {
		t.Errorf("deleted now: %+v %v, want %s deleted at %d", del, err, gone, revDel)
	}
	hist, _, err := s.History(ctx, []byte(app), rev2)
	if err != nil || len(hist) != 2 || hist[0].ModRevision != rev1 || hist[1].ModRevision != rev2 {
		t.Errorf("history of app up to %d: %d records %v, want revisions %d, %d", rev2, len(hist), err, rev1, rev2)
	}
}
