package decode

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"sigs.k8s.io/yaml"
)

// Other test files in this package may define -update too; define it only if
// nobody did (package-level vars run before init, so theirs would exist).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "regenerate golden files under testdata")
	}
}

func cleanUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

const cleanDir = "testdata/clean"

// cleanLoad reads a YAML or JSON object the way the decoders produce one
// (integers as int64).
func cleanLoad(t testing.TB, data []byte) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("yaml to json: %v", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return u
}

func cleanInputs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cleanDir, "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d golden inputs in %s, want at least 20", len(files), cleanDir)
	}
	return files
}

// cleanRender is the golden form: the removed paths as comments, then YAML.
func cleanRender(t *testing.T, u *unstructured.Unstructured, removed []string) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# removed by CreateReady (default options):\n")
	for _, p := range removed {
		b.WriteString("# - " + p + "\n")
	}
	y, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	b.Write(y)
	return b.Bytes()
}

func TestCreateReadyGolden(t *testing.T) {
	t.Parallel()
	for _, in := range cleanInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			u := cleanLoad(t, data)
			got := cleanRender(t, u, CreateReady(u, CleanOptions{}))
			golden := filepath.Join(cleanDir, name+".golden.yaml")
			if cleanUpdate() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./decode -run TestCreateReadyGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
					A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)),
					FromFile: golden, ToFile: "got", Context: 3,
				})
				t.Errorf("CreateReady output differs from golden:\n%s", diff)
			}
		})
	}
}

// cleanScheme knows every built-in type plus CRDs and APIServices.
func cleanScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, apiregistrationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// cleanStrict converts obj into its typed Go struct, failing on any field the
// type does not know, as a create request with strict field validation would.
// Custom resources have no Go type: their metadata is checked instead.
func cleanStrict(s *runtime.Scheme, obj map[string]any) (runtime.Object, error) {
	u := &unstructured.Unstructured{Object: obj}
	typed, err := s.New(u.GroupVersionKind())
	if err != nil {
		md, _ := obj["metadata"].(map[string]any)
		var om metav1.ObjectMeta
		return &metav1.PartialObjectMetadata{ObjectMeta: om},
			runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(md, &om, true)
	}
	return typed, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, typed, true)
}

// TestCreateReadyStrict checks that every cleaned golden input is a valid
// create request body for its type: strict decoding succeeds, identity
// survives, and no server-owned field remains.
func TestCreateReadyStrict(t *testing.T) {
	t.Parallel()
	s := cleanScheme(t)
	for _, in := range cleanInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			u := cleanLoad(t, data)
			wantName, wantNS := u.GetName(), u.GetNamespace()
			CreateReady(u, CleanOptions{})

			typed, err := cleanStrict(s, u.Object)
			if err != nil {
				t.Fatalf("strict decode of cleaned %s: %v", u.GroupVersionKind(), err)
			}
			acc, ok := typed.(metav1.Object)
			if !ok {
				t.Fatalf("%T has no ObjectMeta", typed)
			}
			if _, isCR := typed.(*metav1.PartialObjectMetadata); !isCR {
				if acc.GetName() != wantName || acc.GetNamespace() != wantNS {
					t.Errorf("identity = %s/%s, want %s/%s", acc.GetNamespace(), acc.GetName(), wantNS, wantName)
				}
			}
			if u.GetName() != wantName || u.GetNamespace() != wantNS {
				t.Errorf("unstructured identity = %s/%s, want %s/%s", u.GetNamespace(), u.GetName(), wantNS, wantName)
			}
			if acc.GetUID() != "" || acc.GetResourceVersion() != "" || !acc.GetCreationTimestamp().Time.IsZero() ||
				acc.GetGeneration() != 0 || acc.GetManagedFields() != nil || acc.GetDeletionTimestamp() != nil ||
				acc.GetOwnerReferences() != nil {
				t.Errorf("server-owned metadata survived: %+v", acc)
			}
			md, _ := u.Object["metadata"].(map[string]any)
			for _, k := range append(cleanServerMetadata, "ownerReferences") {
				if _, ok := md[k]; ok {
					t.Errorf("metadata.%s survived", k)
				}
			}
			if _, ok := u.Object["status"]; ok {
				t.Errorf("status survived")
			}
			cleanCheckKind(t, u.Object)
		})
	}
}

