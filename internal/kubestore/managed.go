package kubestore

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// fieldsComputer computes managedFields sets with structured-merge-diff's
// deduced schema, which is what the apiserver uses for custom resources
// without a schema. For built-in kinds the apiserver uses OpenAPI schemas
// that key list items (k:{"name":"api"}); the deduced schema treats every
// list as atomic ("f:containers":{}). That is a deliberate simplification:
// the typed converters (managedfields.NewSchemeTypeConverter) would pull
// kube-openapi's go-openapi dependency tree into go.mod for a field that
// kubectl hides and no restore keeps.
type fieldsComputer struct{}

func newFieldsComputer(*runtime.Scheme) *fieldsComputer { return &fieldsComputer{} }

// typedOf returns the fields a client sets on obj: everything except
// status and the metadata the server owns.
func (f *fieldsComputer) typedOf(obj runtime.Object, t target) (*typed.TypedValue, error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(u, "status")
	if md, ok := u["metadata"].(map[string]any); ok {
		keep := map[string]any{}
		for _, k := range []string{"labels", "annotations", "ownerReferences", "finalizers"} {
			if v, ok := md[k]; ok {
				keep[k] = v
			}
		}
		u["metadata"] = keep
	}
	delete(u, "apiVersion")
	delete(u, "kind")
	tv, err := typed.DeducedParseableType.FromUnstructured(u, typed.AllowDuplicates)
	if err != nil {
		return nil, fmt.Errorf("typed %s: %w", t.gvk, err)
	}
	return tv, nil
}

func (f *fieldsComputer) fieldSet(obj runtime.Object, t target) (*fieldpath.Set, error) {
	tv, err := f.typedOf(obj, t)
	if err != nil {
		return nil, err
	}
	set, err := tv.ToFieldSet()
	if err != nil {
		return nil, fmt.Errorf("field set: %w", err)
	}
	return structsAsStructs(set, t.cr), nil
}

// mapFields are built-in fields whose type is a map (not a struct): the
// typed schema gives them a "." member when they have children, as the
// deduced schema does for every object.
var mapFields = map[string]bool{
	"labels": true, "annotations": true, "data": true, "stringData": true, "binaryData": true,
	"matchLabels": true, "nodeSelector": true, "selector": true, "limits": true, "requests": true,
	"capacity": true, "parameters": true, "volumeAttributes": true,
}

// structsAsStructs removes the "." member the deduced schema gives to
// every map-with-children where the typed schema has a struct: metadata
// always (as for real custom resources), and for built-in kinds every
// field not known to be a map.
func structsAsStructs(set *fieldpath.Set, cr bool) *fieldpath.Set {
	drop := &fieldpath.Set{}
	set.Iterate(func(p fieldpath.Path) {
		if len(p) == 0 || under(set, p).Empty() {
			return // a leaf
		}
		last := p[len(p)-1]
		if last.FieldName == nil {
			return // list item keys stay
		}
		if len(p) == 1 && *last.FieldName == "metadata" || !cr && !mapFields[*last.FieldName] {
			drop.Insert(p)
		}
	})
	return set.Difference(drop)
}

// update returns prev's managedFields after manager changed prev into obj:
// the manager gains what it added or modified, other managers lose it.
func (f *fieldsComputer) update(prev, obj runtime.Object, t target, manager string, now metav1.Time) ([]metav1.ManagedFieldsEntry, error) {
	pm, err := metaOf(prev)
	if err != nil {
		return nil, err
	}
	pt, err := f.typedOf(prev, t)
	if err != nil {
		return nil, err
	}
	nt, err := f.typedOf(obj, t)
	if err != nil {
		return nil, err
	}
	cmp, err := pt.Compare(nt)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	changed := structsAsStructs(cmp.Added.Union(cmp.Modified), t.cr)
	lost := changed.Union(cmp.Removed)
	var out []metav1.ManagedFieldsEntry
	found := false
	for _, e := range pm {
		set := &fieldpath.Set{}
		if e.FieldsV1 != nil {
			if err := set.FromJSON(bytesReader(e.FieldsV1.GetRawBytes())); err != nil {
				return nil, fmt.Errorf("parse fields of %s: %w", e.Manager, err)
			}
		}
		set = set.Difference(lost)
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationUpdate && e.Subresource == "" {
			found = true
			set = set.Union(changed)
			e.Time = &now
		}
		if set.Empty() {
			continue
		}
		tm := now
		if e.Time != nil {
			tm = *e.Time
		}
		ne, err := managedEntry(e.Manager, e.APIVersion, tm, set)
		if err != nil {
			return nil, err
		}
		ne.Time = e.Time
		ne.Operation = e.Operation
		ne.Subresource = e.Subresource
		out = append(out, ne)
	}
	if !found && !changed.Empty() {
		ne, err := managedEntry(manager, t.gvk.GroupVersion().String(), now, changed)
		if err != nil {
			return nil, err
		}
		out = append(out, ne)
	}
	sortManaged(out)
	return out, nil
}

func managedEntry(manager, apiVersion string, now metav1.Time, set *fieldpath.Set) (metav1.ManagedFieldsEntry, error) {
	js, err := set.ToJSON()
	if err != nil {
		return metav1.ManagedFieldsEntry{}, fmt.Errorf("fields to json: %w", err)
	}
	return metav1.ManagedFieldsEntry{
		Manager:    manager,
		Operation:  metav1.ManagedFieldsOperationUpdate,
		APIVersion: apiVersion,
		Time:       &now,
		FieldsType: "FieldsV1",
		FieldsV1:   metav1.NewFieldsV1(string(js)),
	}, nil
}

// under returns the part of set below path p.
func under(set *fieldpath.Set, p fieldpath.Path) *fieldpath.Set {
	for _, pe := range p {
		set = set.WithPrefix(pe)
	}
	return set
}
