package decode

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// CleanOptions selects what [CreateReady] keeps. The zero value gives the
// strictest cleaning: every field the API server or a controller assigns is
// removed. docs/CLEANING.md lists each rule and the option that disables it.
type CleanOptions struct {
	// KeepStatus keeps .status (and StatefulSet volumeClaimTemplates[].status).
	// The API server ignores status on create for most kinds, so keeping it
	// only makes the YAML noisier; it is useful for forensic diffs.
	KeepStatus bool
	// KeepOwnerReferences keeps metadata.ownerReferences. By default they are
	// dropped: the owners' UIDs will not exist on a fresh cluster, and the
	// garbage collector deletes objects whose owners are all missing.
	KeepOwnerReferences bool
	// KeepClusterIP keeps Service spec.clusterIP and spec.clusterIPs. By
	// default they are dropped unless the Service is headless ("None"), so the
	// new cluster allocates fresh addresses from its own service CIDR.
	KeepClusterIP bool
	// KeepNodePorts keeps every Service spec.ports[].nodePort and
	// spec.healthCheckNodePort. By default only the ones the user asked for
	// (named in the last-applied-configuration annotation or owned in
	// managedFields) are kept, and auto-assigned ones are dropped.
	KeepNodePorts bool
	// KeepNodeName keeps Pod spec.nodeName and the PersistentVolumeClaim
	// annotation volume.kubernetes.io/selected-node. By default both are
	// dropped because the node may not exist on the target cluster.
	KeepNodeName bool
}

// Field and label names the server or its controllers set.
const (
	cleanLastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	cleanTokenPrefix = "kube-api-access-"
)

// cleanServerMetadata lists the metadata fields the API server owns, in the
// order CreateReady reports them.
var cleanServerMetadata = []string{
	"uid",
	"resourceVersion",
	"creationTimestamp",
	"generation",
	"managedFields",
	"selfLink",
	"deletionTimestamp",
	"deletionGracePeriodSeconds",
}

// CreateReady turns an object as the API server would serve it (apiVersion
// and kind set, any served version) into content that `kubectl create -f`
// accepts on a fresh cluster: it drops the metadata the server owns
// (uid, resourceVersion, creationTimestamp, generation, managedFields,
// selfLink, deletion fields), status, ownerReferences, and the per-kind fields
// the server or a controller assigns (Service cluster IPs and auto-assigned
// node ports, Pod nodeName and service-account token volumes, Job generated
// selectors, PV claimRef UIDs, ...). docs/CLEANING.md documents every rule.
//
// CreateReady modifies obj in place and returns the paths it removed, in the
// order it removed them, for --explain output. A path is dotted
// ("metadata.uid", "spec.ports[0].nodePort"); a key that is not a plain
// identifier is quoted in brackets
// (`metadata.annotations["deployment.kubernetes.io/revision"]`); list indexes
// refer to positions in the input. CreateReady never panics: fields of an
// unexpected shape (a spec that is a string, ports that are not a list) are
// left as they are. A nil obj returns nil. Custom resources get only the
// generic metadata and status rules.
func CreateReady(obj *unstructured.Unstructured, opts CleanOptions) []string {
	if obj == nil || obj.Object == nil {
		return nil
	}
	c := &cleaner{opts: opts, root: obj.Object}
	c.run()
	return c.removed
}

// cleaner holds the state of one CreateReady call.
type cleaner struct {
	opts    CleanOptions
	root    map[string]any
	removed []string
	// managedFields is read before the generic rules drop it: Service rules
	// use it to tell requested node ports from allocated ones.
	managedFields []any
}

