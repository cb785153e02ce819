package kubestore

import (
	"context"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// crdStatusFields is the field set kube-apiserver's CRD controllers own
// after naming and establishing a CRD (copied from a real v1.37 store).
const crdStatusFields = `{"f:status":{"f:acceptedNames":{"f:kind":{},"f:listKind":{},"f:plural":{},"f:shortNames":{},"f:singular":{}},"f:conditions":{"k:{\"type\":\"Established\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"NamesAccepted\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}}}}`

// CreateCRD creates a CRD the way a real cluster records it: three
// revisions, as kube-apiserver writes them: the create (storedVersions set,
// no conditions), names accepted with Established=False/Installing, then
// Established=True. It returns the last revision. The CRD's own defaults
// (listKind, conversion strategy) are applied from the apiextensions
// scheme.
func (w *Writer) CreateCRD(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) (int64, error) {
	crd = crd.DeepCopy()
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	// Defaults run after kubectl recorded the manifest, so compute the
	// annotation first through PrepareCreate with a defaulter hook.
	saved := w.opts.Defaulter
	defer func() { w.opts.Defaulter = saved }()
	w.opts.Defaulter = func(o runtime.Object) {
		w.scheme.Default(o)
		if c, ok := o.(*apiextensionsv1.CustomResourceDefinition); ok {
			c.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
			for _, v := range c.Spec.Versions {
				if v.Storage {
					c.Status.StoredVersions = append(c.Status.StoredVersions, v.Name)
				}
			}
		}
	}
	if _, err := w.Create(ctx, crd); err != nil {
		return 0, err
	}
	key, err := w.KeyFor(crd)
	if err != nil {
		return 0, err
	}
	var rev int64
	for step := range 2 {
		cur, ok := w.state[key].(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			return 0, fmt.Errorf("crd %s: lost writer state", crd.Name)
		}
		next := cur.DeepCopy()
		now := w.tick()
		established := apiextensionsv1.CustomResourceDefinitionCondition{
			Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionFalse, LastTransitionTime: now,
			Reason: "Installing", Message: "the initial names have been accepted",
		}
		if step == 0 {
			next.Status.AcceptedNames = next.Spec.Names
			next.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{
				Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue, LastTransitionTime: now,
				Reason: "NoConflicts", Message: "no conflicts found",
			}, established}
			mf := metav1.ManagedFieldsEntry{
				Manager: "kube-apiserver", Operation: metav1.ManagedFieldsOperationUpdate,
				APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Time: &now, FieldsType: "FieldsV1",
				FieldsV1: metav1.NewFieldsV1(crdStatusFields), Subresource: "status",
			}
			next.ManagedFields = append([]metav1.ManagedFieldsEntry{mf}, next.ManagedFields...)
			sortManaged(next.ManagedFields)
		} else {
			next.Status.Conditions[1].Status = apiextensionsv1.ConditionTrue
			next.Status.Conditions[1].Reason = "InitialNamesAccepted"
		}
		t, err := w.targetOf(next)
		if err != nil {
			return 0, err
		}
		val, err := w.encode(t, next)
		if err != nil {
			return 0, err
		}
		w.state[key] = next
		if rev, err = w.PutRaw(ctx, key, val); err != nil {
			return 0, err
		}
	}
	return rev, nil
}
