package decode

import (
	"reflect"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
)

// BuildKubernetes is the Kubernetes minor whose API types this build
// decodes with (k8s.io/api v0.37): objects are served as its kube-apiserver
// serves them unless [PresentOptions.ServedBy] says otherwise.
const BuildKubernetes = "v1.37"

// A ServingChange is a difference in how kube-apiserver serves the objects
// it reads from etcd that came with one of its versions: a server older
// than Since serves them the old way, which [Present] reproduces for
// [PresentOptions.ServedBy].
type ServingChange struct {
	// Since is the first kube-apiserver minor with the change.
	Since *version.Version
	// What says what older servers do, for messages.
	What string
	// Ref is where the change was made.
	Ref string

	undo func(obj *unstructured.Unstructured)
}

// ServingChanges are the changes known, oldest first. Each was measured
// against real kube-apiservers of older versions (see
// testdata/real-k8s1.30-etcd3.5 and real-k8s1.33-etcd3.5).
var ServingChanges = []ServingChange{{
	Since: version.MajorMinor(1, 34),
	What:  "a zero metadata.creationTimestamp is served as null (object templates: pod, job and claim templates)",
	Ref:   "kubernetes/kubernetes#130989",
	undo:  nullCreationTimestamps,
}}

// ServingChangesBefore returns the changes that v serves the old way: those
// that came after it. A nil v is this build's Kubernetes: none.
func ServingChangesBefore(v *version.Version) []ServingChange {
	if v == nil {
		return nil
	}
	var out []ServingChange
	for _, c := range ServingChanges {
		if v.LessThan(c.Since) {
			out = append(out, c)
		}
	}
	return out
}

// servedBy makes obj what kube-apiserver v serves.
func servedBy(obj *unstructured.Unstructured, v *version.Version) {
	for _, c := range ServingChangesBefore(v) {
		c.undo(obj)
	}
}

// nullCreationTimestamps puts "creationTimestamp": null in every ObjectMeta
// of a built-in object that has none, as encoding/json wrote a zero
// metav1.Time (a struct: omitempty never left it out) until kube-apiserver
// 1.34 tagged the field omitzero. k8s.io/apimachinery v0.33 has no
// omitzero there, v0.34.0 has, and the real v1.33.13 of
// testdata/real-k8s1.33-etcd3.5 serves null. Only typed objects are
// concerned: custom resources were always served as stored.
func nullCreationTimestamps(obj *unstructured.Unstructured) {
	typed, err := scheme.New(obj.GroupVersionKind())
	if err != nil {
		return // a custom resource, or a type this build does not know
	}
	for _, p := range objectMetaPaths(reflect.TypeOf(typed).Elem()) {
		nullTimestampAt(obj.Object, p)
	}
}

// metaStep is one step of a path to an ObjectMeta: a field (by its JSON
// name), every element of a list, or every value of a map.
type metaStep struct {
	field string
	each  bool // a list's elements or a map's values
	// always is set on a field that encoding/json always writes when its
	// parent is written: a struct that is not behind a pointer.
	always bool
}

var metaType = reflect.TypeFor[metav1.ObjectMeta]()

var metaPathCache sync.Map // reflect.Type → [][]metaStep

// objectMetaPaths lists where ObjectMeta values sit in values of type t
// (a struct), the top-level metadata included.
func objectMetaPaths(t reflect.Type) [][]metaStep {
	if p, ok := metaPathCache.Load(t); ok {
		return p.([][]metaStep)
	}
	p := findMeta(t, nil, map[reflect.Type]bool{})
	metaPathCache.Store(t, p)
	return p
}

// findMeta walks type t, reached by the path at, for ObjectMeta fields.
// visiting guards recursive types (JSONSchemaProps), which hold none.
func findMeta(t reflect.Type, at []metaStep, visiting map[reflect.Type]bool) [][]metaStep {
	switch t.Kind() {
	case reflect.Pointer:
		return findMeta(t.Elem(), at, visiting)
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return nil // []byte: base64 text
		}
		return findMeta(t.Elem(), append(clip(at), metaStep{each: true}), visiting)
	case reflect.Struct:
	default:
		return nil
	}
	if visiting[t] || t.PkgPath() == "time" {
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	var out [][]metaStep
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline := jsonName(f)
		if name == "-" {
			continue
		}
		if inline {
			out = append(out, findMeta(f.Type, at, visiting)...)
			continue
		}
		step := metaStep{field: name, always: f.Type.Kind() == reflect.Struct}
		if f.Type == metaType {
			out = append(out, append(clip(at), step))
			continue
		}
		out = append(out, findMeta(f.Type, append(clip(at), step), visiting)...)
	}
	return out
}

// jsonName is a field's name in JSON, and whether it is inlined into its
// parent (`json:",inline"` or an untagged embedded struct).
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" && (opts == "inline" || f.Anonymous) {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

// clip returns p with no spare capacity, so that appends copy.
func clip(p []metaStep) []metaStep { return p[:len(p):len(p)] }

// nullTimestampAt sets creationTimestamp to null in the ObjectMeta maps
// that path p reaches in v, where they have none. A map the path goes
// through that is missing is created only where encoding/json would have
// written it (a struct not behind a pointer, inside a parent that is
// there).
func nullTimestampAt(v any, p []metaStep) {
	if len(p) == 0 {
		if m, ok := v.(map[string]any); ok {
			if _, has := m["creationTimestamp"]; !has {
				m["creationTimestamp"] = nil
			}
		}
		return
	}
	s := p[0]
	if s.each {
		switch c := v.(type) {
		case []any:
			for _, e := range c {
				nullTimestampAt(e, p[1:])
			}
		case map[string]any:
			for _, e := range c {
				nullTimestampAt(e, p[1:])
			}
		}
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	next, has := m[s.field]
	if !has {
		if !s.always {
			return
		}
		next = map[string]any{}
		m[s.field] = next
	}
	nullTimestampAt(next, p[1:])
}
