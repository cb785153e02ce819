package decode

import (
	"errors"
	"fmt"
	"strings"

	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationinstall "k8s.io/kube-aggregator/pkg/apis/apiregistration/install"
)

// ErrNoConversion means the object is stored at a version a current API server no
// longer serves, and etcdsafe cannot convert it faithfully. Callers print the
// stored version and say so.
var ErrNoConversion = errors.New("no faithful conversion to a served version")

// convKind says how an old stored version becomes the served one.
type convKind int

const (
	// convSame: the served version has every field of the stored one with
	// the same meaning; only apiVersion changes.
	convSame convKind = iota
	// convGroup: the group's own conversions and defaults
	// (apiextensions-apiserver, kube-aggregator) through the internal type.
	convGroup
	// convFunc: a hand port of kube-apiserver's conversion for this kind.
	convFunc
	// convNone: served version known, but no faithful conversion exists here.
	convNone
)

type convRule struct {
	to     schema.GroupVersion
	kind   convKind
	fn     func(obj map[string]any) error // convFunc only; edits the copy in place
	reason string                         // convNone only
}

// convRules maps a stored GroupVersionKind that kube-apiserver 1.37 no longer
// serves to its served version. Kinds whose old version is still served
// (autoscaling/v1 HPAs, core v1 Events) are absent: they need no conversion.
var convRules = func() map[schema.GroupVersionKind]convRule {
	m := map[schema.GroupVersionKind]convRule{}
	add := func(fromGV, toGV string, k convKind, fn func(map[string]any) error, kinds ...string) {
		from, err1 := schema.ParseGroupVersion(fromGV)
		to, err2 := schema.ParseGroupVersion(toGV)
		if err1 != nil || err2 != nil {
			return // constant table; TestServedVersionTable covers every entry
		}
		for _, kind := range kinds {
			m[from.WithKind(kind)] = convRule{to: to, kind: k, fn: fn}
		}
	}
	same := func(fromGV, toGV string, kinds ...string) { add(fromGV, toGV, convSame, nil, kinds...) }
	none := func(fromGV, toGV, reason string, kinds ...string) {
		add(fromGV, toGV, convNone, nil, kinds...)
		from, _ := schema.ParseGroupVersion(fromGV)
		for _, kind := range kinds {
			r := m[from.WithKind(kind)]
			r.reason = reason
			m[from.WithKind(kind)] = r
		}
	}
	const (
		admission = "admissionregistration.k8s.io"
		vap       = "ValidatingAdmissionPolicy"
		vapb      = "ValidatingAdmissionPolicyBinding"
		mapol     = "MutatingAdmissionPolicy"
		mapb      = "MutatingAdmissionPolicyBinding"
	)
	add("apiextensions.k8s.io/v1beta1", "apiextensions.k8s.io/v1", convGroup, nil, "CustomResourceDefinition")
	add("apiregistration.k8s.io/v1beta1", "apiregistration.k8s.io/v1", convGroup, nil, "APIService")

	add(admission+"/v1beta1", admission+"/v1", convFunc, convWebhookV1beta1Defaults, "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
	same(admission+"/v1beta1", admission+"/v1", vap, vapb, mapol, mapb)
	same(admission+"/v1alpha1", admission+"/v1", vap, vapb, mapol, mapb)

	same("apps/v1beta2", "apps/v1", "Deployment", "DaemonSet", "ReplicaSet", "StatefulSet", "ControllerRevision")
	same("apps/v1beta1", "apps/v1", "StatefulSet", "ControllerRevision")
	none("apps/v1beta1", "apps/v1", "apps/v1beta1 Deployments carry rollbackTo and v1beta1 selector and strategy defaults", "Deployment")
	none("extensions/v1beta1", "apps/v1", "extensions/v1beta1 workloads default selectors, strategies and revision history differently", "Deployment", "DaemonSet", "ReplicaSet")

	same("batch/v1beta1", "batch/v1", "CronJob")
	add("autoscaling/v2beta2", "autoscaling/v2", convSame, nil, "HorizontalPodAutoscaler")
	none("autoscaling/v2beta1", "autoscaling/v2", "autoscaling/v2beta1 metric specs need the v2beta1 conversion, not ported", "HorizontalPodAutoscaler")

	add("certificates.k8s.io/v1beta1", "certificates.k8s.io/v1", convFunc, convCSRV1beta1, "CertificateSigningRequest")
	same("certificates.k8s.io/v1beta1", "certificates.k8s.io/v1", "ClusterTrustBundle")
	same("certificates.k8s.io/v1alpha1", "certificates.k8s.io/v1", "ClusterTrustBundle")
	none("certificates.k8s.io/v1beta1", "certificates.k8s.io/v1", "v1beta1 PodCertificateRequest fields pkixPublicKey and proofOfPossession have no v1 equivalent", "PodCertificateRequest")

	same("coordination.k8s.io/v1beta1", "coordination.k8s.io/v1", "Lease")
	same("coordination.k8s.io/v1alpha2", "coordination.k8s.io/v1beta1", "LeaseCandidate")

	add("discovery.k8s.io/v1beta1", "discovery.k8s.io/v1", convFunc, convEndpointSliceV1beta1, "EndpointSlice")
	same("events.k8s.io/v1beta1", "events.k8s.io/v1", "Event")

	for _, v := range []string{"v1beta1", "v1beta2"} {
		same("flowcontrol.apiserver.k8s.io/"+v, "flowcontrol.apiserver.k8s.io/v1", "FlowSchema")
		add("flowcontrol.apiserver.k8s.io/"+v, "flowcontrol.apiserver.k8s.io/v1", convFunc, convPLCAssured, "PriorityLevelConfiguration")
	}
	same("flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1", "FlowSchema")
	add("flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1", convFunc, convPLCV1beta3, "PriorityLevelConfiguration")

	add("networking.k8s.io/v1beta1", "networking.k8s.io/v1", convFunc, convIngressV1beta1, "Ingress")
	add("extensions/v1beta1", "networking.k8s.io/v1", convFunc, convIngressV1beta1, "Ingress")
	same("extensions/v1beta1", "networking.k8s.io/v1", "NetworkPolicy")
	same("networking.k8s.io/v1beta1", "networking.k8s.io/v1", "IngressClass", "IPAddress", "ServiceCIDR")

	same("node.k8s.io/v1beta1", "node.k8s.io/v1", "RuntimeClass")
	add("node.k8s.io/v1alpha1", "node.k8s.io/v1", convFunc, convRuntimeClassV1alpha1, "RuntimeClass")

	add("policy/v1beta1", "policy/v1", convFunc, convPDBV1beta1, "PodDisruptionBudget")

	same("rbac.authorization.k8s.io/v1beta1", "rbac.authorization.k8s.io/v1", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
	same("rbac.authorization.k8s.io/v1alpha1", "rbac.authorization.k8s.io/v1", "Role", "ClusterRole")
	add("rbac.authorization.k8s.io/v1alpha1", "rbac.authorization.k8s.io/v1", convFunc, convRBACSubjectsV1alpha1, "RoleBinding", "ClusterRoleBinding")

	same("resource.k8s.io/v1beta2", "resource.k8s.io/v1", "DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice", "DeviceTaintRule")
	same("resource.k8s.io/v1beta1", "resource.k8s.io/v1", "DeviceClass")
	same("resource.k8s.io/v1alpha3", "resource.k8s.io/v1", "DeviceTaintRule")
	none("resource.k8s.io/v1beta1", "resource.k8s.io/v1", "resource.k8s.io/v1beta1 device requests and basic devices were restructured in v1", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice")

	same("scheduling.k8s.io/v1beta1", "scheduling.k8s.io/v1", "PriorityClass")
	same("scheduling.k8s.io/v1alpha3", "scheduling.k8s.io/v1beta1", "Workload", "PodGroup")

	same("storage.k8s.io/v1beta1", "storage.k8s.io/v1", "CSIDriver", "CSINode", "StorageClass", "VolumeAttachment", "CSIStorageCapacity", "VolumeAttributesClass")
	same("storage.k8s.io/v1alpha1", "storage.k8s.io/v1", "VolumeAttachment", "CSIStorageCapacity", "VolumeAttributesClass")
	same("storagemigration.k8s.io/v1beta1", "storagemigration.k8s.io/v1", "StorageVersionMigration")
	return m
}()

// ServedVersion returns the version a current (1.37) API server serves for
// an object stored at gvk, and true, when the stored version is no longer
// served; it returns gvk and false when the stored version is still served
// or unknown. Examples: apiextensions.k8s.io/v1beta1 CRDs -> v1,
// discovery.k8s.io/v1beta1 EndpointSlices -> v1, flowcontrol v1beta1-3 -> v1.
func ServedVersion(gvk schema.GroupVersionKind) (schema.GroupVersionKind, bool) {
	r, ok := convRules[gvk]
	if !ok {
		return gvk, false
	}
	return r.to.WithKind(gvk.Kind), true
}

// ConvertToServed returns obj converted to its served version (see
// [ServedVersion]) and true, or obj itself and false when its version is
// still served. obj is not modified. Conversions are the API server's own:
// apiextensions-apiserver's for CRDs, kube-aggregator's for APIServices, and
// hand ports of k8s.io/kubernetes pkg/apis/*/conversion.go (and the stored
// version's read-time defaults) for built-in kinds. When no faithful
// conversion exists the error wraps [ErrNoConversion]; it never returns a
// guess. The result keeps whatever resourceVersion obj had.
func ConvertToServed(obj *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
	if obj == nil {
		return nil, false, fmt.Errorf("convert: nil object")
	}
	gvk := obj.GroupVersionKind()
	r, ok := convRules[gvk]
	if !ok {
		return obj, false, nil
	}
	to := r.to.WithKind(gvk.Kind)
	what := fmt.Sprintf("convert %s %q from %s to %s", gvk.Kind, convName(obj), gvk.GroupVersion(), r.to)
	switch r.kind {
	case convNone:
		return nil, false, fmt.Errorf("%s: %w: %s", what, ErrNoConversion, r.reason)
	case convGroup:
		out, err := convViaScheme(obj, to)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", what, err)
		}
		return out, true, nil
	}
	out := obj.DeepCopy()
	if r.kind == convFunc {
		if err := r.fn(out.Object); err != nil {
			return nil, false, fmt.Errorf("%s: %w", what, err)
		}
	}
	out.SetAPIVersion(r.to.String())
	out.SetKind(gvk.Kind)
	return out, true, nil
}

func convName(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}

// convScheme holds the internal types, conversions and defaults of the two
// API groups whose servers publish them as Go modules.
var convScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	apiextensionsinstall.Install(s)
	apiregistrationinstall.Install(s)
	return s
}()

// convViaScheme does what the API server does on a read: decode the stored
// version applying its defaults, convert to the internal type, then to the
// served version.
func convViaScheme(obj *unstructured.Unstructured, to schema.GroupVersionKind) (out *unstructured.Unstructured, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: conversion panicked: %v", ErrNoConversion, r)
		}
	}()
	from := obj.GroupVersionKind()
	typed, err := convScheme.New(from)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, typed); err != nil {
		return nil, fmt.Errorf("%w: stored object does not fit %s: %w", ErrNoConversion, from, err)
	}
	convScheme.Default(typed)
	internal, err := convScheme.New(from.GroupKind().WithVersion(runtime.APIVersionInternal))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	if err := convScheme.Convert(typed, internal, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	served, err := convScheme.New(to)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	if err := convScheme.Convert(internal, served, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(served)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoConversion, err)
	}
	out = &unstructured.Unstructured{Object: m}
	out.SetGroupVersionKind(to)
	return out, nil
}

