package decode

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

var (
	// ErrUnknownResource: a resource type names nothing in the table.
	ErrUnknownResource = errors.New("unknown resource type")
	// ErrAmbiguousResource: a resource type names more than one resource and
	// none of them takes precedence; the error lists the candidates.
	ErrAmbiguousResource = errors.New("ambiguous resource type")
	// ErrBadCRD: a CustomResourceDefinition lacks what the table needs.
	ErrBadCRD = errors.New("invalid CustomResourceDefinition")
)

// Resource is one API resource as kube-apiserver stores it in etcd.
type Resource struct {
	// Group, Version and Kind name the object. Version is the version a
	// current (1.37) API server serves and prefers; objects in etcd can be
	// stored at an older one (see [ServedVersion]).
	Group, Version, Kind string
	Plural, Singular     string
	ShortNames           []string
	Namespaced           bool
	// KeyPath is the path under the registry prefix: "deployments",
	// "services/specs", "minions", "apiextensions.k8s.io/customresourcedefinitions",
	// "cert-manager.io/certificates".
	KeyPath string
	// Custom is true for resources learned from a CRD (see [ResourceTable.AddCRD]).
	Custom bool
	// Internal marks kube-apiserver bookkeeping records that are not an API
	// resource of their own (service IP and node port range bitmaps, API
	// server endpoint leases, compact_rev_key). [ResourceTable.ForKey]
	// reports them; [ResourceTable.Resolve] never returns them.
	Internal bool

	versions []string // every served version, for Resolve ("x.v1beta1.group")
}

// GroupVersionKind returns the served group, version and kind.
func (r Resource) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// GroupResource returns "plural.group" (or "plural" for the core group).
func (r Resource) GroupResource() string {
	if r.Group == "" {
		return r.Plural
	}
	return r.Plural + "." + r.Group
}

// KeyInfo is what an etcd key says about the object stored under it.
type KeyInfo struct {
	Resource        Resource
	Namespace, Name string // Namespace is "" for cluster-scoped resources
}

// ResourceTable maps kubectl-style type names and etcd keys to resources,
// offline. The zero value is empty; use [BuiltinResources]. A table is not
// safe for concurrent use while AddCRD runs.
type ResourceTable struct {
	res    []Resource
	byPath map[string]int // KeyPath -> index of the first resource stored there
}

// CompactRevKey is the key (without the registry prefix) where kube-apiserver
// keeps the revision of its last compaction, as a decimal string.
const CompactRevKey = "compact_rev_key"

