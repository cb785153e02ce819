package decode

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationinstall "k8s.io/kube-aggregator/pkg/apis/apiregistration/install"
)

const resRealDir = "../testdata/real-k8s1.37-etcd3.7"

// resRealPath is a file of the real kube-apiserver fixture, in the repo: a
// missing one fails the test (it never skips).
func resRealPath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(resRealDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("real snapshot fixture: %v", err)
	}
	return p
}

// resNewest reads the real snapshot read-only and returns the newest record
// of every key (tombstones included: their value is empty).
func resNewest(t *testing.T) map[string]*mvccpb.KeyValue {
	t.Helper()
	db, err := bolt.Open(resRealPath(t, "snapshot.db"), 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open snapshot: %v", err)
	}
	defer db.Close()
	out := map[string]*mvccpb.KeyValue{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New("no key bucket")
		}
		// The bucket is ordered by revision, so later records replace earlier ones.
		return b.ForEach(func(k, v []byte) error {
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(v, kv); err != nil {
				return err
			}
			if len(k) == 18 && k[17] == 't' {
				kv.Value = nil
			}
			out[string(kv.Key)] = kv
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return out
}

func resTestScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	apiextensionsinstall.Install(s)
	apiregistrationinstall.Install(s)
	return s
}

func TestBuiltinResourcesRegistered(t *testing.T) {
	t.Parallel()
	s := resTestScheme(t)
	all := BuiltinResources().All()
	if len(all) != len(resBuiltin)+len(resInternal)+1 {
		t.Fatalf("table has %d entries, want %d: an entry failed to parse", len(all), len(resBuiltin)+len(resInternal)+1)
	}
	seen := map[string]bool{}
	for _, r := range all {
		t.Run(r.KeyPath+"/"+r.Kind, func(t *testing.T) {
			if r.Kind == "" {
				if r.KeyPath != CompactRevKey || !r.Internal {
					t.Fatalf("only compact_rev_key may lack a kind, got %+v", r)
				}
				return
			}
			if !s.Recognizes(r.GroupVersionKind()) {
				t.Errorf("%s is not a registered type", r.GroupVersionKind())
			}
			if r.Plural == "" || r.Singular == "" || !r.Internal && r.Singular != strings.ToLower(r.Kind) || r.KeyPath == "" || r.Version == "" {
				t.Errorf("incomplete entry %+v", r)
			}
			if r.Custom {
				t.Errorf("built-in entry marked custom")
			}
			gr := r.GroupResource()
			if seen[gr] {
				t.Errorf("duplicate resource %s", gr)
			}
			seen[gr] = true
		})
	}
}

func TestBuiltinResourcesFacts(t *testing.T) {
	t.Parallel()
	// Facts from k8s.io/kubernetes pkg/kubeapiserver SpecialDefaultResourcePrefixes
	// and the real snapshot, plus kubectl api-resources short names and scopes.
	tests := []struct {
		name, typ, group, version, keyPath string
		namespaced                         bool
	}{
		{"services", "svc", "", "v1", "services/specs", true},
		{"endpoints", "ep", "", "v1", "services/endpoints", true},
		{"nodes", "no", "", "v1", "minions", false},
		{"replicationcontrollers", "rc", "", "v1", "controllers", true},
		{"ingresses", "ing", "networking.k8s.io", "v1", "ingress", true},
		{"crds", "crd", "apiextensions.k8s.io", "v1", "apiextensions.k8s.io/customresourcedefinitions", false},
		{"apiservices", "apiservices", "apiregistration.k8s.io", "v1", "apiregistration.k8s.io/apiservices", false},
		{"core events win", "ev", "", "v1", "events", true},
		{"events.k8s.io share the key path", "events.events.k8s.io", "events.k8s.io", "v1", "events", true},
		{"hpa served at v2", "hpa", "autoscaling", "v2", "horizontalpodautoscalers", true},
		{"ipaddresses", "ip", "networking.k8s.io", "v1", "ipaddresses", false},
		{"priority levels", "prioritylevelconfigurations", "flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", false},
		{"leasecandidates beta only", "leasecandidates", "coordination.k8s.io", "v1beta1", "leasecandidates", true},
		{"pdb", "pdb", "policy", "v1", "poddisruptionbudgets", true},
		{"csistoragecapacities namespaced", "csistoragecapacities", "storage.k8s.io", "v1", "csistoragecapacities", true},
		{"resourceslices cluster", "resourceslices", "resource.k8s.io", "v1", "resourceslices", false},
	}
	tab := BuiltinResources()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tab.Resolve(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if r.Group != tc.group || r.Version != tc.version || r.KeyPath != tc.keyPath || r.Namespaced != tc.namespaced {
				t.Errorf("got %s %s %s namespaced=%v, want %s %s %s namespaced=%v",
					r.Group, r.Version, r.KeyPath, r.Namespaced, tc.group, tc.version, tc.keyPath, tc.namespaced)
			}
		})
	}
	for _, r := range tab.All() {
		if r.Group == "policy" && r.Plural == "podsecuritypolicies" {
			t.Errorf("podsecuritypolicies were removed in 1.25 but are in the table")
		}
	}
}