// cleanCheckKind asserts the per-kind invariants on a cleaned object,
// independently of how CreateReady implements them.
func cleanCheckKind(t *testing.T, obj map[string]any) {
	t.Helper()
	group, kind := cleanGroupKind(obj)
	spec, _ := obj["spec"].(map[string]any)
	j, _ := json.Marshal(obj)
	switch group + "/" + kind {
	case "/Service":
		if ip, ok := spec["clusterIP"]; ok && ip != "None" {
			t.Errorf("clusterIP %v survived", ip)
		}
		if bytes.Contains(j, []byte(`"healthCheckNodePort"`)) {
			t.Errorf("allocated healthCheckNodePort survived")
		}
	case "/Pod":
		for _, k := range []string{"nodeName", "priority", "ephemeralContainers"} {
			if _, ok := spec[k]; ok {
				t.Errorf("spec.%s survived", k)
			}
		}
		if bytes.Contains(j, []byte(cleanTokenPrefix)) {
			t.Errorf("kube-api-access volume or mount survived: %s", j)
		}
	case "batch/Job":
		if bytes.Contains(j, []byte("controller-uid")) {
			t.Errorf("controller-uid survived: %s", j)
		}
	case "/PersistentVolume":
		ref, _ := spec["claimRef"].(map[string]any)
		if _, ok := ref["uid"]; ok {
			t.Errorf("claimRef.uid survived")
		}
		if ref["name"] == nil || ref["namespace"] == nil {
			t.Errorf("claimRef lost its name or namespace: %v", ref)
		}
	case "/PersistentVolumeClaim":
		if bytes.Contains(j, []byte("bind-completed")) || bytes.Contains(j, []byte("selected-node")) {
			t.Errorf("binding annotations survived: %s", j)
		}
		if spec["volumeName"] == nil {
			t.Errorf("volumeName was dropped")
		}
	case "/Namespace":
		if bytes.Contains(j, []byte(`"kubernetes"`)) {
			t.Errorf("kubernetes finalizer survived: %s", j)
		}
	case "/Secret":
		if bytes.Contains(j, []byte("service-account.uid")) || bytes.Contains(j, []byte(`"token"`)) {
			t.Errorf("stale token survived: %s", j)
		}
	}
}

