package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"os"
	"reflect"
	"sort"
	"strings"
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
	t.Parallel()
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

// convFieldPaths lists every JSON path of a Go type with its leaf kind. A
// type that contains itself (JSONSchemaProps) is recorded once as a leaf.
func convFieldPaths(t reflect.Type, out map[string]string) {
	convFieldPathsOn(t, "", out, map[reflect.Type]bool{})
}

func convFieldPathsOn(t reflect.Type, prefix string, out map[string]string, onPath map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if onPath[t] {
		out[prefix] = "recursive " + t.Name()
		return
	}
	if t.Kind() == reflect.Struct {
		onPath[t] = true
		defer delete(onPath, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		switch t.PkgPath() {
		case "k8s.io/apimachinery/pkg/apis/meta/v1", "k8s.io/apimachinery/pkg/api/resource",
			"k8s.io/apimachinery/pkg/util/intstr", "k8s.io/apimachinery/pkg/runtime":
			out[prefix] = t.String()
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			switch {
			case tag == "-":
			case f.Anonymous && tag == "":
				convFieldPathsOn(f.Type, prefix, out, onPath)
			default:
				convFieldPathsOn(f.Type, prefix+"."+tag, out, onPath)
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			out[prefix] = "bytes"
			return
		}
		convFieldPathsOn(t.Elem(), prefix+"[]", out, onPath)
	case reflect.Map:
		convFieldPathsOn(t.Elem(), prefix+"{}", out, onPath)
	default:
		out[prefix] = t.Kind().String()
	}
}

// convDroppedFromAPI are stored versions k8s.io/api v0.37 no longer carries.
var convDroppedFromAPI = map[schema.GroupVersion]bool{
	{Group: "autoscaling", Version: "v2beta1"}: true,
	{Group: "autoscaling", Version: "v2beta2"}: true,
}

// TestServedVersionTable checks every rule against the Go types: source and
// target are real types, the target is the version the resource table
// serves, and an apiVersion-only rewrite is used only where the served type
// has every field of the stored one with the same type.
func TestServedVersionTable(t *testing.T) {
	t.Parallel()
	s := resTestScheme(t)
	tab := BuiltinResources()
	served := map[schema.GroupKind]string{}
	for _, r := range tab.All() {
		if !r.Internal {
			served[schema.GroupKind{Group: r.Group, Kind: r.Kind}] = r.Version
		}
	}
	if len(convRules) < 60 {
		t.Fatalf("only %d rules: the table failed to build", len(convRules))
	}
	for from, rule := range convRules {
		t.Run(from.String(), func(t *testing.T) {
			to := rule.to.WithKind(from.Kind)
			if got, ok := ServedVersion(from); !ok || got != to {
				t.Errorf("ServedVersion = %v %v", got, ok)
			}
			if v, ok := served[to.GroupKind()]; !ok || v != to.Version {
				t.Errorf("target %s is not what the resource table serves (%q)", to, v)
			}
			if !s.Recognizes(to) {
				t.Fatalf("target %s is not a registered type", to)
			}
			if !s.Recognizes(from) {
				if !convDroppedFromAPI[from.GroupVersion()] {
					t.Errorf("source %s is not a registered type", from)
				}
				return
			}
			if _, ok := served[from.GroupKind()]; ok && served[from.GroupKind()] == from.Version {
				t.Errorf("%s is served, yet has a conversion rule", from)
			}
			a, _ := s.New(from)
			b, _ := s.New(to)
			pa, pb := map[string]string{}, map[string]string{}
			convFieldPaths(reflect.TypeOf(a), pa)
			convFieldPaths(reflect.TypeOf(b), pb)
			var missing []string
			for p, k := range pa {
				if pb[p] != k {
					missing = append(missing, fmt.Sprintf("%s (%s -> %q)", p, k, pb[p]))
				}
			}
			sort.Strings(missing)
			if rule.kind == convSame && len(missing) > 0 {
				t.Errorf("rewritten as same schema, but the served type lacks: %s", strings.Join(missing, ", "))
			}
			if rule.kind == convNone && rule.reason == "" {
				t.Errorf("refusal without a reason")
			}
		})
	}
}

func TestServedVersionStillServed(t *testing.T) {
	t.Parallel()
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
		{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"},
		{Group: "", Version: "v1", Kind: "Event"},
		{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"},
		{Group: "cert-manager.io", Version: "v1alpha2", Kind: "Certificate"},
		{Group: "coordination.k8s.io", Version: "v1beta1", Kind: "LeaseCandidate"},
	} {
		t.Run(gvk.String(), func(t *testing.T) {
			if got, ok := ServedVersion(gvk); ok || got != gvk {
				t.Errorf("ServedVersion = %v %v, want unchanged", got, ok)
			}
			in := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x"}}}
			in.SetGroupVersionKind(gvk)
			out, converted, err := ConvertToServed(in)
			if err != nil || converted || out != in {
				t.Errorf("ConvertToServed = %v %v %v, want input unchanged", out, converted, err)
			}
		})
	}
}

func convObj(apiVersion, kind string, fields map[string]any) *unstructured.Unstructured {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "x", "namespace": "ns"}}
	for k, v := range fields {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func TestConvertToServed(t *testing.T) {
	t.Parallel()
	type m = map[string]any
	type l = []any
	tests := []struct {
		name    string
		in      *unstructured.Unstructured
		want    map[string]any // fields besides apiVersion/kind/metadata; nil = only those
		wantAPI string
		wantErr error
	}{
		{
			name: "EndpointSlice topology: zone and hostname move, others stay",
			in: convObj("discovery.k8s.io/v1beta1", "EndpointSlice", m{"addressType": "IPv4", "endpoints": l{
				m{"addresses": l{"10.0.0.1"}, "topology": m{"kubernetes.io/hostname": "node-a", "topology.kubernetes.io/zone": "z1", "rack": "r7"}},
				m{"addresses": l{"10.0.0.2"}, "nodeName": "node-b", "topology": m{"kubernetes.io/hostname": "node-b"}},
				m{"addresses": l{"10.0.0.3"}, "nodeName": "node-c", "topology": m{"kubernetes.io/hostname": "other"}},
				m{"addresses": l{"10.0.0.4"}},
			}}),
			want: m{"addressType": "IPv4", "endpoints": l{
				m{"addresses": l{"10.0.0.1"}, "nodeName": "node-a", "zone": "z1", "deprecatedTopology": m{"rack": "r7"}},
				m{"addresses": l{"10.0.0.2"}, "nodeName": "node-b"},
				m{"addresses": l{"10.0.0.3"}, "nodeName": "node-c", "deprecatedTopology": m{"kubernetes.io/hostname": "other"}},
				m{"addresses": l{"10.0.0.4"}},
			}},
			wantAPI: "discovery.k8s.io/v1",
		},
		{
			name:    "EndpointSlice topology of the wrong type is refused",
			in:      convObj("discovery.k8s.io/v1beta1", "EndpointSlice", m{"endpoints": l{m{"topology": "zone-a"}}}),
			wantErr: ErrNoConversion,
		},
		{
			name: "PDB v1beta1 empty selector matches nothing in v1",
			in:   convObj("policy/v1beta1", "PodDisruptionBudget", m{"spec": m{"minAvailable": int64(1), "selector": m{}}}),
			want: m{"spec": m{"minAvailable": int64(1), "selector": m{"matchExpressions": l{
				m{"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "Exists"}}}}},
			wantAPI: "policy/v1",
		},
		{
			name: "PDB v1beta1 match-all marker becomes empty selector",
			in: convObj("policy/v1beta1", "PodDisruptionBudget", m{"spec": m{"selector": m{"matchExpressions": l{
				m{"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "DoesNotExist"}}}}}),
			want:    m{"spec": m{"selector": m{}}},
			wantAPI: "policy/v1",
		},
		{
			name: "PDB v1beta1 ordinary selector loses only the marker",
			in: convObj("policy/v1beta1", "PodDisruptionBudget", m{"spec": m{"maxUnavailable": "20%", "selector": m{
				"matchLabels": m{"app": "api"},
				"matchExpressions": l{
					m{"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "Exists"},
					m{"key": "tier", "operator": "In", "values": l{"web"}},
				}}}}),
			want: m{"spec": m{"maxUnavailable": "20%", "selector": m{
				"matchLabels":      m{"app": "api"},
				"matchExpressions": l{m{"key": "tier", "operator": "In", "values": l{"web"}}}}}},
			wantAPI: "policy/v1",
		},
		{
			name: "flowcontrol v1beta2 assuredConcurrencyShares is nominalConcurrencyShares",
			in: convObj("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration", m{"spec": m{"type": "Limited", "limited": m{
				"assuredConcurrencyShares": int64(40), "limitResponse": m{"type": "Queue", "queuing": m{"queues": int64(128)}}}}}),
			want: m{"spec": m{"type": "Limited", "limited": m{"nominalConcurrencyShares": int64(40), "lendablePercent": int64(0),
				"limitResponse": m{"type": "Queue", "queuing": m{"queues": int64(128), "handSize": int64(8), "queueLengthLimit": int64(50)}}}}},
			wantAPI: "flowcontrol.apiserver.k8s.io/v1",
		},
		{
			name: "flowcontrol v1beta1 zero shares read as the default 30",
			in: convObj("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration", m{"spec": m{"type": "Limited", "limited": m{
				"limitResponse": m{"type": "Reject"}, "lendablePercent": int64(10)}}}),
			want: m{"spec": m{"type": "Limited", "limited": m{"nominalConcurrencyShares": int64(30), "lendablePercent": int64(10),
				"limitResponse": m{"type": "Reject"}}}},
			wantAPI: "flowcontrol.apiserver.k8s.io/v1",
		},
		{
			name: "flowcontrol v1beta3 zero shares without annotation default to 30",
			in: convObj("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", m{"spec": m{"type": "Limited", "limited": m{
				"nominalConcurrencyShares": int64(0), "limitResponse": m{"type": "Reject"}}}}),
			want: m{"spec": m{"type": "Limited", "limited": m{"nominalConcurrencyShares": int64(30), "lendablePercent": int64(0),
				"limitResponse": m{"type": "Reject"}}}},
			wantAPI: "flowcontrol.apiserver.k8s.io/v1",
		},
		{
			name: "flowcontrol v1beta3 preserve-zero annotation keeps 0 and is dropped",
			in: func() *unstructured.Unstructured {
				o := convObj("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", m{"spec": m{"type": "Limited", "limited": m{
					"limitResponse": m{"type": "Reject"}, "lendablePercent": int64(0)}}})
				o.SetAnnotations(map[string]string{"flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares": ""})
				return o
			}(),
			want: m{"spec": m{"type": "Limited", "limited": m{"nominalConcurrencyShares": int64(0), "lendablePercent": int64(0),
				"limitResponse": m{"type": "Reject"}}}},
			wantAPI: "flowcontrol.apiserver.k8s.io/v1",
		},
		{
			name: "Ingress v1beta1 backends",
			in: convObj("networking.k8s.io/v1beta1", "Ingress", m{"spec": m{
				"backend": m{"serviceName": "default", "servicePort": int64(80)},
				"rules": l{m{"host": "a.example", "http": m{"paths": l{
					m{"path": "/", "backend": m{"serviceName": "web", "servicePort": "http"}},
					m{"path": "/x", "pathType": "Prefix", "backend": m{"resource": m{"kind": "Bucket", "name": "b"}}},
				}}}}}}),
			want: m{"spec": m{
				"defaultBackend": m{"service": m{"name": "default", "port": m{"number": int64(80)}}},
				"rules": l{m{"host": "a.example", "http": m{"paths": l{
					m{"path": "/", "pathType": "ImplementationSpecific", "backend": m{"service": m{"name": "web", "port": m{"name": "http"}}}},
					m{"path": "/x", "pathType": "Prefix", "backend": m{"resource": m{"kind": "Bucket", "name": "b"}}},
				}}}}}},
			wantAPI: "networking.k8s.io/v1",
		},
		{
			name:    "extensions Ingress goes to networking.k8s.io",
			in:      convObj("extensions/v1beta1", "Ingress", m{"spec": m{"backend": m{"serviceName": "s", "servicePort": int64(8080)}}}),
			want:    m{"spec": m{"defaultBackend": m{"service": m{"name": "s", "port": m{"number": int64(8080)}}}}},
			wantAPI: "networking.k8s.io/v1",
		},
		{
			name:    "RuntimeClass v1alpha1 spec moves up",
			in:      convObj("node.k8s.io/v1alpha1", "RuntimeClass", m{"spec": m{"runtimeHandler": "runc", "overhead": m{"podFixed": m{"cpu": "100m"}}}}),
			want:    m{"handler": "runc", "overhead": m{"podFixed": m{"cpu": "100m"}}},
			wantAPI: "node.k8s.io/v1",
		},
		{
			name: "RoleBinding v1alpha1 subjects get apiGroup",
			in: convObj("rbac.authorization.k8s.io/v1alpha1", "RoleBinding", m{
				"roleRef": m{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
				"subjects": l{
					m{"kind": "User", "name": "alice", "apiVersion": "rbac.authorization.k8s.io/v1alpha1"},
					m{"kind": "ServiceAccount", "name": "sa", "namespace": "ns", "apiVersion": "v1"},
					m{"kind": "Robot", "name": "r2", "apiVersion": "robots.example.com/v1"},
				}}),
			want: m{
				"roleRef": m{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
				"subjects": l{
					m{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
					m{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"},
					m{"kind": "Robot", "name": "r2", "apiGroup": "robots.example.com"},
				}},
			wantAPI: "rbac.authorization.k8s.io/v1",
		},
		{
			name: "ValidatingWebhookConfiguration v1beta1 read-time defaults",
			in: convObj("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration", m{"webhooks": l{m{
				"name": "w.example.com", "failurePolicy": "Fail",
				"clientConfig": m{"service": m{"namespace": "ns", "name": "svc"}},
				"rules":        l{m{"operations": l{"CREATE"}, "apiGroups": l{""}, "apiVersions": l{"v1"}, "resources": l{"pods"}}},
			}}}),
			want: m{"webhooks": l{m{
				"name": "w.example.com", "failurePolicy": "Fail", "matchPolicy": "Exact",
				"namespaceSelector": m{}, "objectSelector": m{}, "sideEffects": "Unknown", "timeoutSeconds": int64(30),
				"admissionReviewVersions": l{"v1beta1"},
				"clientConfig":            m{"service": m{"namespace": "ns", "name": "svc", "port": int64(443)}},
				"rules":                   l{m{"operations": l{"CREATE"}, "apiGroups": l{""}, "apiVersions": l{"v1"}, "resources": l{"pods"}, "scope": "*"}},
			}}},
			wantAPI: "admissionregistration.k8s.io/v1",
		},
		{
			name:    "ValidatingAdmissionPolicy v1beta1 is a rewrite",
			in:      convObj("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicy", m{"spec": m{"validations": l{m{"expression": "true"}}}}),
			want:    m{"spec": m{"validations": l{m{"expression": "true"}}}},
			wantAPI: "admissionregistration.k8s.io/v1",
		},
		{
			name:    "CronJob batch/v1beta1",
			in:      convObj("batch/v1beta1", "CronJob", m{"spec": m{"schedule": "*/5 * * * *"}}),
			want:    m{"spec": m{"schedule": "*/5 * * * *"}},
			wantAPI: "batch/v1",
		},
		{
			name: "CSR v1beta1 with signerName",
			in: convObj("certificates.k8s.io/v1beta1", "CertificateSigningRequest", m{
				"spec":   m{"signerName": "kubernetes.io/kube-apiserver-client", "request": "UkVR"},
				"status": m{"conditions": l{m{"type": "Approved"}}}}),
			want: m{
				"spec":   m{"signerName": "kubernetes.io/kube-apiserver-client", "request": "UkVR", "usages": l{"digital signature", "key encipherment"}},
				"status": m{"conditions": l{m{"type": "Approved", "status": "True"}}}},
			wantAPI: "certificates.k8s.io/v1",
		},
		{
			name:    "CSR v1beta1 without signerName is refused",
			in:      convObj("certificates.k8s.io/v1beta1", "CertificateSigningRequest", m{"spec": m{"request": "UkVR"}}),
			wantErr: ErrNoConversion,
		},
		{
			name:    "extensions Deployment is refused",
			in:      convObj("extensions/v1beta1", "Deployment", m{"spec": m{"replicas": int64(1)}}),
			wantErr: ErrNoConversion,
		},
		{
			name:    "HPA v2beta1 is refused",
			in:      convObj("autoscaling/v2beta1", "HorizontalPodAutoscaler", m{"spec": m{}}),
			wantErr: ErrNoConversion,
		},
		{
			name:    "CRD v1beta1 that does not fit the type is refused",
			in:      convObj("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", m{"spec": "not an object"}),
			wantErr: ErrNoConversion,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := convJSON(t, tc.in.Object)
			out, converted, err := ConvertToServed(tc.in)
			if convJSON(t, tc.in.Object) != before {
				t.Errorf("input modified")
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || out != nil || converted {
					t.Fatalf("got %v %v %v, want error %v", out, converted, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.in.GetKind()) {
					t.Errorf("error %q does not name the kind", err)
				}
				return
			}
			if err != nil || !converted {
				t.Fatalf("converted=%v err=%v", converted, err)
			}
			if out.GetAPIVersion() != tc.wantAPI || out.GetKind() != tc.in.GetKind() {
				t.Errorf("got %s %s, want %s %s", out.GetAPIVersion(), out.GetKind(), tc.wantAPI, tc.in.GetKind())
			}
			want := map[string]any{"apiVersion": tc.wantAPI, "kind": tc.in.GetKind(), "metadata": map[string]any{"name": "x", "namespace": "ns"}}
			for k, v := range tc.want {
				want[k] = v
			}
			convDiff(t, out.Object, want)
		})
	}
}

// TestConvertAPIServiceV1beta1 restates real APIServices as v1beta1 (the
// schemas match) and requires kube-aggregator's conversion to give back what
// the API served.
func TestConvertAPIServiceV1beta1(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(resRealPath(t, "api/apiservices.apiregistration.k8s.io.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) < 10 {
		t.Fatalf("only %d APIServices", len(list.Items))
	}
	for _, it := range list.Items {
		want := &unstructured.Unstructured{Object: it}
		t.Run(want.GetName(), func(t *testing.T) {
			in := want.DeepCopy()
			in.SetAPIVersion("apiregistration.k8s.io/v1beta1")
			out, converted, err := ConvertToServed(in)
			if err != nil || !converted {
				t.Fatalf("converted=%v err=%v", converted, err)
			}
			convDiff(t, out.Object, want.Object)
		})
	}
}

func TestConvertNil(t *testing.T) {
	t.Parallel()
	if _, _, err := ConvertToServed(nil); err == nil {
		t.Error("nil object accepted")
	}
}