func resCRD(apiVersion string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "x"}, "spec": spec,
	}}
}

func resCertManagerCRD() *unstructured.Unstructured {
	return resCRD("apiextensions.k8s.io/v1beta1", map[string]any{
		"group": "cert-manager.io", "scope": "Namespaced",
		"names": map[string]any{"kind": "Certificate", "plural": "certificates", "singular": "certificate",
			"shortNames": []any{"cert", "certs"}},
		"versions": []any{
			map[string]any{"name": "v1alpha2", "served": true, "storage": false},
			map[string]any{"name": "v1", "served": true, "storage": true},
			map[string]any{"name": "v1beta1", "served": true, "storage": false},
			map[string]any{"name": "v2", "served": false, "storage": false},
		},
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tab := BuiltinResources()
	if err := tab.AddCRD(resCertManagerCRD()); err != nil {
		t.Fatal(err)
	}
	// A CRD whose plural collides with a built-in resource in another group.
	if err := tab.AddCRD(resCRD("apiextensions.k8s.io/v1", map[string]any{
		"group": "example.com", "scope": "Cluster",
		"names":    map[string]any{"kind": "Lease", "plural": "leases"},
		"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true}},
	})); err != nil {
		t.Fatal(err)
	}
	// Two CRDs sharing a plural: only a qualified name tells them apart.
	for _, g := range []string{"a.example.com", "b.example.com"} {
		if err := tab.AddCRD(resCRD("apiextensions.k8s.io/v1", map[string]any{
			"group": g, "names": map[string]any{"kind": "Widget", "plural": "widgets"},
			"versions": []any{map[string]any{"name": "v1", "served": true}},
		})); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		typ          string
		group, kind  string
		wantErr      error
		wantInErrMsg string
	}{
		{typ: "deploy", group: "apps", kind: "Deployment"},
		{typ: "deployment", group: "apps", kind: "Deployment"},
		{typ: "deployments", group: "apps", kind: "Deployment"},
		{typ: "Deployment", group: "apps", kind: "Deployment"},
		{typ: "deployments.apps", group: "apps", kind: "Deployment"},
		{typ: "deployments.v1.apps", group: "apps", kind: "Deployment"},
		{typ: "pods", group: "", kind: "Pod"},
		{typ: "po", group: "", kind: "Pod"},
		{typ: "pods.v1", group: "", kind: "Pod"},
		{typ: "cert", group: "cert-manager.io", kind: "Certificate"},
		{typ: "certificates.cert-manager.io", group: "cert-manager.io", kind: "Certificate"},
		{typ: "certificates.v1beta1.cert-manager.io", group: "cert-manager.io", kind: "Certificate"},
		{typ: "leases", group: "coordination.k8s.io", kind: "Lease"},
		{typ: "leases.example.com", group: "example.com", kind: "Lease"},
		{typ: "widgets.a.example.com", group: "a.example.com", kind: "Widget"},
		{typ: "crd", group: "apiextensions.k8s.io", kind: "CustomResourceDefinition"},
		{typ: "widgets", wantErr: ErrAmbiguousResource, wantInErrMsg: "widgets.a.example.com, widgets.b.example.com"},
		{typ: "deployments.v1beta1.apps", wantErr: ErrUnknownResource},
		{typ: "certificates.v2.cert-manager.io", wantErr: ErrUnknownResource},
		{typ: "deployments.batch", wantErr: ErrUnknownResource},
		{typ: "podsecuritypolicies", wantErr: ErrUnknownResource},
		{typ: "masterleases", wantErr: ErrUnknownResource},
		{typ: "ranges", wantErr: ErrUnknownResource},
		{typ: "compact_rev_key", wantErr: ErrUnknownResource},
		{typ: "", wantErr: ErrUnknownResource},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			r, err := tab.Resolve(tc.typ)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantInErrMsg) {
					t.Errorf("error %q does not mention %q", err, tc.wantInErrMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Group != tc.group || r.Kind != tc.kind {
				t.Errorf("got %s/%s, want %s/%s", r.Group, r.Kind, tc.group, tc.kind)
			}
		})
	}
}

func TestAddCRD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		crd        *unstructured.Unstructured
		wantErr    bool
		version    string
		namespaced bool
		singular   string
	}{
		{name: "v1beta1 multi-version picks highest served", crd: resCertManagerCRD(), version: "v1", namespaced: true, singular: "certificate"},
		{name: "v1beta1 single version, default scope", crd: resCRD("apiextensions.k8s.io/v1beta1", map[string]any{
			"group": "x.io", "version": "v1alpha1", "names": map[string]any{"kind": "Thing", "plural": "things"},
		}), version: "v1alpha1", namespaced: true, singular: "thing"},
		{name: "v1 cluster scope, beta over alpha", crd: resCRD("apiextensions.k8s.io/v1", map[string]any{
			"group": "x.io", "scope": "Cluster", "names": map[string]any{"kind": "Thing", "plural": "things"},
			"versions": []any{
				map[string]any{"name": "v1alpha1", "served": true},
				map[string]any{"name": "v1beta2", "served": true},
				map[string]any{"name": "v1beta10", "served": true},
			},
		}), version: "v1beta10", singular: "thing"},
		{name: "no served version", crd: resCRD("apiextensions.k8s.io/v1", map[string]any{
			"group": "x.io", "names": map[string]any{"kind": "Thing", "plural": "things"},
			"versions": []any{map[string]any{"name": "v1", "served": false}},
		}), wantErr: true},
		{name: "missing plural", crd: resCRD("apiextensions.k8s.io/v1", map[string]any{
			"group": "x.io", "names": map[string]any{"kind": "Thing"}, "version": "v1",
		}), wantErr: true},
		{name: "bad scope", crd: resCRD("apiextensions.k8s.io/v1", map[string]any{
			"group": "x.io", "scope": "Galaxy", "names": map[string]any{"kind": "Thing", "plural": "things"}, "version": "v1",
		}), wantErr: true},
		{name: "not a CRD", crd: &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod"}}, wantErr: true},
		{name: "nil", crd: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := BuiltinResources()
			n := len(tab.All())
			err := tab.AddCRD(tc.crd)
			if tc.wantErr {
				if !errors.Is(err, ErrBadCRD) {
					t.Fatalf("err = %v, want ErrBadCRD", err)
				}
				if len(tab.All()) != n {
					t.Errorf("a rejected CRD changed the table")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			all := tab.All()
			r := all[len(all)-1]
			if !r.Custom || r.Version != tc.version || r.Namespaced != tc.namespaced || r.Singular != tc.singular || r.KeyPath != r.Group+"/"+r.Plural {
				t.Errorf("got %+v", r)
			}
			// Adding it again replaces, not duplicates.
			if err := tab.AddCRD(tc.crd); err != nil || len(tab.All()) != n+1 {
				t.Errorf("re-adding: err=%v, %d entries, want %d", err, len(tab.All()), n+1)
			}
		})
	}
}

func TestForKey(t *testing.T) {
	t.Parallel()
	tab := BuiltinResources()
	if err := tab.AddCRD(resCertManagerCRD()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix, key         string
		ok                  bool
		kind, group, plural string
		namespace, name     string
		internal            bool
	}{
		{"/registry", "/registry/services/specs/default/kubernetes", true, "Service", "", "services", "default", "kubernetes", false},
		{"/registry/", "/registry/services/endpoints/default/kubernetes", true, "Endpoints", "", "endpoints", "default", "kubernetes", false},
		{"/registry", "/registry/minions/node-1", true, "Node", "", "nodes", "", "node-1", false},
		{"/registry", "/registry/controllers/ns/rc", true, "ReplicationController", "", "replicationcontrollers", "ns", "rc", false},
		{"/registry", "/registry/ingress/ns/web", true, "Ingress", "networking.k8s.io", "ingresses", "ns", "web", false},
		{"/registry", "/registry/events/ns/ev.1", true, "Event", "", "events", "ns", "ev.1", false},
		{"/registry", "/registry/deployments/payments/api", true, "Deployment", "apps", "deployments", "payments", "api", false},
		{"/registry", "/registry/apiextensions.k8s.io/customresourcedefinitions/certificates.cert-manager.io", true, "CustomResourceDefinition", "apiextensions.k8s.io", "customresourcedefinitions", "", "certificates.cert-manager.io", false},
		{"/registry", "/registry/apiregistration.k8s.io/apiservices/v1.apps", true, "APIService", "apiregistration.k8s.io", "apiservices", "", "v1.apps", false},
		{"/registry", "/registry/cert-manager.io/certificates/payments/api-cert", true, "Certificate", "cert-manager.io", "certificates", "payments", "api-cert", false},
		{"/registry", "/registry/ranges/serviceips", true, "RangeAllocation", "", "rangeallocations", "", "serviceips", true},
		{"/registry", "/registry/ranges/servicenodeports", true, "RangeAllocation", "", "rangeallocations", "", "servicenodeports", true},
		{"/registry", "/registry/masterleases/10.0.0.1", true, "Endpoints", "", "masterleases", "", "10.0.0.1", true},
		{"/registry", "/registry/peerserverleases/apiserver-abc", true, "Endpoints", "", "peerserverleases", "", "apiserver-abc", true},
		{"/registry", "compact_rev_key", true, "", "", CompactRevKey, "", "", true},
		{"/openshift.io", "/openshift.io/pods/ns/p", true, "Pod", "", "pods", "ns", "p", false},
		{"/registry", "/registry/deckhouse.io/moduleconfigs/x", false, "", "", "", "", "", false},
		{"/registry", "/registry/deckhouse.io/moduleconfigs/ns/x", false, "", "", "", "", "", false},
		{"/registry", "/registry/pods/only-namespace", false, "", "", "", "", "", false},
		{"/registry", "/registry/pods/ns/name/extra", false, "", "", "", "", "", false},
		{"/registry", "/registry/pods//name", false, "", "", "", "", "", false},
		{"/registry", "/registry/namespaces/a/b", false, "", "", "", "", "", false},
		{"/registry", "/registry/pods", false, "", "", "", "", "", false},
		{"/registry", "/other/pods/ns/p", false, "", "", "", "", "", false},
		{"/registry", "/registrypods/ns/p", false, "", "", "", "", "", false},
		{"/registry", "", false, "", "", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			ki, ok := tab.ForKey(tc.prefix, tc.key)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, ki)
			}
			if !ok {
				return
			}
			r := ki.Resource
			if r.Kind != tc.kind || r.Group != tc.group || r.Plural != tc.plural || ki.Namespace != tc.namespace || ki.Name != tc.name || r.Internal != tc.internal {
				t.Errorf("got %s.%s (%s) ns=%q name=%q internal=%v", r.Plural, r.Group, r.Kind, ki.Namespace, ki.Name, r.Internal)
			}
		})
	}
}