// convMaps returns the maps in the list at m[field], skipping other values.
func convMaps(m map[string]any, field string) []map[string]any {
	l, _ := m[field].([]any)
	var out []map[string]any
	for _, v := range l {
		if mm, ok := v.(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}

func convMap(m map[string]any, field string) (map[string]any, bool) {
	mm, ok := m[field].(map[string]any)
	return mm, ok
}

// convSetDefault sets m[field] = v unless the field is present.
func convSetDefault(m map[string]any, field string, v any) {
	if _, ok := m[field]; !ok {
		m[field] = v
	}
}

// convEndpointSliceV1beta1 ports Convert_v1beta1_Endpoint_To_discovery_Endpoint
// (k8s.io/kubernetes pkg/apis/discovery/v1beta1/conversion.go): topology
// becomes deprecatedTopology, minus the zone (moved to zone) and the
// hostname (moved to nodeName when unset, dropped when equal to it).
func convEndpointSliceV1beta1(obj map[string]any) error {
	const (
		zoneLabel = "topology.kubernetes.io/zone"
		hostLabel = "kubernetes.io/hostname"
	)
	for _, ep := range convMaps(obj, "endpoints") {
		raw, present := ep["topology"]
		delete(ep, "topology")
		if !present || raw == nil {
			continue
		}
		topo, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: endpoints[].topology is not a map", ErrNoConversion)
		}
		dep := make(map[string]any, len(topo))
		for k, v := range topo {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("%w: endpoints[].topology[%q] is not a string", ErrNoConversion, k)
			}
			dep[k] = v
		}
		if zone, ok := topo[zoneLabel]; ok {
			ep["zone"] = zone
			delete(dep, zoneLabel)
		}
		if host, ok := topo[hostLabel]; ok {
			node, has := ep["nodeName"].(string)
			switch {
			case !has:
				ep["nodeName"] = host
				delete(dep, hostLabel)
			case node == host:
				delete(dep, hostLabel)
			}
		}
		if len(dep) > 0 {
			ep["deprecatedTopology"] = dep
		}
	}
	return nil
}