// TestCreateReadyStrictCatchesUnknownFields makes sure the strict check above
// can fail.
func TestCreateReadyStrictCatchesUnknownFields(t *testing.T) {
	t.Parallel()
	s := cleanScheme(t)
	tests := []struct {
		name string
		obj  string
	}{
		{"unknown spec field", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIp":"1.2.3.4"}}`},
		{"unknown top field", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"stauts":{}}`},
		{"custom resource bad metadata", `{"apiVersion":"x.io/v1","kind":"Thing","metadata":{"name":"a","uuid":"x"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := cleanLoad(t, []byte(tc.obj))
			if _, err := cleanStrict(s, u.Object); err == nil {
				t.Fatal("strict decode accepted an unknown field")
			}
		})
	}
}

func TestCreateReadyRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        CleanOptions
		in          string
		wantRemoved []string
		want        string // the whole cleaned object, as JSON
	}{
		{
			name: "generic metadata and status",
			in: `{"apiVersion":"x.io/v1","kind":"Thing","metadata":{"name":"a","namespace":"n",
				"uid":"u","resourceVersion":"5","creationTimestamp":"2026-01-01T00:00:00Z","generation":2,
				"managedFields":[{}],"selfLink":"/x","deletionTimestamp":"2026-01-02T00:00:00Z",
				"deletionGracePeriodSeconds":30,"ownerReferences":[{"uid":"o"}],"finalizers":["x.io/f"],
				"labels":{"a":"b"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},
				"spec":{"k":1},"status":{"ok":true}}`,
			wantRemoved: []string{"metadata.uid", "metadata.resourceVersion", "metadata.creationTimestamp",
				"metadata.generation", "metadata.managedFields", "metadata.selfLink", "metadata.deletionTimestamp",
				"metadata.deletionGracePeriodSeconds", "metadata.ownerReferences", "status"},
			want: `{"apiVersion":"x.io/v1","kind":"Thing","metadata":{"name":"a","namespace":"n","finalizers":["x.io/f"],
				"labels":{"a":"b"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"k":1}}`,
		},
		{
			name:        "keep status and owner references",
			opts:        CleanOptions{KeepStatus: true, KeepOwnerReferences: true},
			in:          `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","uid":"u","ownerReferences":[{"uid":"o"}]},"status":{}}`,
			wantRemoved: []string{"metadata.uid"},
			want:        `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","ownerReferences":[{"uid":"o"}]},"status":{}}`,
		},
		{
			name:        "service cluster IPs dropped",
			in:          `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1","fd00::1"],"type":"ClusterIP"}}`,
			wantRemoved: []string{"spec.clusterIP", "spec.clusterIPs"},
			want:        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"ClusterIP"}}`,
		},
		{
			name:        "headless service keeps None",
			in:          `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
		},
		{
			name:        "headless by clusterIPs only",
			in:          `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIPs":["None"]}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIPs":["None"]}}`,
		},
		{
			name:        "keep cluster IP",
			opts:        CleanOptions{KeepClusterIP: true},
			in:          `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1"]}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1"]}}`,
		},
		{
			name: "allocated node ports dropped without annotation or managedFields",
			in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"LoadBalancer",
				"healthCheckNodePort":32000,"ports":[{"name":"a","port":80,"nodePort":30001},{"port":81,"nodePort":30002}]}}`,
			wantRemoved: []string{"spec.ports[0].nodePort", "spec.ports[1].nodePort", "spec.healthCheckNodePort"},
			want: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"LoadBalancer",
				"ports":[{"name":"a","port":80},{"port":81}]}}`,
		},
		{
			name: "node ports named in last-applied kept, by name and by value",
			in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"kubectl.kubernetes.io/last-applied-configuration":
				"{\"spec\":{\"healthCheckNodePort\":32000,\"ports\":[{\"name\":\"a\",\"nodePort\":30001},{\"nodePort\":30002},{\"name\":\"c\"}]}}"}},
				"spec":{"healthCheckNodePort":32000,"ports":[{"name":"a","port":80,"nodePort":30001},{"port":81,"nodePort":30002},
				{"port":82,"nodePort":30003},{"name":"c","port":83,"nodePort":30004}]}}`,
			wantRemoved: []string{"spec.ports[2].nodePort", "spec.ports[3].nodePort"},
			want: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","annotations":{"kubectl.kubernetes.io/last-applied-configuration":
				"{\"spec\":{\"healthCheckNodePort\":32000,\"ports\":[{\"name\":\"a\",\"nodePort\":30001},{\"nodePort\":30002},{\"name\":\"c\"}]}}"}},
				"spec":{"healthCheckNodePort":32000,"ports":[{"name":"a","port":80,"nodePort":30001},{"port":81,"nodePort":30002},
				{"port":82},{"name":"c","port":83}]}}`,
		},
		{
			name: "node ports owned in managedFields kept, protocol defaults to TCP",
			in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","managedFields":[{"manager":"m","fieldsV1":{"f:spec":{
				"f:healthCheckNodePort":{},"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{"f:nodePort":{}},
				"k:{\"port\":53,\"protocol\":\"UDP\"}":{"f:port":{}}}}}}]},
				"spec":{"healthCheckNodePort":32000,"ports":[{"port":80,"nodePort":30001},{"port":53,"protocol":"UDP","nodePort":30002}]}}`,
			wantRemoved: []string{"metadata.managedFields", "spec.ports[1].nodePort"},
			want: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},
				"spec":{"healthCheckNodePort":32000,"ports":[{"port":80,"nodePort":30001},{"port":53,"protocol":"UDP"}]}}`,
		},
		{
			name:        "keep node ports",
			opts:        CleanOptions{KeepNodePorts: true},
			in:          `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"healthCheckNodePort":32000,"ports":[{"port":80,"nodePort":30001}]}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"healthCheckNodePort":32000,"ports":[{"port":80,"nodePort":30001}]}}`,
		},
		{
			name: "pod scheduling, priority, ephemeral containers, token volume",
			in: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","priority":1000,
				"priorityClassName":"high","preemptionPolicy":"Never","ephemeralContainers":[{"name":"dbg"}],
				"containers":[{"name":"c","volumeMounts":[{"name":"kube-api-access-abcde","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"},{"name":"d","mountPath":"/d"}]}],
				"volumes":[{"name":"kube-api-access-abcde","projected":{"sources":[]}},{"name":"d","emptyDir":{}}]}}`,
			wantRemoved: []string{"spec.nodeName", "spec.priority", "spec.preemptionPolicy", "spec.ephemeralContainers",
				"spec.volumes[0]", "spec.containers[0].volumeMounts[0]"},
			want: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"priorityClassName":"high",
				"containers":[{"name":"c","volumeMounts":[{"name":"d","mountPath":"/d"}]}],"volumes":[{"name":"d","emptyDir":{}}]}}`,
		},
		{
			name: "pod legacy secret token volume and keep node name",
			opts: CleanOptions{KeepNodeName: true},
			in: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","serviceAccountName":"build",
				"initContainers":[{"name":"i","volumeMounts":[{"name":"build-token-x1y2z"}]}],
				"containers":[{"name":"c","volumeMounts":[{"name":"build-token-x1y2z"}]}],
				"volumes":[{"name":"build-token-x1y2z","secret":{"secretName":"build-token-x1y2z"}}]}}`,
			wantRemoved: []string{"spec.volumes[0]", "spec.initContainers[0].volumeMounts[0]", "spec.containers[0].volumeMounts[0]"},
			want: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","serviceAccountName":"build",
				"initContainers":[{"name":"i"}],"containers":[{"name":"c"}]}}`,
		},
		{
			name: "pod user volumes with similar names kept",
			in: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],
				"volumes":[{"name":"kube-api-access-mine","emptyDir":{}},{"name":"other-token-x","secret":{"secretName":"s"}}]}}`,
			wantRemoved: nil,
			want: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],
				"volumes":[{"name":"kube-api-access-mine","emptyDir":{}},{"name":"other-token-x","secret":{"secretName":"s"}}]}}`,
		},
		{
			name: "job generated selector and labels",
			in: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"x","controller-uid":"u","job-name":"j"}},
				"spec":{"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u"}},
				"template":{"metadata":{"labels":{"app":"x","batch.kubernetes.io/controller-uid":"u","controller-uid":"u",
				"batch.kubernetes.io/job-name":"j","job-name":"j"}}}}}`,
			wantRemoved: []string{"metadata.labels.controller-uid", "metadata.labels.job-name",
				`spec.selector.matchLabels["batch.kubernetes.io/controller-uid"]`,
				`spec.template.metadata.labels["batch.kubernetes.io/controller-uid"]`, "spec.template.metadata.labels.controller-uid",
				`spec.template.metadata.labels["batch.kubernetes.io/job-name"]`, "spec.template.metadata.labels.job-name"},
			want: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"x"}},
				"spec":{"template":{"metadata":{"labels":{"app":"x"}}}}}`,
		},
		{
			name: "job with manual selector untouched",
			in: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"manualSelector":true,
				"selector":{"matchLabels":{"controller-uid":"u"}},"template":{"metadata":{"labels":{"controller-uid":"u"}}}}}`,
			wantRemoved: nil,
			want: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"manualSelector":true,
				"selector":{"matchLabels":{"controller-uid":"u"}},"template":{"metadata":{"labels":{"controller-uid":"u"}}}}}`,
		},
		{
			name: "job selector with user expressions kept",
			in: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{
				"selector":{"matchLabels":{"controller-uid":"u"},"matchExpressions":[{"key":"a","operator":"Exists"}]}}}`,
			wantRemoved: []string{"spec.selector.matchLabels.controller-uid"},
			want: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{
				"selector":{"matchExpressions":[{"key":"a","operator":"Exists"}]}}}`,
		},
		{
			name: "pv claimRef keeps name and namespace",
			in: `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv","annotations":{"pv.kubernetes.io/bound-by-controller":"yes",
				"pv.kubernetes.io/provisioned-by":"csi.x"}},"spec":{"claimRef":{"kind":"PersistentVolumeClaim","namespace":"n","name":"c","uid":"u","resourceVersion":"3"}}}`,
			wantRemoved: []string{`metadata.annotations["pv.kubernetes.io/bound-by-controller"]`, "spec.claimRef.uid", "spec.claimRef.resourceVersion"},
			want: `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv","annotations":{"pv.kubernetes.io/provisioned-by":"csi.x"}},
				"spec":{"claimRef":{"kind":"PersistentVolumeClaim","namespace":"n","name":"c"}}}`,
		},
		{
			name: "pvc binding annotations, volumeName kept, selected node kept on request",
			opts: CleanOptions{KeepNodeName: true},
			in: `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","annotations":{"pv.kubernetes.io/bind-completed":"yes",
				"volume.kubernetes.io/selected-node":"n1"}},"spec":{"volumeName":"pv"}}`,
			wantRemoved: []string{`metadata.annotations["pv.kubernetes.io/bind-completed"]`},
			want: `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","annotations":{"volume.kubernetes.io/selected-node":"n1"}},
				"spec":{"volumeName":"pv"}}`,
		},
		{
			name:        "pvc annotations map removed when emptied",
			in:          `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","annotations":{"volume.kubernetes.io/selected-node":"n1"}}}`,
			wantRemoved: []string{`metadata.annotations["volume.kubernetes.io/selected-node"]`},
			want:        `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c"}}`,
		},
		{
			name:        "service account legacy token refs",
			in:          `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa"},"secrets":[{"name":"sa-token-abcde"}]}`,
			wantRemoved: []string{"secrets[0]"},
			want:        `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa"}}`,
		},
		{
			name:        "opaque secret untouched",
			in:          `{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"s","annotations":{"kubernetes.io/service-account.uid":"u"}},"data":{"token":"eA=="}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"s","annotations":{"kubernetes.io/service-account.uid":"u"}},"data":{"token":"eA=="}}`,
		},
		{
			name: "namespace keeps other finalizers",
			in: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n","labels":{"kubernetes.io/metadata.name":"n","team":"a"}},
				"spec":{"finalizers":["kubernetes","example.com/keep"]}}`,
			wantRemoved: []string{`metadata.labels["kubernetes.io/metadata.name"]`, "spec.finalizers[0]"},
			want: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n","labels":{"team":"a"}},
				"spec":{"finalizers":["example.com/keep"]}}`,
		},
		{
			name:        "deployment revision annotation",
			in:          `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","annotations":{"deployment.kubernetes.io/revision":"3","team":"a"}}}`,
			wantRemoved: []string{`metadata.annotations["deployment.kubernetes.io/revision"]`},
			want:        `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","annotations":{"team":"a"}}}`,
		},
		{
			name:        "daemonset template generation annotation",
			in:          `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d","annotations":{"deprecated.daemonset.template.generation":"1"}}}`,
			wantRemoved: []string{`metadata.annotations["deprecated.daemonset.template.generation"]`},
			want:        `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d"}}`,
		},
		{
			name:        "statefulset claim template status kept with KeepStatus",
			opts:        CleanOptions{KeepStatus: true},
			in:          `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},"spec":{"volumeClaimTemplates":[{"status":{"phase":"Pending"}}]}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},"spec":{"volumeClaimTemplates":[{"status":{"phase":"Pending"}}]}}`,
		},
		{
			name:        "kind rules need the right group",
			in:          `{"apiVersion":"example.com/v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.0.0.1"}}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"example.com/v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.0.0.1"}}`,
		},
		{
			name:        "endpointslice managed by controller kept",
			in:          `{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"e","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"addressType":"IPv4","endpoints":[]}`,
			wantRemoved: nil,
			want:        `{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"e","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"addressType":"IPv4","endpoints":[]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := cleanLoad(t, []byte(tc.in))
			got := CreateReady(u, tc.opts)
			if !reflect.DeepEqual(got, tc.wantRemoved) {
				t.Errorf("removed:\n got %q\nwant %q", got, tc.wantRemoved)
			}
			want := cleanLoad(t, []byte(tc.want))
			if !reflect.DeepEqual(u.Object, want.Object) {
				g, _ := json.Marshal(u.Object)
				w, _ := json.Marshal(want.Object)
				t.Errorf("object:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// TestCreateReadyOddShapes feeds fields of the wrong type: nothing may panic
// and the generic rules still apply where they can.
func TestCreateReadyOddShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		wantRemoved []string
	}{
		{"empty object", `{}`, nil},
		{"metadata is a string", `{"apiVersion":"v1","kind":"Pod","metadata":"x","status":1}`, []string{"status"}},
		{"spec is a string", `{"apiVersion":"v1","kind":"Service","metadata":{"uid":"u"},"spec":"x"}`, []string{"metadata.uid"}},
		{"ports is a map", `{"apiVersion":"v1","kind":"Service","spec":{"ports":{"a":1},"clusterIP":7}}`, []string{"spec.clusterIP"}},
		{"port entries are not maps", `{"apiVersion":"v1","kind":"Service","spec":{"ports":[1,"x",null,[]]}}`, nil},
		{"nodePort is a string", `{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"nodePort":"30000","name":7}]}}`, []string{"spec.ports[0].nodePort"}},
		{"last-applied not JSON", `{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{"}},"spec":{"ports":[{"nodePort":1}]}}`, []string{"spec.ports[0].nodePort"}},
		{"last-applied wrong shapes", `{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"ports\":[1,{\"nodePort\":1.5},{\"nodePort\":\"x\"}]}}"}},"spec":{"ports":[{"nodePort":1}]}}`, []string{"spec.ports[0].nodePort"}},
		{"annotations not a map", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":["a"]}}`, nil},
		{"managedFields odd", `{"apiVersion":"v1","kind":"Service","metadata":{"managedFields":[1,{"fieldsV1":{"f:spec":{"f:ports":{"bad":{"f:nodePort":{}},"k:{\"port\":\"x\"}":{"f:nodePort":{}}}}}}]},"spec":{"ports":[{"port":1,"nodePort":2}]}}`, []string{"metadata.managedFields", "spec.ports[0].nodePort"}},
		{"managedFields not a list", `{"apiVersion":"v1","kind":"Service","metadata":{"managedFields":"x"},"spec":{"ports":[{"port":1,"nodePort":2}]}}`, []string{"metadata.managedFields", "spec.ports[0].nodePort"}},
		{"pod volumes odd", `{"apiVersion":"v1","kind":"Pod","spec":{"serviceAccountName":3,"volumes":[1,{"name":"kube-api-access-x","projected":{}}],"containers":"x","initContainers":[1,{"volumeMounts":"x"},{"volumeMounts":[1]}]}}`, []string{"spec.volumes[1]"}},
		{"job odd", `{"apiVersion":"batch/v1","kind":"Job","spec":{"selector":"x","template":{"metadata":{"labels":"x"}}}}`, nil},
		{"job selector matchLabels odd", `{"apiVersion":"batch/v1","kind":"Job","spec":{"selector":{"matchLabels":[1]},"template":[]}}`, nil},
		{"service account odd", `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"a"},"secrets":[1,{"name":2},{"name":"a-token-x"}]}`, []string{"secrets[2]"}},
		{"namespace odd", `{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":1},"spec":{"finalizers":[1,"kubernetes"]}}`, []string{"spec.finalizers[1]"}},
		{"pv claimRef odd", `{"apiVersion":"v1","kind":"PersistentVolume","spec":{"claimRef":"x"}}`, nil},
		{"statefulset odd", `{"apiVersion":"apps/v1","kind":"StatefulSet","spec":{"volumeClaimTemplates":[1,{"status":{}}]}}`, []string{"spec.volumeClaimTemplates[1].status"}},
		{"secret data odd", `{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/service-account-token","data":"x"}`, nil},
		{"apiVersion and kind not strings", `{"apiVersion":1,"kind":["Pod"],"spec":{"nodeName":"x"}}`, nil},
		{"odd keys quoted", `{"metadata":{"uid":"u"},"status":{},"x.y":1}`, []string{"metadata.uid", "status"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Plain encoding/json: numbers are float64 and kind may be missing.
			var obj map[string]any
			if err := json.Unmarshal([]byte(tc.in), &obj); err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: obj}
			got := CreateReady(u, CleanOptions{})
			if !reflect.DeepEqual(got, tc.wantRemoved) {
				t.Errorf("removed:\n got %q\nwant %q", got, tc.wantRemoved)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if got := CreateReady(nil, CleanOptions{}); got != nil {
			t.Errorf("CreateReady(nil) = %q", got)
		}
		if got := CreateReady(&unstructured.Unstructured{}, CleanOptions{}); got != nil {
			t.Errorf("CreateReady(empty) = %q", got)
		}
	})
}

func TestCleanPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ parent, key, want string }{
		{"", "status", "status"},
		{"metadata", "uid", "metadata.uid"},
		{"metadata.labels", "job-name", "metadata.labels.job-name"},
		{"metadata.annotations", "a.b/c", `metadata.annotations["a.b/c"]`},
		{"", "x.y", `["x.y"]`},
		{"m", `q"uote`, `m["q\"uote"]`},
		{"m", "9lives", `m["9lives"]`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := cleanPath(tc.parent, tc.key); got != tc.want {
				t.Errorf("cleanPath(%q, %q) = %q, want %q", tc.parent, tc.key, got, tc.want)
			}
		})
	}
}

