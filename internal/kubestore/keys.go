package kubestore

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kindInfo is what the writer needs to know about a built-in kind.
type kindInfo struct {
	path       string // key path under the prefix, e.g. "services/specs"
	namespaced bool
	generation bool // the registry strategy sets metadata.generation
}

// kinds is the writer's own resource table. It is kept apart from the
// product's table on purpose: tests that read what this package wrote
// cross-check the product's key mapping against an independent source.
var kinds = map[schema.GroupKind]kindInfo{
	{Group: "", Kind: "Namespace"}:                                                  {"namespaces", false, false},
	{Group: "", Kind: "ServiceAccount"}:                                             {"serviceaccounts", true, false},
	{Group: "", Kind: "ConfigMap"}:                                                  {"configmaps", true, false},
	{Group: "", Kind: "Secret"}:                                                     {"secrets", true, false},
	{Group: "", Kind: "Service"}:                                                    {"services/specs", true, false},
	{Group: "", Kind: "Endpoints"}:                                                  {"services/endpoints", true, false},
	{Group: "", Kind: "Node"}:                                                       {"minions", false, false},
	{Group: "", Kind: "Pod"}:                                                        {"pods", true, true},
	{Group: "", Kind: "PersistentVolume"}:                                           {"persistentvolumes", false, false},
	{Group: "", Kind: "PersistentVolumeClaim"}:                                      {"persistentvolumeclaims", true, false},
	{Group: "", Kind: "Event"}:                                                      {"events", true, false},
	{Group: "", Kind: "ReplicationController"}:                                      {"controllers", true, true},
	{Group: "", Kind: "LimitRange"}:                                                 {"limitranges", true, false},
	{Group: "", Kind: "ResourceQuota"}:                                              {"resourcequotas", true, false},
	{Group: "apps", Kind: "Deployment"}:                                             {"deployments", true, true},
	{Group: "apps", Kind: "ReplicaSet"}:                                             {"replicasets", true, true},
	{Group: "apps", Kind: "StatefulSet"}:                                            {"statefulsets", true, true},
	{Group: "apps", Kind: "DaemonSet"}:                                              {"daemonsets", true, true},
	{Group: "apps", Kind: "ControllerRevision"}:                                     {"controllerrevisions", true, false},
	{Group: "batch", Kind: "Job"}:                                                   {"jobs", true, true},
	{Group: "batch", Kind: "CronJob"}:                                               {"cronjobs", true, true},
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:                              {"endpointslices", true, true},
	{Group: "networking.k8s.io", Kind: "Ingress"}:                                   {"ingress", true, true},
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:                             {"networkpolicies", true, true},
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                 {"ipaddresses", false, false},
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                               {"servicecidrs", false, false},
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:                              {"roles", true, false},
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:                       {"rolebindings", true, false},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                       {"clusterroles", false, false},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                {"clusterrolebindings", false, false},
	{Group: "coordination.k8s.io", Kind: "Lease"}:                                   {"leases", true, false},
	{Group: "events.k8s.io", Kind: "Event"}:                                         {"events", true, false},
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                 {"storageclasses", false, false},
	{Group: "policy", Kind: "PodDisruptionBudget"}:                                  {"poddisruptionbudgets", true, true},
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                             {"priorityclasses", false, false},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:               {"apiextensions.k8s.io/customresourcedefinitions", false, true},
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                           {"apiregistration.k8s.io/apiservices", false, false},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}: {"validatingwebhookconfigurations", false, true},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:   {"mutatingwebhookconfigurations", false, true},
}

// lookupKind returns the table entry for gk.
func lookupKind(gk schema.GroupKind) (kindInfo, error) {
	ki, ok := kinds[gk]
	if !ok {
		return kindInfo{}, fmt.Errorf("kind %s: not in the writer's resource table", gk)
	}
	return ki, nil
}

// Key returns the etcd key kube-apiserver uses for a built-in object.
func Key(prefix string, gk schema.GroupKind, namespace, name string) (string, error) {
	ki, err := lookupKind(gk)
	if err != nil {
		return "", err
	}
	return joinKey(prefix, ki.path, ki.namespaced, gk.String(), namespace, name)
}

// CRKey returns the etcd key of a custom resource: <prefix>/<group>/<plural>/[<ns>/]<name>.
func CRKey(prefix, group, plural, namespace, name string) (string, error) {
	if group == "" || plural == "" {
		return "", fmt.Errorf("custom resource %q: empty group or plural", name)
	}
	return joinKey(prefix, group+"/"+plural, namespace != "", plural+"."+group, namespace, name)
}

func joinKey(prefix, path string, namespaced bool, what, namespace, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: empty name", what)
	}
	if namespaced && namespace == "" {
		return "", fmt.Errorf("%s %q: namespaced but no namespace", what, name)
	}
	if !namespaced && namespace != "" {
		return "", fmt.Errorf("%s %q: cluster-scoped but namespace %q given", what, name, namespace)
	}
	if namespaced {
		return prefix + "/" + path + "/" + namespace + "/" + name, nil
	}
	return prefix + "/" + path + "/" + name, nil
}