// convPLCAssured ports the flowcontrol v1beta1/v1beta2 conversion:
// spec.limited.assuredConcurrencyShares is v1's nominalConcurrencyShares.
// The stored version's defaults apply first (shares 30, lendablePercent 0).
func convPLCAssured(obj map[string]any) error {
	spec, _ := convMap(obj, "spec")
	limited, ok := convMap(spec, "limited")
	if !ok {
		return convPLCExempt(spec)
	}
	acs, has := limited["assuredConcurrencyShares"]
	delete(limited, "assuredConcurrencyShares")
	if n, ok := convInt(acs); !has || ok && n == 0 {
		acs = int64(30)
	}
	limited["nominalConcurrencyShares"] = acs
	convSetDefault(limited, "lendablePercent", int64(0))
	convQueuingDefaults(limited)
	return convPLCExempt(spec)
}

// convPLCV1beta3 ports v1beta3's read-time default and conversion: a zero
// nominalConcurrencyShares means the default 30 unless the round-trip
// annotation says the zero is real; the annotation itself is dropped.
func convPLCV1beta3(obj map[string]any) error {
	const preserveZero = "flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares"
	meta, _ := convMap(obj, "metadata")
	ann, _ := convMap(meta, "annotations")
	_, keepZero := ann[preserveZero]
	if keepZero {
		delete(ann, preserveZero)
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
	}
	spec, _ := convMap(obj, "spec")
	if limited, ok := convMap(spec, "limited"); ok {
		if n, _ := convInt(limited["nominalConcurrencyShares"]); n == 0 && !keepZero {
			limited["nominalConcurrencyShares"] = int64(30)
		} else if _, has := limited["nominalConcurrencyShares"]; !has {
			limited["nominalConcurrencyShares"] = int64(0)
		}
		convSetDefault(limited, "lendablePercent", int64(0))
		convQueuingDefaults(limited)
	}
	return convPLCExempt(spec)
}