func (c *cleaner) run() {
	group, kind := cleanGroupKind(c.root)
	if md, ok := c.root["metadata"].(map[string]any); ok {
		c.managedFields, _ = md["managedFields"].([]any)
		for _, k := range cleanServerMetadata {
			c.drop(md, k, "metadata")
		}
		if !c.opts.KeepOwnerReferences {
			c.drop(md, "ownerReferences", "metadata")
		}
	}
	if !c.opts.KeepStatus {
		c.drop(c.root, "status", "")
	}
	switch group + "/" + kind {
	case "/Service":
		c.service()
	case "/Pod":
		c.pod()
	case "/ServiceAccount":
		c.serviceAccount()
	case "/Secret":
		c.secret()
	case "/Namespace":
		c.namespace()
	case "/PersistentVolume":
		c.persistentVolume()
	case "/PersistentVolumeClaim":
		c.persistentVolumeClaim()
	case "batch/Job":
		c.job()
	case "apps/Deployment":
		c.dropAnnotations("deployment.kubernetes.io/revision")
	case "apps/ReplicaSet":
		c.dropAnnotations("deployment.kubernetes.io/revision",
			"deployment.kubernetes.io/revision-history",
			"deployment.kubernetes.io/desired-replicas",
			"deployment.kubernetes.io/max-replicas")
	case "apps/DaemonSet":
		c.dropAnnotations("deprecated.daemonset.template.generation")
	case "apps/StatefulSet":
		c.statefulSet()
	}
}

// cleanGroupKind returns the API group ("" for core) and kind of obj, or
// empty strings when they are missing or not strings.
func cleanGroupKind(obj map[string]any) (group, kind string) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ = obj["kind"].(string)
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		group = apiVersion[:i]
	}
	return group, kind
}

// drop deletes m[key] when present and records parent.key as removed.
func (c *cleaner) drop(m map[string]any, key, parent string) bool {
	if m == nil {
		return false
	}
	if _, ok := m[key]; !ok {
		return false
	}
	delete(m, key)
	c.removed = append(c.removed, cleanPath(parent, key))
	return true
}

// spec returns the object's spec when it is a map.
func (c *cleaner) spec() (map[string]any, bool) {
	m, ok := c.root["spec"].(map[string]any)
	return m, ok
}

// metaMap returns metadata[field] (labels or annotations) when both are maps.
func (c *cleaner) metaMap(field string) (map[string]any, map[string]any) {
	md, ok := c.root["metadata"].(map[string]any)
	if !ok {
		return nil, nil
	}
	m, _ := md[field].(map[string]any)
	return md, m
}

func (c *cleaner) dropAnnotations(keys ...string) {
	c.dropMetaKeys("annotations", keys...)
}

func (c *cleaner) dropLabels(keys ...string) {
	c.dropMetaKeys("labels", keys...)
}

// dropMetaKeys removes keys from metadata.<field>, and the map itself when
// that leaves it empty.
func (c *cleaner) dropMetaKeys(field string, keys ...string) {
	md, _ := c.root["metadata"].(map[string]any)
	c.dropKeys(md, field, "metadata", keys...)
}

// dropKeys removes keys from the map parent[field], recording each one, and
// removes parent[field] too when it became empty.
func (c *cleaner) dropKeys(parent map[string]any, field, parentPath string, keys ...string) {
	if parent == nil {
		return
	}
	m, ok := parent[field].(map[string]any)
	if !ok {
		return
	}
	path := cleanPath(parentPath, field)
	n := len(m)
	for _, k := range keys {
		c.drop(m, k, path)
	}
	if n > 0 && len(m) == 0 {
		delete(parent, field)
	}
}

// service clears allocated addresses and ports.
func (c *cleaner) service() {
	spec, ok := c.spec()
	if !ok {
		return
	}
	if !c.opts.KeepClusterIP && !cleanHeadless(spec) {
		c.drop(spec, "clusterIP", "spec")
		c.drop(spec, "clusterIPs", "spec")
	}
	if c.opts.KeepNodePorts {
		return
	}
	want := c.requestedNodePorts()
	if ports, ok := spec["ports"].([]any); ok {
		for i, p := range ports {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if _, has := pm["nodePort"]; !has || want.has(pm) {
				continue
			}
			c.drop(pm, "nodePort", cleanIndex("spec.ports", i))
		}
	}
	if _, has := spec["healthCheckNodePort"]; has && !want.healthCheck {
		c.drop(spec, "healthCheckNodePort", "spec")
	}
}

