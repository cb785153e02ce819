package decode

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// readDefaults applies the defaults kube-apiserver runs on every object it
// reads from etcd before serving it (k8s.io/kubernetes pkg/apis/*/v1
// defaults and conversions), for the fields an object can be stored
// without: without them `get --raw` would differ from what the API serves.
// Measured on objects written by kube-apiserver 1.33 (see
// testdata/real-k8s1.33-etcd3.5); the list is not every defaulter of
// Kubernetes, only those that fill fields absent from stored objects.
func readDefaults(obj *unstructured.Unstructured) {
	gvk := obj.GroupVersionKind()
	switch {
	case gvk.Group == "" && (gvk.Kind == "PersistentVolumeClaim" || gvk.Kind == "PersistentVolume"):
		// SetDefaults_PersistentVolume(Claim): status.phase Pending
		if p, _, _ := unstructured.NestedString(obj.Object, "status", "phase"); p == "" {
			_ = unstructured.SetNestedField(obj.Object, "Pending", "status", "phase")
		}
	case gvk.Group == "batch" && gvk.Kind == "Job":
		// SetDefaults_Job: an unlabeled Job gets its pod template's labels
		tl, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "labels")
		if len(tl) > 0 && len(obj.GetLabels()) == 0 {
			obj.SetLabels(tl)
		}
	case gvk.Group == "apps" && gvk.Kind == "StatefulSet":
		// apps/v1 conversion from the internal type names every claim
		// template's apiVersion and kind
		tmpls, ok, _ := unstructured.NestedSlice(obj.Object, "spec", "volumeClaimTemplates")
		if !ok {
			return
		}
		for _, t := range tmpls {
			if m, ok := t.(map[string]any); ok {
				m["apiVersion"], m["kind"] = "v1", "PersistentVolumeClaim"
			}
		}
		_ = unstructured.SetNestedSlice(obj.Object, tmpls, "spec", "volumeClaimTemplates")
	}
}

// coreEventAsEventsV1 is kube-apiserver's view of a core/v1 Event (what
// /registry/events holds) through events.k8s.io/v1, as
// Convert_core_Event_To_v1_Event (k8s.io/kubernetes pkg/apis/events/v1)
// maps it.
func coreEventAsEventsV1(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var in corev1.Event
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &in); err != nil {
		return nil, fmt.Errorf("read core/v1 Event: %w", err)
	}
	out := &eventsv1.Event{
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	out.APIVersion, out.Kind = eventsv1.SchemeGroupVersion.String(), "Event"
	return toUnstructured(out)
}