func convPLCExempt(spec map[string]any) error {
	if ex, ok := convMap(spec, "exempt"); ok {
		convSetDefault(ex, "nominalConcurrencyShares", int64(0))
		convSetDefault(ex, "lendablePercent", int64(0))
	}
	return nil
}

// convQueuingDefaults applies SetDefaults_QueuingConfiguration (shared by
// every flowcontrol version): handSize 8, queues 64, queueLengthLimit 50.
func convQueuingDefaults(limited map[string]any) {
	lr, _ := convMap(limited, "limitResponse")
	q, ok := convMap(lr, "queuing")
	if !ok {
		return
	}
	for field, def := range map[string]int64{"handSize": 8, "queues": 64, "queueLengthLimit": 50} {
		if n, _ := convInt(q[field]); n == 0 {
			q[field] = def
		}
	}
}

func convInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), float64(int64(n)) == n
	}
	return 0, false
}

// convIngressV1beta1 ports networking/v1beta1 (and extensions/v1beta1)
// Ingress conversion: spec.backend is spec.defaultBackend, and a backend's
// serviceName/servicePort are service.name and service.port.number or .name.
// v1beta1 defaults pathType to ImplementationSpecific on read.
func convIngressV1beta1(obj map[string]any) error {
	spec, ok := convMap(obj, "spec")
	if !ok {
		return nil
	}
	if b, ok := spec["backend"]; ok {
		delete(spec, "backend")
		if b != nil {
			bm, ok := b.(map[string]any)
			if !ok {
				return fmt.Errorf("%w: spec.backend is not an object", ErrNoConversion)
			}
			if err := convIngressBackend(bm); err != nil {
				return err
			}
			spec["defaultBackend"] = bm
		}
	}
	for _, rule := range convMaps(spec, "rules") {
		http, _ := convMap(rule, "http")
		for _, p := range convMaps(http, "paths") {
			convSetDefault(p, "pathType", "ImplementationSpecific")
			if bm, ok := convMap(p, "backend"); ok {
				if err := convIngressBackend(bm); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func convIngressBackend(b map[string]any) error {
	name, hasName := b["serviceName"]
	port, hasPort := b["servicePort"]
	delete(b, "serviceName")
	delete(b, "servicePort")
	if !hasName && !hasPort {
		return nil
	}
	n, _ := name.(string)
	if n == "" {
		// Convert_v1beta1_IngressBackend_To_networking_IngressBackend only
		// builds service when serviceName is set.
		return nil
	}
	svc := map[string]any{"name": n}
	switch p := port.(type) {
	case nil:
	case string:
		if p != "" {
			svc["port"] = map[string]any{"name": p}
		}
	default:
		num, ok := convInt(p)
		if !ok {
			return fmt.Errorf("%w: servicePort is neither a number nor a name", ErrNoConversion)
		}
		if num != 0 {
			svc["port"] = map[string]any{"number": num}
		}
	}
	b["service"] = svc
	return nil
}

// convRuntimeClassV1alpha1 moves v1alpha1's spec.runtimeHandler, overhead
// and scheduling to v1's top-level handler, overhead and scheduling.
func convRuntimeClassV1alpha1(obj map[string]any) error {
	spec, ok := convMap(obj, "spec")
	delete(obj, "spec")
	if !ok {
		return nil
	}
	if h, ok := spec["runtimeHandler"]; ok {
		obj["handler"] = h
	}
	for _, f := range []string{"overhead", "scheduling"} {
		if v, ok := spec[f]; ok {
			obj[f] = v
		}
	}
	return nil
}

// convPDBV1beta1 ports Convert_v1beta1_PodDisruptionBudget_To_policy_PodDisruptionBudget:
// an empty v1beta1 selector selects nothing, so it becomes v1's never-matching
// selector; v1beta1's marker for "match all" becomes an empty selector; the
// marker label is stripped from any other selector.
func convPDBV1beta1(obj map[string]any) error {
	const label = "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match"
	spec, ok := convMap(obj, "spec")
	if !ok {
		return nil
	}
	sel, ok := convMap(spec, "selector")
	if !ok {
		return nil
	}
	labels, _ := convMap(sel, "matchLabels")
	exprs := convMaps(sel, "matchExpressions")
	switch {
	case len(labels) == 0 && len(exprs) == 0:
		// v1beta1 {} matches nothing: NonV1beta1MatchNoneSelector.
		spec["selector"] = map[string]any{"matchExpressions": []any{
			map[string]any{"key": label, "operator": "Exists"},
		}}
		return nil
	case len(labels) == 0 && len(exprs) == 1 && exprs[0]["key"] == label && exprs[0]["operator"] == "DoesNotExist" && convEmptyList(exprs[0]["values"]):
		// V1beta1MatchAllSelector becomes v1's {}.
		spec["selector"] = map[string]any{}
		return nil
	}
	if _, ok := sel["matchExpressions"]; ok {
		kept := []any{}
		for _, e := range convMaps(sel, "matchExpressions") {
			if e["key"] != label {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			delete(sel, "matchExpressions")
		} else {
			sel["matchExpressions"] = kept
		}
	}
	return nil
}

func convEmptyList(v any) bool {
	l, _ := v.([]any)
	return len(l) == 0
}

// convRBACSubjectsV1alpha1 ports Convert_v1alpha1_Subject_To_rbac_Subject:
// v1alpha1 subjects carry apiVersion; v1 has apiGroup, set by kind.
func convRBACSubjectsV1alpha1(obj map[string]any) error {
	for _, s := range convMaps(obj, "subjects") {
		av, _ := s["apiVersion"].(string)
		delete(s, "apiVersion")
		switch s["kind"] {
		case "ServiceAccount":
			s["apiGroup"] = ""
		case "User", "Group":
			s["apiGroup"] = "rbac.authorization.k8s.io"
		default:
			if gv, err := schema.ParseGroupVersion(av); err == nil {
				s["apiGroup"] = gv.Group
			}
		}
		if s["apiGroup"] == "" {
			delete(s, "apiGroup")
		}
	}
	return nil
}

// convWebhookV1beta1Defaults applies admissionregistration/v1beta1's
// read-time defaults, which differ from v1's (failurePolicy Ignore, not
// Fail; matchPolicy Exact; sideEffects Unknown; timeout 30s;
// admissionReviewVersions [v1beta1]), so that fields a stored object lacks
// read as the old API server served them. The fields themselves match v1.
func convWebhookV1beta1Defaults(obj map[string]any) error {
	mutating := obj["kind"] == "MutatingWebhookConfiguration"
	for _, w := range convMaps(obj, "webhooks") {
		convSetDefault(w, "failurePolicy", "Ignore")
		convSetDefault(w, "matchPolicy", "Exact")
		convSetDefault(w, "namespaceSelector", map[string]any{})
		convSetDefault(w, "objectSelector", map[string]any{})
		convSetDefault(w, "sideEffects", "Unknown")
		convSetDefault(w, "timeoutSeconds", int64(30))
		convSetDefault(w, "admissionReviewVersions", []any{"v1beta1"})
		if mutating {
			convSetDefault(w, "reinvocationPolicy", "Never")
		}
		for _, r := range convMaps(w, "rules") {
			convSetDefault(r, "scope", "*")
		}
		if cc, ok := convMap(w, "clientConfig"); ok {
			if svc, ok := convMap(cc, "service"); ok {
				convSetDefault(svc, "port", int64(443))
			}
		}
	}
	return nil
}

// convCSRV1beta1 converts a v1beta1 CertificateSigningRequest whose
// signerName is set. v1beta1 guessed a missing signerName from the request's
// content on read; that guess is not ported, so such objects are refused.
// v1beta1 read-time defaults: usages [digital signature, key encipherment],
// condition status True.
func convCSRV1beta1(obj map[string]any) error {
	spec, _ := convMap(obj, "spec")
	if s, _ := spec["signerName"].(string); s == "" {
		return fmt.Errorf("%w: v1beta1 CSR without spec.signerName (v1beta1 derived it from the request content)", ErrNoConversion)
	}
	convSetDefault(spec, "usages", []any{"digital signature", "key encipherment"})
	status, _ := convMap(obj, "status")
	for _, c := range convMaps(status, "conditions") {
		if s, _ := c["status"].(string); strings.TrimSpace(s) == "" {
			c["status"] = "True"
		}
	}
	return nil
}