// cleanHeadless reports whether a Service spec asks for no cluster IP.
func cleanHeadless(spec map[string]any) bool {
	if ip, ok := spec["clusterIP"].(string); ok {
		return ip == "None"
	}
	if ips, ok := spec["clusterIPs"].([]any); ok && len(ips) > 0 {
		s, _ := ips[0].(string)
		return s == "None"
	}
	return false
}

// cleanNodePorts records which node ports a user asked for, as Velero's
// service restore action does: by port name (or, for an unnamed port, by
// value) in the last-applied-configuration annotation, or by port/protocol
// key in any managedFields entry (server-side apply).
type cleanNodePorts struct {
	named       map[string]bool
	unnamed     map[int64]bool
	managed     map[[2]string]bool // {port, protocol} whose f:nodePort someone owns
	healthCheck bool
}

func (c *cleaner) requestedNodePorts() cleanNodePorts {
	w := cleanNodePorts{named: map[string]bool{}, unnamed: map[int64]bool{}, managed: map[[2]string]bool{}}
	if _, ann := c.metaMap("annotations"); ann != nil {
		if s, ok := ann[cleanLastApplied].(string); ok {
			var applied map[string]any
			if json.Unmarshal([]byte(s), &applied) == nil {
				w.addApplied(applied)
			}
		}
	}
	for _, e := range c.managedFields {
		em, _ := e.(map[string]any)
		fields, _ := em["fieldsV1"].(map[string]any)
		fspec, _ := fields["f:spec"].(map[string]any)
		if fspec == nil {
			continue
		}
		if _, ok := fspec["f:healthCheckNodePort"]; ok {
			w.healthCheck = true
		}
		fports, _ := fspec["f:ports"].(map[string]any)
		for k, v := range fports {
			vm, _ := v.(map[string]any)
			if _, ok := vm["f:nodePort"]; !ok {
				continue
			}
			var key struct {
				Port     json.Number `json:"port"`
				Protocol string      `json:"protocol"`
			}
			if json.Unmarshal([]byte(strings.TrimPrefix(k, "k:")), &key) != nil {
				continue
			}
			w.managed[[2]string{key.Port.String(), cleanProtocol(key.Protocol)}] = true
		}
	}
	return w
}

func (w *cleanNodePorts) addApplied(applied map[string]any) {
	spec, _ := applied["spec"].(map[string]any)
	if v, ok := cleanInt(spec["healthCheckNodePort"]); ok && v != 0 {
		w.healthCheck = true
	}
	ports, _ := spec["ports"].([]any)
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		np, ok := cleanInt(pm["nodePort"])
		if !ok || np <= 0 {
			continue
		}
		if name, ok := pm["name"].(string); ok && name != "" {
			w.named[name] = true
		} else {
			w.unnamed[np] = true
		}
	}
}

// has reports whether the served port pm carries a node port the user asked
// for.
func (w cleanNodePorts) has(pm map[string]any) bool {
	if name, ok := pm["name"].(string); ok && name != "" {
		if w.named[name] {
			return true
		}
	} else if np, ok := cleanInt(pm["nodePort"]); ok && w.unnamed[np] {
		return true
	}
	port, ok := cleanInt(pm["port"])
	if !ok {
		return false
	}
	proto, _ := pm["protocol"].(string)
	return w.managed[[2]string{strconv.FormatInt(port, 10), cleanProtocol(proto)}]
}

