package decode

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

// pathStrings renders objectMetaPaths as "spec.template.metadata",
// "spec.volumeClaimTemplates[].metadata".
func pathStrings(t reflect.Type) []string {
	var out []string
	for _, p := range objectMetaPaths(t) {
		var b strings.Builder
		for _, s := range p {
			if s.each {
				b.WriteString("[]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.field)
		}
		out = append(out, b.String())
	}
	return out
}

func TestObjectMetaPaths(t *testing.T) {
	t.Parallel()
	ephemeral := "spec.volumes[].ephemeral.volumeClaimTemplate.metadata"
	cases := []struct {
		typ  any
		want []string
	}{
		{corev1.ConfigMap{}, []string{"metadata"}},
		{corev1.Pod{}, []string{"metadata", ephemeral}},
		{appsv1.Deployment{}, []string{"metadata", "spec.template.metadata", "spec.template." + ephemeral}},
		{appsv1.StatefulSet{}, []string{"metadata", "spec.template.metadata", "spec.template." + ephemeral, "spec.volumeClaimTemplates[].metadata"}},
		{batchv1.CronJob{}, []string{"metadata", "spec.jobTemplate.metadata", "spec.jobTemplate.spec.template.metadata", "spec.jobTemplate.spec.template." + ephemeral}},
		{corev1.ReplicationController{}, []string{"metadata", "spec.template.metadata", "spec.template." + ephemeral}},
		// recursive (JSONSchemaProps): the walk ends, and finds no template
		{apiextensionsv1.CustomResourceDefinition{}, []string{"metadata"}},
	}
	for _, tc := range cases {
		typ := reflect.TypeOf(tc.typ)
		t.Run(typ.Name(), func(t *testing.T) {
			got := pathStrings(typ)
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("paths = %q, want %q", got, tc.want)
			}
		})
	}
}

const statefulSetYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  creationTimestamp: "2026-12-02T06:38:09Z"
  name: db
  namespace: shop
spec:
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:16
      volumes:
      - name: scratch
        ephemeral:
          volumeClaimTemplate:
            spec:
              accessModes: [ReadWriteOnce]
      - name: cache
        emptyDir: {}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
`

func fromYAML(t *testing.T, s string) *Value {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return &Value{Object: &unstructured.Unstructured{Object: m}}
}

// nullsAt lists the paths where creationTimestamp is null.
func nullsAt(v any, path string) []string {
	var out []string
	switch c := v.(type) {
	case map[string]any:
		for k, e := range c {
			if k == "creationTimestamp" && e == nil {
				out = append(out, path)
			}
			out = append(out, nullsAt(e, path+"."+k)...)
		}
	case []any:
		for _, e := range c {
			out = append(out, nullsAt(e, path+"[]")...)
		}
	}
	slices.Sort(out)
	return out
}

func TestPresentServedBy(t *testing.T) {
	t.Parallel()
	templates := []string{".spec.template.metadata", ".spec.template.spec.volumes[].ephemeral.volumeClaimTemplate.metadata", ".spec.volumeClaimTemplates[].metadata"}
	cases := []struct {
		name  string
		opts  PresentOptions
		nulls []string
	}{
		{"raw as v1.30", PresentOptions{Raw: true, ServedBy: version.MustParseGeneric("v1.30.14")}, templates},
		{"raw as v1.33", PresentOptions{Raw: true, ServedBy: version.MustParseGeneric("1.33")}, templates},
		{"raw as v1.34", PresentOptions{Raw: true, ServedBy: version.MustParseGeneric("1.34")}, nil},
		{"raw as this build", PresentOptions{Raw: true}, nil},
		// create-ready output is for kubectl create: nulls are noise there
		{"create-ready", PresentOptions{ServedBy: version.MustParseGeneric("1.30")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := fromYAML(t, statefulSetYAML)
			before := v.Object.DeepCopy()
			obj, _, err := Present(v, 7, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := nullsAt(obj.Object, ""); !slices.Equal(got, tc.nulls) {
				t.Errorf("null creationTimestamp at %q, want %q", got, tc.nulls)
			}
			if !reflect.DeepEqual(v.Object, before) {
				t.Error("Present modified the decoded value")
			}
			// the emptyDir volume has no claim template: none is made up
			vols, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "volumes")
			if len(vols) != 2 || vols[1].(map[string]any)["ephemeral"] != nil {
				t.Errorf("volumes = %v", vols)
			}
		})
	}
}

// A template with no metadata at all is served with one: encoding/json
// wrote the struct whole. A custom resource is served as stored.
func TestServedByMissingMetadataAndCustomResources(t *testing.T) {
	t.Parallel()
	v := fromYAML(t, "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: n, creationTimestamp: \"2026-12-02T06:38:09Z\"}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: busybox}]\n")
	obj, _, err := Present(v, 7, PresentOptions{Raw: true, ServedBy: version.MustParseGeneric("1.30")})
	if err != nil {
		t.Fatal(err)
	}
	if got := nullsAt(obj.Object, ""); !slices.Equal(got, []string{".spec.template.metadata"}) {
		t.Errorf("null creationTimestamp at %q", got)
	}
	cr := fromYAML(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: n, creationTimestamp: \"2026-12-02T06:38:09Z\"}\nspec:\n  template:\n    metadata: {labels: {a: b}}\n")
	obj, _, err = Present(cr, 7, PresentOptions{Raw: true, ServedBy: version.MustParseGeneric("1.30")})
	if err != nil {
		t.Fatal(err)
	}
	if got := nullsAt(obj.Object, ""); len(got) != 0 {
		t.Errorf("custom resource got null creationTimestamp at %q", got)
	}
}

func TestServingChangesBefore(t *testing.T) {
	t.Parallel()
	if got := ServingChangesBefore(nil); got != nil {
		t.Errorf("nil version: %d changes", len(got))
	}
	if got := ServingChangesBefore(version.MustParseGeneric("1.33.13")); len(got) != 1 || got[0].Ref != "kubernetes/kubernetes#130989" {
		t.Errorf("v1.33.13: %+v", got)
	}
	if got := ServingChangesBefore(version.MustParseGeneric("1.34.0")); len(got) != 0 {
		t.Errorf("v1.34.0: %+v", got)
	}
	// BuildKubernetes names the k8s.io/api minor this build decodes with
	want := "v1." + strings.TrimPrefix(apiMinorFromGoMod(t), "0.")
	if BuildKubernetes != want {
		t.Errorf("BuildKubernetes = %s, go.mod's k8s.io/api says %s", BuildKubernetes, want)
	}
}

// apiMinorFromGoMod is the "0.37" of k8s.io/api's version in ../go.mod.
func apiMinorFromGoMod(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "k8s.io/api" {
			parts := strings.SplitN(strings.TrimPrefix(f[1], "v"), ".", 3)
			return parts[0] + "." + parts[1]
		}
	}
	t.Fatal("go.mod requires no k8s.io/api")
	return ""
}