// TestForKeyRealSnapshot maps every key a real kube-apiserver wrote and checks
// the result against the object stored under it.
func TestForKeyRealSnapshot(t *testing.T) {
	t.Parallel()
	kvs := resNewest(t)
	cfg, err := os.ReadFile(resRealPath(t, "encryption-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dcr, err := ParseEncryptionConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(dcr)
	tab := BuiltinResources()
	crdKey := "/registry/apiextensions.k8s.io/customresourcedefinitions/certificates.cert-manager.io"
	crd, err := dec.Decode([]byte(crdKey), kvs[crdKey].Value)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.AddCRD(crd.Object); err != nil {
		t.Fatal(err)
	}
	if len(kvs) < 100 {
		t.Fatalf("only %d keys in the snapshot", len(kvs))
	}
	for key, kv := range kvs {
		t.Run(key, func(t *testing.T) {
			ki, ok := tab.ForKey("/registry", key)
			if !ok {
				t.Fatalf("key not mapped")
			}
			if len(kv.Value) == 0 {
				return // deleted; nothing to compare with
			}
			v, err := dec.Decode(kv.Key, kv.Value)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			gvk := v.Object.GroupVersionKind()
			if gvk.Kind != ki.Resource.Kind || gvk.Group != ki.Resource.Group {
				t.Errorf("key maps to %s.%s, stored object is %s", ki.Resource.Kind, ki.Resource.Group, gvk)
			}
			// kube-apiserver writes its range bitmaps and endpoint leases
			// with empty object metadata; only the key names them.
			internalUnnamed := ki.Resource.Internal && v.Object.GetName() == "" && v.Object.GetNamespace() == ""
			if !internalUnnamed && (v.Object.GetName() != ki.Name || v.Object.GetNamespace() != ki.Namespace) {
				t.Errorf("key says %s/%s, object says %s/%s", ki.Namespace, ki.Name, v.Object.GetNamespace(), v.Object.GetName())
			}
			if p := tab.KeyPrefix("/registry", ki.Resource, ki.Namespace); !strings.HasPrefix(key, p) {
				t.Errorf("KeyPrefix %q does not prefix its own key", p)
			}
		})
	}
}

func TestKeyPrefix(t *testing.T) {
	t.Parallel()
	tab := BuiltinResources()
	res := func(typ string) Resource {
		r, err := tab.Resolve(typ)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name, prefix, typ, namespace, want string
	}{
		{"namespaced in one namespace", "/registry", "deploy", "payments", "/registry/deployments/payments/"},
		{"namespaced all", "/registry/", "svc", "", "/registry/services/specs/"},
		{"cluster scoped ignores namespace", "/registry", "nodes", "payments", "/registry/minions/"},
		{"group path", "/registry", "crd", "", "/registry/apiextensions.k8s.io/customresourcedefinitions/"},
		{"pods is not podtemplates", "/k8s", "pods", "", "/k8s/pods/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tab.KeyPrefix(tc.prefix, res(tc.typ), tc.namespace); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// forKeySplit is ForKey as first written (strings.Split and Join, one
// allocation per call): the reference the allocation-free one must match.
func forKeySplit(t *ResourceTable, prefix, key string) (KeyInfo, bool) {
	if key == CompactRevKey {
		return KeyInfo{Resource: resCompactRev}, true
	}
	prefix = strings.TrimSuffix(prefix, "/")
	rest, ok := strings.CutPrefix(key, prefix+"/")
	if !ok {
		return KeyInfo{}, false
	}
	segs := strings.Split(rest, "/")
	for n := min(len(segs)-1, 2); n >= 1; n-- {
		i, ok := t.byPath[strings.Join(segs[:n], "/")]
		if !ok {
			continue
		}
		r := t.res[i]
		tail := segs[n:]
		for _, s := range tail {
			if s == "" {
				return KeyInfo{}, false
			}
		}
		switch {
		case r.Namespaced && len(tail) == 2:
			return KeyInfo{Resource: r, Namespace: tail[0], Name: tail[1]}, true
		case !r.Namespaced && len(tail) == 1:
			return KeyInfo{Resource: r, Name: tail[0]}, true
		}
		return KeyInfo{}, false
	}
	return KeyInfo{}, false
}

func FuzzForKey(f *testing.F) {
	for _, k := range []string{"/registry/pods/ns/a", "/registry/services/specs/default/kubernetes", "/registry/services/endpoints/x/y",
		"/registry/nodes/n1", "/registry/pods/ns/", "/registry//ns/a", "/registry/pods/ns/a/b", "compact_rev_key", "/registry/minions/m",
		"/registry/apiextensions.k8s.io/customresourcedefinitions/a.b", "/registry/ranges/serviceips", "/registry/pods", "/registry/", ""} {
		f.Add(k)
	}
	table := BuiltinResources()
	f.Fuzz(func(t *testing.T, key string) {
		for _, prefix := range []string{"/registry", "/registry/", "/x"} {
			got, gok := table.ForKey(prefix, key)
			want, wok := forKeySplit(table, prefix, key)
			if gok != wok || got.Namespace != want.Namespace || got.Name != want.Name || got.Resource.KeyPath != want.Resource.KeyPath {
				t.Fatalf("ForKey(%q, %q) = %+v %v, want %+v %v", prefix, key, got, gok, want, wok)
			}
		}
	})
}