// TestCreateReadyIdempotent: cleaning a cleaned object removes nothing more.
// The one exception is documented in docs/CLEANING.md: node ports that only
// managedFields marked as requested are dropped on a second pass, because the
// first pass removed managedFields.
func TestCreateReadyIdempotent(t *testing.T) {
	t.Parallel()
	second := map[string][]string{
		"service-loadbalancer-ssa": {"spec.ports[1].nodePort"},
	}
	for _, in := range cleanInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			u := cleanLoad(t, data)
			if len(CreateReady(u, CleanOptions{})) == 0 {
				t.Fatal("first pass removed nothing: every golden input should exercise a rule")
			}
			if got := CreateReady(u, CleanOptions{}); !reflect.DeepEqual(got, second[name]) {
				t.Errorf("second pass removed %q, want %q", got, second[name])
			}
		})
	}
}

func FuzzCreateReady(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(cleanDir, "*.in.yaml"))
	for _, in := range files {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j, uint8(0))
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","spec":"x"}`), uint8(31))
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			return
		}
		opts := CleanOptions{
			KeepStatus:          flags&1 != 0,
			KeepOwnerReferences: flags&2 != 0,
			KeepClusterIP:       flags&4 != 0,
			KeepNodePorts:       flags&8 != 0,
			KeepNodeName:        flags&16 != 0,
		}
		u := &unstructured.Unstructured{Object: obj}
		removed := CreateReady(u, opts)
		for _, p := range removed {
			if p == "" {
				t.Fatalf("empty path in %q", removed)
			}
		}
		if md, ok := obj["metadata"].(map[string]any); ok {
			for _, k := range cleanServerMetadata {
				if _, ok := md[k]; ok {
					t.Fatalf("metadata.%s survived", k)
				}
			}
		}
		if _, ok := obj["status"]; ok && !opts.KeepStatus {
			t.Fatal("status survived")
		}
		// Without managedFields in play, a second pass removes nothing.
		if again := CreateReady(u, opts); len(again) != 0 {
			var orig map[string]any
			_ = json.Unmarshal(data, &orig)
			md, _ := orig["metadata"].(map[string]any)
			if _, had := md["managedFields"]; !had {
				t.Fatalf("second pass removed %q", again)
			}
		}
	})
}