// resBuiltin lists every resource kube-apiserver 1.37 persists in etcd.
// Key paths follow k8s.io/kubernetes pkg/kubeapiserver
// (SpecialDefaultResourcePrefixes) and the per-registry storage: the resource
// name without group, except the few compiled-in exceptions, and
// "<group>/<resource>" for the apiextensions and apiregistration servers.
var resBuiltin = []struct {
	gv, kind, plural, short string
	ns                      bool
	keyPath                 string // "" = plural
}{
	// core
	{"v1", "ConfigMap", "configmaps", "cm", true, ""},
	{"v1", "Endpoints", "endpoints", "ep", true, "services/endpoints"},
	{"v1", "Event", "events", "ev", true, ""},
	{"v1", "LimitRange", "limitranges", "limits", true, ""},
	{"v1", "Namespace", "namespaces", "ns", false, ""},
	{"v1", "Node", "nodes", "no", false, "minions"},
	{"v1", "PersistentVolumeClaim", "persistentvolumeclaims", "pvc", true, ""},
	{"v1", "PersistentVolume", "persistentvolumes", "pv", false, ""},
	{"v1", "Pod", "pods", "po", true, ""},
	{"v1", "PodTemplate", "podtemplates", "", true, ""},
	{"v1", "ReplicationController", "replicationcontrollers", "rc", true, "controllers"},
	{"v1", "ResourceQuota", "resourcequotas", "quota", true, ""},
	{"v1", "Secret", "secrets", "", true, ""},
	{"v1", "ServiceAccount", "serviceaccounts", "sa", true, ""},
	{"v1", "Service", "services", "svc", true, "services/specs"},
	// admissionregistration
	{"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", "", false, ""},
	{"admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", "", false, ""},
	{"admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", "", false, ""},
	{"admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", "", false, ""},
	{"admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy", "mutatingadmissionpolicies", "", false, ""},
	{"admissionregistration.k8s.io/v1", "MutatingAdmissionPolicyBinding", "mutatingadmissionpolicybindings", "", false, ""},
	// apiextensions, apiregistration
	{"apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", "crd,crds", false, "apiextensions.k8s.io/customresourcedefinitions"},
	{"apiregistration.k8s.io/v1", "APIService", "apiservices", "", false, "apiregistration.k8s.io/apiservices"},
	// apps
	{"apps/v1", "ControllerRevision", "controllerrevisions", "", true, ""},
	{"apps/v1", "DaemonSet", "daemonsets", "ds", true, ""},
	{"apps/v1", "Deployment", "deployments", "deploy", true, ""},
	{"apps/v1", "ReplicaSet", "replicasets", "rs", true, ""},
	{"apps/v1", "StatefulSet", "statefulsets", "sts", true, ""},
	// autoscaling, batch
	{"autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "hpa", true, ""},
	{"batch/v1", "CronJob", "cronjobs", "cj", true, ""},
	{"batch/v1", "Job", "jobs", "", true, ""},
	// certificates
	{"certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests", "csr", false, ""},
	{"certificates.k8s.io/v1", "ClusterTrustBundle", "clustertrustbundles", "", false, ""},
	{"certificates.k8s.io/v1", "PodCertificateRequest", "podcertificaterequests", "", true, ""},
	// coordination
	{"coordination.k8s.io/v1", "Lease", "leases", "", true, ""},
	{"coordination.k8s.io/v1beta1", "LeaseCandidate", "leasecandidates", "", true, ""},
	// discovery, events (events.k8s.io Events share the core key path)
	{"discovery.k8s.io/v1", "EndpointSlice", "endpointslices", "", true, ""},
	{"events.k8s.io/v1", "Event", "events", "ev", true, ""},
	// flowcontrol
	{"flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas", "", false, ""},
	{"flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", "", false, ""},
	// internal.apiserver
	{"internal.apiserver.k8s.io/v1alpha1", "StorageVersion", "storageversions", "", false, ""},
	// lifecycle
	{"lifecycle.k8s.io/v1alpha1", "EvictionRequest", "evictionrequests", "", true, ""},
	// networking
	{"networking.k8s.io/v1", "Ingress", "ingresses", "ing", true, "ingress"},
	{"networking.k8s.io/v1", "IngressClass", "ingressclasses", "", false, ""},
	{"networking.k8s.io/v1", "IPAddress", "ipaddresses", "ip", false, ""},
	{"networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", "netpol", true, ""},
	{"networking.k8s.io/v1", "ServiceCIDR", "servicecidrs", "", false, ""},
	// node, policy
	{"node.k8s.io/v1", "RuntimeClass", "runtimeclasses", "", false, ""},
	{"policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", "pdb", true, ""},
	// rbac
	{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", "", false, ""},
	{"rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", "", false, ""},
	{"rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", "", true, ""},
	{"rbac.authorization.k8s.io/v1", "Role", "roles", "", true, ""},
	// resource (dynamic resource allocation)
	{"resource.k8s.io/v1", "DeviceClass", "deviceclasses", "", false, ""},
	{"resource.k8s.io/v1", "DeviceTaintRule", "devicetaintrules", "", false, ""},
	{"resource.k8s.io/v1", "ResourceClaim", "resourceclaims", "", true, ""},
	{"resource.k8s.io/v1", "ResourceClaimTemplate", "resourceclaimtemplates", "", true, ""},
	{"resource.k8s.io/v1", "ResourceSlice", "resourceslices", "", false, ""},
	{"resource.k8s.io/v1alpha3", "ResourcePoolStatusRequest", "resourcepoolstatusrequests", "", false, ""},
	// scheduling
	{"scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", "pc", false, ""},
	{"scheduling.k8s.io/v1beta1", "PodGroup", "podgroups", "", true, ""},
	{"scheduling.k8s.io/v1beta1", "Workload", "workloads", "", true, ""},
	{"scheduling.k8s.io/v1alpha3", "CompositePodGroup", "compositepodgroups", "", true, ""},
	// storage
	{"storage.k8s.io/v1", "CSIDriver", "csidrivers", "", false, ""},
	{"storage.k8s.io/v1", "CSINode", "csinodes", "", false, ""},
	{"storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities", "", true, ""},
	{"storage.k8s.io/v1", "StorageClass", "storageclasses", "sc", false, ""},
	{"storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", "", false, ""},
	{"storage.k8s.io/v1", "VolumeAttributesClass", "volumeattributesclasses", "vac", false, ""},
	{"storagemigration.k8s.io/v1", "StorageVersionMigration", "storageversionmigrations", "", false, ""},
}

// resInternal are the records kube-apiserver keeps for itself. Their names
// are not resource names a user types, so Resolve skips them.
var resInternal = []Resource{
	// ClusterIP and NodePort allocator bitmaps: /registry/ranges/serviceips,
	// /registry/ranges/servicenodeports.
	{Version: "v1", Kind: "RangeAllocation", Plural: "rangeallocations", Singular: "rangeallocation", KeyPath: "ranges", Internal: true},
	// kube-apiserver endpoint reconciler leases (Endpoints on an etcd lease):
	// /registry/masterleases/<ip> and, for peer proxying, /registry/peerserverleases/<id>.
	{Version: "v1", Kind: "Endpoints", Plural: "masterleases", Singular: "masterlease", KeyPath: "masterleases", Internal: true},
	{Version: "v1", Kind: "Endpoints", Plural: "peerserverleases", Singular: "peerserverlease", KeyPath: "peerserverleases", Internal: true},
}

// resCompactRev is reported for compact_rev_key, which has no registry
// prefix and holds a decimal revision, not an object.
var resCompactRev = Resource{Plural: CompactRevKey, Singular: CompactRevKey, KeyPath: CompactRevKey, Internal: true}

// BuiltinResources returns a new table holding every built-in resource
// kube-apiserver 1.37 stores in etcd, plus its internal records.
func BuiltinResources() *ResourceTable {
	t := &ResourceTable{byPath: map[string]int{}}
	for _, b := range resBuiltin {
		gv, err := schema.ParseGroupVersion(b.gv)
		if err != nil {
			// The table above is a constant; a bad entry is a programming
			// error that TestBuiltinResourcesRegistered catches.
			continue
		}
		r := Resource{Group: gv.Group, Version: gv.Version, Kind: b.kind, Plural: b.plural,
			Singular: strings.ToLower(b.kind), Namespaced: b.ns, KeyPath: b.keyPath, versions: []string{gv.Version}}
		if b.short != "" {
			r.ShortNames = strings.Split(b.short, ",")
		}
		if r.KeyPath == "" {
			r.KeyPath = r.Plural
		}
		t.add(r)
	}
	for _, r := range resInternal {
		r.versions = []string{r.Version}
		t.add(r)
	}
	t.add(resCompactRev)
	return t
}

func (t *ResourceTable) add(r Resource) {
	if t.byPath == nil {
		t.byPath = map[string]int{}
	}
	t.res = append(t.res, r)
	if _, ok := t.byPath[r.KeyPath]; !ok {
		t.byPath[r.KeyPath] = len(t.res) - 1
	}
}

// All returns a copy of every resource in the table, built-in ones first in
// a fixed order, then custom ones in the order they were added.
func (t *ResourceTable) All() []Resource {
	out := make([]Resource, len(t.res))
	for i, r := range t.res {
		r.ShortNames = append([]string(nil), r.ShortNames...)
		r.versions = append([]string(nil), r.versions...)
		out[i] = r
	}
	return out
}

// AddCRD teaches the table the custom resource a CustomResourceDefinition
// defines. It accepts apiextensions.k8s.io/v1beta1 (how kube-apiserver
// stores CRDs) and v1 objects. The preferred version is the highest-priority
// served version in Kubernetes version order (v2 > v1 > v1beta2 > v1alpha1).
// Adding a CRD for a group and plural already known replaces the entry.
func (t *ResourceTable) AddCRD(crd *unstructured.Unstructured) error {
	if crd == nil {
		return fmt.Errorf("add CRD: %w: nil object", ErrBadCRD)
	}
	name := crd.GetName()
	if g := crd.GroupVersionKind().Group; crd.GetKind() != "CustomResourceDefinition" || g != "apiextensions.k8s.io" {
		return fmt.Errorf("add CRD %q: %w: object is %s", name, ErrBadCRD, crd.GroupVersionKind())
	}
	obj := crd.Object
	group, _, _ := unstructured.NestedString(obj, "spec", "group")
	plural, _, _ := unstructured.NestedString(obj, "spec", "names", "plural")
	kind, _, _ := unstructured.NestedString(obj, "spec", "names", "kind")
	singular, _, _ := unstructured.NestedString(obj, "spec", "names", "singular")
	shorts, _, _ := unstructured.NestedStringSlice(obj, "spec", "names", "shortNames")
	scope, _, _ := unstructured.NestedString(obj, "spec", "scope")
	switch {
	case group == "" || plural == "" || kind == "":
		return fmt.Errorf("add CRD %q: %w: spec.group, spec.names.plural and spec.names.kind are required", name, ErrBadCRD)
	case strings.Contains(group, "/") || strings.Contains(plural, "/"):
		return fmt.Errorf("add CRD %q: %w: group or plural contains a slash", name, ErrBadCRD)
	case scope != "" && scope != "Namespaced" && scope != "Cluster":
		return fmt.Errorf("add CRD %q: %w: unknown scope %q", name, ErrBadCRD, scope)
	}
	if singular == "" {
		singular = strings.ToLower(kind)
	}
	served := resCRDServedVersions(obj)
	if len(served) == 0 {
		return fmt.Errorf("add CRD %q: %w: no served version", name, ErrBadCRD)
	}
	sort.SliceStable(served, func(i, j int) bool {
		return version.CompareKubeAwareVersionStrings(served[i], served[j]) > 0
	})
	r := Resource{Group: group, Version: served[0], Kind: kind, Plural: plural, Singular: singular,
		ShortNames: shorts, Namespaced: scope != "Cluster", KeyPath: group + "/" + plural, Custom: true, versions: served}
	for i, old := range t.res {
		if old.KeyPath == r.KeyPath {
			t.res[i] = r
			return nil
		}
	}
	t.add(r)
	return nil
}

// resCRDServedVersions reads spec.versions[served] (v1, and v1beta1 when
// set) or else v1beta1's single spec.version.
func resCRDServedVersions(obj map[string]any) []string {
	var out []string
	vs, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
	for _, v := range vs {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		n, _ := m["name"].(string)
		served, ok := m["served"].(bool)
		if n != "" && (served || !ok) {
			out = append(out, n)
		}
	}
	if len(vs) == 0 {
		if v, _, _ := unstructured.NestedString(obj, "spec", "version"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Resolve finds the resource a kubectl-style type names: plural, singular,
// kind or short name ("deployments", "deployment", "Deployment", "deploy"),
// optionally qualified by group or version and group ("deployments.apps",
// "deployments.v1.apps", "certificates.cert-manager.io"). Matching is case
// insensitive. When several resources match, the core group wins, then a
// single built-in one over custom ones (as kubectl prefers them); otherwise
// the error wraps [ErrAmbiguousResource] and lists the candidates. An unknown
// type wraps [ErrUnknownResource].
func (t *ResourceTable) Resolve(typ string) (Resource, error) {
	q := strings.ToLower(strings.TrimSpace(typ))
	if q == "" {
		return Resource{}, fmt.Errorf("resolve resource type %q: %w", typ, ErrUnknownResource)
	}
	var cands []Resource
	for _, r := range t.res {
		if !r.Internal && resMatches(r, q) {
			cands = append(cands, r)
		}
	}
	switch len(cands) {
	case 0:
		return Resource{}, fmt.Errorf("resolve resource type %q: %w", typ, ErrUnknownResource)
	case 1:
		return cands[0], nil
	}
	for _, r := range cands {
		if r.Group == "" {
			return r, nil
		}
	}
	var builtin []Resource
	for _, r := range cands {
		if !r.Custom {
			builtin = append(builtin, r)
		}
	}
	if len(builtin) == 1 {
		return builtin[0], nil
	}
	names := make([]string, len(cands))
	for i, r := range cands {
		names[i] = r.GroupResource()
	}
	sort.Strings(names)
	return Resource{}, fmt.Errorf("resolve resource type %q: %w: could be %s", typ, ErrAmbiguousResource, strings.Join(names, ", "))
}

// resMatches reports whether lower-case q names r, bare or qualified.
func resMatches(r Resource, q string) bool {
	if resNameMatches(r, q) {
		return true
	}
	name, qual, ok := strings.Cut(q, ".")
	if !ok || !resNameMatches(r, name) {
		return false
	}
	group := strings.ToLower(r.Group)
	if qual == group {
		return true
	}
	for _, v := range r.versions {
		if group == "" && qual == v || group != "" && qual == v+"."+group {
			return true
		}
	}
	return false
}

func resNameMatches(r Resource, n string) bool {
	if n == r.Plural || n == r.Singular || n == strings.ToLower(r.Kind) {
		return true
	}
	for _, s := range r.ShortNames {
		if n == s {
			return true
		}
	}
	return false
}

// ForKey tells which resource, namespace and name an etcd key belongs to,
// with the registry prefix given ("/registry"; a trailing slash is ignored).
// The longest KeyPath wins ("services/specs" over a resource at "services").
// compact_rev_key, which has no prefix, and kube-apiserver's internal
// records map to entries marked Internal. A key under no known path, or
// whose shape does not fit the resource's scope, returns ok=false.
func (t *ResourceTable) ForKey(prefix, key string) (KeyInfo, bool) {
	if key == CompactRevKey {
		return KeyInfo{Resource: resCompactRev}, true
	}
	// Allocation-free: ls -A calls this for every key of the file.
	prefix = strings.TrimSuffix(prefix, "/")
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix || key[len(prefix)] != '/' {
		return KeyInfo{}, false
	}
	rest := key[len(prefix)+1:]
	i1 := strings.IndexByte(rest, '/')
	if i1 < 0 {
		return KeyInfo{}, false
	}
	// the path is one or two segments, the longest known one wins, and
	// at least one segment must follow it
	paths := [2]int{-1, i1}
	if j := strings.IndexByte(rest[i1+1:], '/'); j >= 0 {
		paths[0] = i1 + 1 + j
	}
	for _, end := range paths {
		if end < 0 {
			continue
		}
		i, ok := t.byPath[rest[:end]]
		if !ok {
			continue
		}
		r := &t.res[i]
		tail := rest[end+1:]
		first, second, two := strings.Cut(tail, "/")
		switch {
		case first == "" || two && (second == "" || strings.IndexByte(second, '/') >= 0):
			return KeyInfo{}, false
		case r.Namespaced && two:
			return KeyInfo{Resource: *r, Namespace: first, Name: second}, true
		case !r.Namespaced && !two:
			return KeyInfo{Resource: *r, Name: first}, true
		}
		return KeyInfo{}, false
	}
	return KeyInfo{}, false
}

// KeyPrefix returns the etcd key prefix that lists r's objects, in one
// namespace when namespace is set and r is namespaced: "/registry/deployments/payments/".
// The result always ends in a slash, so "pods" never matches "podtemplates".
func (t *ResourceTable) KeyPrefix(prefix string, r Resource, namespace string) string {
	p := strings.TrimSuffix(prefix, "/") + "/" + r.KeyPath + "/"
	if r.Namespaced && namespace != "" {
		p += namespace + "/"
	}
	return p
}