func cleanProtocol(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

// cleanInt reads an integer the way JSON decoders may have stored it.
func cleanInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// pod clears scheduling results and what admission plugins inject.
func (c *cleaner) pod() {
	spec, ok := c.spec()
	if !ok {
		return
	}
	if !c.opts.KeepNodeName {
		c.drop(spec, "nodeName", "spec")
	}
	// The Priority admission plugin computes both from priorityClassName and
	// rejects a create whose values differ from what it computed.
	c.drop(spec, "priority", "spec")
	c.drop(spec, "preemptionPolicy", "spec")
	// Pod validation forbids ephemeral containers on create; they can only be
	// added through the ephemeralcontainers subresource.
	c.drop(spec, "ephemeralContainers", "spec")

	saName, _ := spec["serviceAccountName"].(string)
	if saName == "" {
		saName, _ = spec["serviceAccount"].(string)
	}
	if saName == "" {
		saName = "default"
	}
	vols, ok := spec["volumes"].([]any)
	if !ok {
		return
	}
	gone := map[string]bool{}
	kept := make([]any, 0, len(vols))
	for i, v := range vols {
		vm, _ := v.(map[string]any)
		name, _ := vm["name"].(string)
		_, projected := vm["projected"].(map[string]any)
		_, secret := vm["secret"].(map[string]any)
		if (projected && strings.HasPrefix(name, cleanTokenPrefix)) ||
			(secret && strings.HasPrefix(name, saName+"-token-")) {
			gone[name] = true
			c.removed = append(c.removed, cleanIndex("spec.volumes", i))
			continue
		}
		kept = append(kept, v)
	}
	if len(gone) == 0 {
		return
	}
	if len(kept) == 0 {
		delete(spec, "volumes")
	} else {
		spec["volumes"] = kept
	}
	for _, list := range []string{"initContainers", "containers"} {
		ctrs, _ := spec[list].([]any)
		for i, ctr := range ctrs {
			cm, _ := ctr.(map[string]any)
			mounts, ok := cm["volumeMounts"].([]any)
			if !ok {
				continue
			}
			path := cleanIndex("spec."+list, i) + ".volumeMounts"
			keptMounts := make([]any, 0, len(mounts))
			for j, m := range mounts {
				mm, _ := m.(map[string]any)
				if name, _ := mm["name"].(string); gone[name] {
					c.removed = append(c.removed, cleanIndex(path, j))
					continue
				}
				keptMounts = append(keptMounts, m)
			}
			switch {
			case len(keptMounts) == len(mounts):
			case len(keptMounts) == 0:
				delete(cm, "volumeMounts")
			default:
				cm["volumeMounts"] = keptMounts
			}
		}
	}
}

// job removes the selector and labels the API server generates from the
// Job's UID (unless the user chose spec.manualSelector), since validation
// requires them to match the new UID.
func (c *cleaner) job() {
	spec, ok := c.spec()
	if !ok {
		return
	}
	if manual, _ := spec["manualSelector"].(bool); manual {
		return
	}
	uidLabels := []string{"batch.kubernetes.io/controller-uid", "controller-uid"}
	generated := append(uidLabels, "batch.kubernetes.io/job-name", "job-name")
	// Defaulting makes the Job's own labels the template's labels map when
	// the Job has none, so the generated labels usually show up there too.
	c.dropLabels(generated...)
	if sel, ok := spec["selector"].(map[string]any); ok {
		c.dropKeys(sel, "matchLabels", "spec.selector", uidLabels...)
		if len(sel) == 0 {
			delete(spec, "selector")
		}
	}
	tmpl, _ := spec["template"].(map[string]any)
	md, _ := tmpl["metadata"].(map[string]any)
	c.dropKeys(md, "labels", "spec.template.metadata", generated...)
}

// serviceAccount drops references to legacy auto-generated token Secrets
// (<name>-token-xxxxx), which the token controller no longer recreates.
func (c *cleaner) serviceAccount() {
	md, _ := c.root["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	secrets, ok := c.root["secrets"].([]any)
	if !ok || name == "" {
		return
	}
	kept := make([]any, 0, len(secrets))
	for i, s := range secrets {
		sm, _ := s.(map[string]any)
		if n, _ := sm["name"].(string); strings.HasPrefix(n, name+"-token-") {
			c.removed = append(c.removed, cleanIndex("secrets", i))
			continue
		}
		kept = append(kept, s)
	}
	switch {
	case len(kept) == len(secrets):
	case len(kept) == 0:
		delete(c.root, "secrets")
	default:
		c.root["secrets"] = kept
	}
}

// secret empties a service-account token Secret so the token controller
// fills it again for the new ServiceAccount; a stale UID annotation would make
// the controller delete the Secret.
func (c *cleaner) secret() {
	if t, _ := c.root["type"].(string); t != "kubernetes.io/service-account-token" {
		return
	}
	c.dropAnnotations("kubernetes.io/service-account.uid")
	c.dropLabels("kubernetes.io/legacy-token-last-used", "kubernetes.io/legacy-token-invalid-since")
	c.dropKeys(c.root, "data", "", "token", "ca.crt")
}

// namespace drops what the API server sets on every Namespace.
func (c *cleaner) namespace() {
	c.dropLabels("kubernetes.io/metadata.name")
	spec, ok := c.spec()
	if !ok {
		return
	}
	fins, ok := spec["finalizers"].([]any)
	if !ok {
		return
	}
	kept := make([]any, 0, len(fins))
	for i, f := range fins {
		if s, _ := f.(string); s == "kubernetes" {
			c.removed = append(c.removed, cleanIndex("spec.finalizers", i))
			continue
		}
		kept = append(kept, f)
	}
	switch {
	case len(kept) == len(fins):
	case len(kept) == 0:
		delete(spec, "finalizers")
		if len(spec) == 0 {
			delete(c.root, "spec")
		}
	default:
		spec["finalizers"] = kept
	}
}

// persistentVolume keeps the claimRef's namespace and name, so the PV stays
// reserved for the same claim, but drops its UID and resourceVersion: a UID
// that no claim has makes the PV controller treat the volume as released and
// apply its reclaim policy (Delete would destroy the data).
func (c *cleaner) persistentVolume() {
	c.dropAnnotations("pv.kubernetes.io/bound-by-controller")
	spec, ok := c.spec()
	if !ok {
		return
	}
	if ref, ok := spec["claimRef"].(map[string]any); ok {
		c.drop(ref, "uid", "spec.claimRef")
		c.drop(ref, "resourceVersion", "spec.claimRef")
	}
}

// persistentVolumeClaim drops the binding annotations the PV controller sets,
// as Velero's PVC restore action does. spec.volumeName is kept: dropping it
// would let a new, empty volume be provisioned in place of the data.
func (c *cleaner) persistentVolumeClaim() {
	keys := []string{
		"pv.kubernetes.io/bind-completed",
		"pv.kubernetes.io/bound-by-controller",
		"volume.kubernetes.io/storage-provisioner",
		"volume.beta.kubernetes.io/storage-provisioner",
	}
	if !c.opts.KeepNodeName {
		keys = append(keys, "volume.kubernetes.io/selected-node")
	}
	c.dropAnnotations(keys...)
}

// statefulSet drops the status the API server shows inside claim templates.
func (c *cleaner) statefulSet() {
	if c.opts.KeepStatus {
		return
	}
	spec, ok := c.spec()
	if !ok {
		return
	}
	tmpls, _ := spec["volumeClaimTemplates"].([]any)
	for i, t := range tmpls {
		tm, _ := t.(map[string]any)
		c.drop(tm, "status", cleanIndex("spec.volumeClaimTemplates", i))
	}
}

var cleanPlainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// cleanPath appends key to a dotted path, quoting keys that are not plain
// identifiers.
func cleanPath(parent, key string) string {
	if !cleanPlainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func cleanIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}