func ExampleCreateReady() {
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata": map[string]any{
			"name": "web", "namespace": "shop",
			"uid": "1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6", "resourceVersion": "270",
		},
		"spec": map[string]any{
			"type":      "NodePort",
			"clusterIP": "10.96.140.12",
			"ports":     []any{map[string]any{"port": int64(80), "nodePort": int64(31080)}},
		},
		"status": map[string]any{"loadBalancer": map[string]any{}},
	}}
	for _, p := range CreateReady(svc, CleanOptions{}) {
		fmt.Println("removed", p)
	}
	out, _ := yaml.Marshal(svc.Object)
	fmt.Print(string(out))
	// Output:
	// removed metadata.uid
	// removed metadata.resourceVersion
	// removed status
	// removed spec.clusterIP
	// removed spec.ports[0].nodePort
	// apiVersion: v1
	// kind: Service
	// metadata:
	//   name: web
	//   namespace: shop
	// spec:
	//   ports:
	//   - port: 80
	//   type: NodePort
}

// TestCreateReadyKeepsAppliedFields checks that cleaning never removes or
// changes what the user wrote: at every leaf path of the kubectl
// last-applied-configuration annotation, the cleaned object holds exactly what
// the served object held there. (The served value itself may differ from the
// annotation after imperative edits such as kubectl scale.)
func TestCreateReadyKeepsAppliedFields(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, in := range cleanInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		u := cleanLoad(t, data)
		applied, ok := u.GetAnnotations()[cleanLastApplied]
		if !ok {
			continue
		}
		checked++
		t.Run(name, func(t *testing.T) {
			var want map[string]any
			if err := json.Unmarshal([]byte(applied), &want); err != nil {
				t.Fatal(err)
			}
			orig := cleanJSONMap(t, u.Object)
			CreateReady(u, CleanOptions{})
			leaves := cleanSubset(t, "", want, orig, cleanJSONMap(t, u.Object))
			if leaves == 0 {
				t.Fatal("no user-written leaf found in the served object")
			}
		})
	}
	if checked < 10 {
		t.Fatalf("only %d inputs carry a last-applied annotation, want at least 10", checked)
	}
}

func cleanJSONMap(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	j, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// cleanSubset walks the leaves of want and reports each one where got differs
// from orig; it returns how many leaves orig had.
func cleanSubset(t *testing.T, path string, want, orig, got any) int {
	t.Helper()
	n := 0
	switch w := want.(type) {
	case map[string]any:
		o, _ := orig.(map[string]any)
		g, _ := got.(map[string]any)
		for k, v := range w {
			n += cleanSubset(t, cleanPath(path, k), v, o[k], g[k])
		}
	case []any:
		o, _ := orig.([]any)
		g, _ := got.([]any)
		for i := range w {
			if i >= len(o) {
				break
			}
			var gi any
			if i < len(g) {
				gi = g[i]
			}
			n += cleanSubset(t, cleanIndex(path, i), w[i], o[i], gi)
		}
	default:
		if orig == nil {
			return 0 // not served at this path (e.g. Secret stringData)
		}
		if !reflect.DeepEqual(orig, got) {
			t.Errorf("%s: cleaned %v, served %v (user-written field changed)", path, got, orig)
		}
		n = 1
	}
	return n
}
