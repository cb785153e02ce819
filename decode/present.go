package decode

import (
	"errors"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
)

// PresentOptions says how an object is shown.
type PresentOptions struct {
	// Raw shows the object as the API server would serve it
	// (resourceVersion = the record's mod revision). Otherwise it is made
	// create-ready with Clean.
	Raw bool
	// StorageVersion keeps the object at the version it was stored at.
	StorageVersion bool
	// ShowManagedFields keeps metadata.managedFields, which kubectl hides.
	ShowManagedFields bool
	// ServedBy is the kube-apiserver version whose serialization Raw
	// reproduces (see [ServingChanges]); nil is this build's.
	ServedBy *version.Version
	Clean    CleanOptions
	// AsGroup is the API group the object was asked for, when it matters:
	// /registry/events holds core/v1 Events, which events.k8s.io serves in
	// its own schema.
	AsGroup string
}

// Present turns a decoded value into the object to print. notes tell the
// user about choices made (a version that could not be converted). v is not
// modified.
func Present(v *Value, modRevision int64, opts PresentOptions) (obj *unstructured.Unstructured, notes []string, err error) {
	obj = v.Object.DeepCopy()
	if !opts.StorageVersion && opts.AsGroup == "events.k8s.io" && obj.GetAPIVersion() == "v1" && obj.GetKind() == "Event" {
		if obj, err = coreEventAsEventsV1(obj); err != nil {
			return nil, nil, err
		}
	}
	if !opts.StorageVersion {
		conv, changed, err := ConvertToServed(obj)
		switch {
		case errors.Is(err, ErrNoConversion):
			notes = append(notes, fmt.Sprintf("shown at its storage version %s: %v", obj.GetAPIVersion(), err))
		case err != nil:
			return nil, nil, err
		case changed:
			obj = conv
		}
		readDefaults(obj)
	}
	if !opts.Raw {
		// CreateReady reads managedFields (node ports an apply requested)
		// before it removes them.
		CreateReady(obj, opts.Clean)
		return obj, notes, nil
	}
	if !opts.ShowManagedFields {
		unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
	}
	if modRevision > 0 {
		obj.SetResourceVersion(strconv.FormatInt(modRevision, 10))
	}
	servedBy(obj, opts.ServedBy)
	return obj, notes, nil
}
