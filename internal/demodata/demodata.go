package demodata

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// EncryptionKey is the demo's aescbc key for Secrets (base64
// "ZXRjZHNhZmUtZGVtby1rZXktMzItYnl0ZXMtbG9uZyE=", not a secret).
var EncryptionKey = kubestore.EncryptionKey{
	Resource: "secrets", Provider: "aescbc", Name: "key1", Secret: []byte("etcdsafe-demo-key-32-bytes-long!"),
}

// MasterLeaseID is the etcd lease the masterleases key is attached to.
const MasterLeaseID = 0x3f7e5c0de0d1e5a1

// WriterOptions returns the writer options the demo expects: Secrets
// encrypted with [EncryptionKey], fixed seed and deterministic IVs.
func WriterOptions() kubestore.Options {
	return kubestore.Options{Seed: 42, DeterministicCrypto: true, Encryption: []kubestore.EncryptionKey{EncryptionKey}}
}

// Object is one key the demo wrote.
type Object struct {
	Key       string
	Kind      string
	Namespace string
	Name      string
	// Revision is the object's last mod revision.
	Revision int64
	// Encrypted is true when the value is stored with k8s:enc:.
	Encrypted bool
}

// Summary describes what [Fill] wrote.
type Summary struct {
	// Objects lists live objects (not deleted), in write order.
	Objects []Object
	// UpdatedKey is the Deployment written three times; UpdateRevisions
	// holds its three mod revisions, oldest first.
	UpdatedKey      string
	UpdateRevisions []int64
	// DeletedKey is the ConfigMap created then deleted; DeletedCreated is
	// its create revision and DeletedRevision the tombstone's.
	DeletedKey      string
	DeletedCreated  int64
	DeletedRevision int64
	// SpecialKeys are keys that hold no ordinary object.
	SpecialKeys []string
	// CompactRevision is the revision compacted (and recorded in
	// compact_rev_key).
	CompactRevision int64
	// Revision is the store revision after the last write.
	Revision int64
}

type filler struct {
	ctx context.Context
	w   *kubestore.Writer
	c   *clientv3.Client
	s   Summary
	enc map[string]bool
}

// Fill writes the demo cluster through w, whose client must point at an
// empty etcd. It fails on the first error; what was written before stays.
func Fill(ctx context.Context, c *clientv3.Client, w *kubestore.Writer) (Summary, error) {
	f := &filler{ctx: ctx, w: w, c: c, enc: map[string]bool{"Secret": true}}
	if err := f.fill(); err != nil {
		return f.s, err
	}
	return f.s, nil
}

func (f *filler) create(obj runtime.Object, kind string) error {
	rev, err := f.w.Create(f.ctx, obj)
	if err != nil {
		return fmt.Errorf("demo %s: %w", kind, err)
	}
	return f.record(obj, kind, rev)
}

func (f *filler) record(obj runtime.Object, kind string, rev int64) error {
	key, err := f.w.KeyFor(obj)
	if err != nil {
		return err
	}
	m := obj.(metav1.Object)
	f.s.Objects = append(f.s.Objects, Object{Key: key, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), Revision: rev, Encrypted: f.enc[kind]})
	f.s.Revision = rev
	return nil
}

func (f *filler) cr(u *unstructured.Unstructured, plural string) error {
	rev, err := f.w.CreateCR(f.ctx, u, plural)
	if err != nil {
		return fmt.Errorf("demo %s: %w", u.GetKind(), err)
	}
	key, _ := kubestore.CRKey(f.w.Prefix(), u.GroupVersionKind().Group, plural, u.GetNamespace(), u.GetName())
	f.s.Objects = append(f.s.Objects, Object{Key: key, Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Revision: rev})
	f.s.Revision = rev
	return nil
}

func om(ns, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
}

func ptr[T any](v T) *T { return &v }

func container(name, image string, port int32) corev1.Container {
	c := corev1.Container{Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
		TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile}
	if port > 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	}
	return c
}

func podSpec(cs ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{Containers: cs, RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst,
		TerminationGracePeriodSeconds: ptr(int64(30)), SchedulerName: "default-scheduler", SecurityContext: &corev1.PodSecurityContext{}}
}

func (f *filler) fill() error {
	for _, ns := range []string{"kube-system", "default", "payments", "monitoring"} {
		n := &corev1.Namespace{ObjectMeta: om("", ns, map[string]string{"kubernetes.io/metadata.name": ns}),
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
		if err := f.create(n, "Namespace"); err != nil {
			return err
		}
	}
	// kube-apiserver's compactor: record the revision, then compact to it.
	f.s.CompactRevision = f.s.Revision
	if _, err := f.w.PutRaw(f.ctx, "compact_rev_key", []byte(strconv.FormatInt(f.s.CompactRevision, 10))); err != nil {
		return err
	}
	if _, err := f.c.Compact(f.ctx, f.s.CompactRevision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("demo compact: %w", err)
	}
	f.s.SpecialKeys = append(f.s.SpecialKeys, "compact_rev_key")
	rng := &corev1.RangeAllocation{ObjectMeta: metav1.ObjectMeta{}, Range: "10.96.0.0/12", Data: []byte{0x03, 0x00, 0x00, 0x10}}
	if _, err := f.w.PutObject(f.ctx, f.w.Prefix()+"/ranges/serviceips", rng); err != nil {
		return err
	}
	np := &corev1.RangeAllocation{Range: "30000-32767", Data: []byte{0x00, 0x00, 0x01}}
	if _, err := f.w.PutObject(f.ctx, f.w.Prefix()+"/ranges/servicenodeports", np); err != nil {
		return err
	}
	// A fixed lease ID (etcd would derive one from its member ID and the
	// clock) keeps the fixture's values identical across runs.
	lease, err := etcdserverpb.NewLeaseClient(f.c.ActiveConnection()).LeaseGrant(f.ctx, &etcdserverpb.LeaseGrantRequest{TTL: 60, ID: MasterLeaseID})
	if err != nil {
		return fmt.Errorf("demo lease: %w", err)
	}
	ml := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}}}} //nolint:staticcheck // Endpoints is what masterleases hold
	rev, err := f.w.PutObject(f.ctx, f.w.Prefix()+"/masterleases/192.0.2.10", ml, clientv3.WithLease(clientv3.LeaseID(lease.ID)))
	if err != nil {
		return err
	}
	f.s.Revision = rev
	f.s.SpecialKeys = append(f.s.SpecialKeys, f.w.Prefix()+"/ranges/serviceips", f.w.Prefix()+"/ranges/servicenodeports", f.w.Prefix()+"/masterleases/192.0.2.10")

	// Identity and RBAC.
	for _, ns := range []string{"kube-system", "default", "payments", "monitoring"} {
		if err := f.create(&corev1.ServiceAccount{ObjectMeta: om(ns, "default", nil)}, "ServiceAccount"); err != nil {
			return err
		}
	}
	objs := []struct {
		o    runtime.Object
		kind string
	}{
		{&corev1.ServiceAccount{ObjectMeta: om("monitoring", "prometheus", nil)}, "ServiceAccount"},
		{&rbacv1.ClusterRole{ObjectMeta: om("", "prometheus-read", nil), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "services", "endpoints"}, Verbs: []string{"get", "list", "watch"}}}}, "ClusterRole"},
		{&rbacv1.ClusterRoleBinding{ObjectMeta: om("", "prometheus-read", nil), RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "prometheus-read"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "monitoring"}}}, "ClusterRoleBinding"},
		{&rbacv1.Role{ObjectMeta: om("payments", "secret-reader", nil), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}, "Role"},
		{&rbacv1.RoleBinding{ObjectMeta: om("payments", "api-secrets", nil), RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "secret-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "payments"}}}, "RoleBinding"},
		// Config and secrets (Secrets are encrypted with aescbc).
		{&corev1.ConfigMap{ObjectMeta: om("payments", "api-config", nil), Data: map[string]string{"LOG_LEVEL": "info", "FEATURE_X": "true"}}, "ConfigMap"},
		{&corev1.ConfigMap{ObjectMeta: om("monitoring", "prometheus-config", nil), Data: map[string]string{"prometheus.yml": "global:\n  scrape_interval: 30s\n"}}, "ConfigMap"},
		{&corev1.ConfigMap{ObjectMeta: om("kube-system", "kube-root-ca.crt", nil), Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIDemo\n-----END CERTIFICATE-----\n"}}, "ConfigMap"},
		{&corev1.Secret{ObjectMeta: om("payments", "stripe", nil), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"apiKey": []byte("sk_test_demo_4eC39HqLyjWDarjtT1zdp7dc")}}, "Secret"},
		{&corev1.Secret{ObjectMeta: om("payments", "api-tls", nil), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\ndemo\n-----END CERTIFICATE-----\n"), "tls.key": []byte("-----BEGIN EC PRIVATE KEY-----\ndemo\n-----END EC PRIVATE KEY-----\n")}}, "Secret"},
		{&corev1.Secret{ObjectMeta: om("payments", "registry-pull", nil), Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.com":{"auth":"ZGVtbzpkZW1v"}}}`)}}, "Secret"},
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "prometheus-token", Annotations: map[string]string{"kubernetes.io/service-account.name": "prometheus"}}, Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("eyJhbGciOiJSUzI1NiJ9.demo.sig")}}, "Secret"},
	}
	for _, o := range objs {
		if err := f.create(o.o, o.kind); err != nil {
			return err
		}
	}
	if err := f.workloads(); err != nil {
		return err
	}
	if err := f.cluster(); err != nil {
		return err
	}
	return f.custom()
}

func (f *filler) workloads() error {
	api := map[string]string{"app": "api"}
	dep := &appsv1.Deployment{ObjectMeta: om("payments", "api", api), Spec: appsv1.DeploymentSpec{
		Replicas: ptr(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: api},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: api}, Spec: podSpec(container("api", "registry.example.com/payments/api:1.4.0", 8443))},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%"))}},
		RevisionHistoryLimit: ptr(int32(10)), ProgressDeadlineSeconds: ptr(int32(600))}}
	if err := f.create(dep, "Deployment"); err != nil {
		return err
	}
	key, _ := f.w.KeyFor(dep)
	f.s.UpdatedKey = key
	f.s.UpdateRevisions = []int64{f.s.Revision}
	depObj := len(f.s.Objects) - 1
	stored := f.w.Stored(key).(*appsv1.Deployment)
	// kubectl scale, then kubectl set image: three revisions.
	stored.Spec.Replicas = ptr(int32(5))
	rev, err := f.w.Update(f.ctx, stored, "kubectl")
	if err != nil {
		return err
	}
	f.s.UpdateRevisions = append(f.s.UpdateRevisions, rev)
	stored = f.w.Stored(key).(*appsv1.Deployment)
	stored.Spec.Template.Spec.Containers[0].Image = "registry.example.com/payments/api:1.4.1"
	if rev, err = f.w.Update(f.ctx, stored, "kubectl-set"); err != nil {
		return err
	}
	f.s.UpdateRevisions = append(f.s.UpdateRevisions, rev)
	f.s.Objects[depObj].Revision = rev
	f.s.Revision = rev
	depUID := f.w.Stored(key).(metav1.Object).GetUID()

	// The ReplicaSet the deployment controller would create, owned by it.
	rsLabels := map[string]string{"app": "api", "pod-template-hash": "7d9f8b6c5"}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api-7d9f8b6c5", Labels: rsLabels,
		Annotations:     map[string]string{"deployment.kubernetes.io/revision": "2", "deployment.kubernetes.io/desired-replicas": "5"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "api", UID: depUID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(5)), Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: podSpec(container("api", "registry.example.com/payments/api:1.4.1", 8443))}}}
	if err := f.create(rs, "ReplicaSet"); err != nil {
		return err
	}
	rsUID := f.w.Stored(mustKey(f.w, rs)).(metav1.Object).GetUID()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api-7d9f8b6c5-x2x7q", Labels: rsLabels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rsUID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: podSpec(container("api", "registry.example.com/payments/api:1.4.1", 8443))}
	pod.Spec.NodeName = "node-1"
	pod.Spec.ServiceAccountName = "default"
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-9zq4t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(420)), Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-9zq4t", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.17", HostIP: "192.0.2.21"}
	if err := f.create(pod, "Pod"); err != nil {
		return err
	}

	pg := map[string]string{"app": "postgres"}
	sts := &appsv1.StatefulSet{ObjectMeta: om("payments", "postgres", pg), Spec: appsv1.StatefulSetSpec{
		Replicas: ptr(int32(1)), ServiceName: "postgres", Selector: &metav1.LabelSelector{MatchLabels: pg},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pg}, Spec: podSpec(container("postgres", "postgres:16.4", 5432))},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}}}}}}
	ne := map[string]string{"app": "node-exporter"}
	ds := &appsv1.DaemonSet{ObjectMeta: om("monitoring", "node-exporter", ne), Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: ne},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: ne}, Spec: podSpec(container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", 9100))}}}
	jobTmpl := podSpec(container("settle", "busybox:1.36", 0))
	jobTmpl.RestartPolicy = corev1.RestartPolicyNever
	cj := &batchv1.CronJob{ObjectMeta: om("payments", "settle", nil), Spec: batchv1.CronJobSpec{Schedule: "*/15 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: jobTmpl}}}}}
	for _, o := range []struct {
		o    runtime.Object
		kind string
	}{{sts, "StatefulSet"}, {ds, "DaemonSet"}, {cj, "CronJob"}} {
		if err := f.create(o.o, o.kind); err != nil {
			return err
		}
	}
	cjUID := f.w.Stored(mustKey(f.w, cj)).(metav1.Object).GetUID()
	// A Job as the cronjob controller creates it: the server picks its uid
	// and sets controller-uid labels and selector from it.
	jobUID := f.w.NewUID()
	jl := map[string]string{"batch.kubernetes.io/controller-uid": string(jobUID), "batch.kubernetes.io/job-name": "settle-29400000",
		"controller-uid": string(jobUID), "job-name": "settle-29400000"}
	jt := podSpec(container("settle", "busybox:1.36", 0))
	jt.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "settle-29400000", UID: jobUID, Labels: jl,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "settle", UID: cjUID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: batchv1.JobSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": string(jobUID)}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: jl}, Spec: jt}, BackoffLimit: ptr(int32(6)), Completions: ptr(int32(1)), Parallelism: ptr(int32(1))}}
	if err := f.create(job, "Job"); err != nil {
		return err
	}

	// Services: ClusterIP, NodePort, headless, with EndpointSlices.
	svcs := []*corev1.Service{
		{ObjectMeta: om("payments", "api", nil), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: api,
			ClusterIP: "10.96.12.34", ClusterIPs: []string{"10.96.12.34"}, Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443), Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: om("payments", "api-public", nil), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: api,
			ClusterIP: "10.96.40.2", ClusterIPs: []string{"10.96.40.2"}, Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443), NodePort: 31443, Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: om("payments", "postgres", nil), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: pg,
			ClusterIP: "None", ClusterIPs: []string{"None"}, Ports: []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP}}}},
	}
	for _, s := range svcs {
		s.Spec.SessionAffinity = corev1.ServiceAffinityNone
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
		s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
		if err := f.create(s, "Service"); err != nil {
			return err
		}
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api-x1",
		Labels: map[string]string{"kubernetes.io/service-name": "api", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(8443)), Protocol: ptr(corev1.ProtocolTCP), Name: ptr("")}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.17"}, NodeName: ptr("node-1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "payments", Name: "api-7d9f8b6c5-x2x7q"}}}}
	if err := f.create(slice, "EndpointSlice"); err != nil {
		return err
	}

	// A ConfigMap created and deleted: its history ends in a tombstone.
	tmp := &corev1.ConfigMap{ObjectMeta: om("payments", "tmp-debug", nil), Data: map[string]string{"DEBUG": "1"}}
	crev, err := f.w.Create(f.ctx, tmp)
	if err != nil {
		return err
	}
	drev, err := f.w.Delete(f.ctx, tmp)
	if err != nil {
		return err
	}
	f.s.DeletedKey, f.s.DeletedCreated, f.s.DeletedRevision = mustKey(f.w, tmp), crev, drev
	f.s.Revision = drev
	return nil
}

func (f *filler) cluster() error {
	node := &corev1.Node{ObjectMeta: om("", "node-1", map[string]string{"kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux"}),
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.21"}},
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}}}
	nodeLease := &coordinationv1.Lease{ObjectMeta: om("kube-node-lease", "node-1", nil),
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr(int32(40))}}
	leader := &coordinationv1.Lease{ObjectMeta: om("kube-system", "kube-controller-manager", nil),
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("master-0_3f1c"), LeaseDurationSeconds: ptr(int32(15)), LeaseTransitions: ptr(int32(2))}}
	ev := &corev1.Event{ObjectMeta: om("payments", "api.18a2b3c4d5e6f708", nil),
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "payments", Name: "api", APIVersion: "apps/v1"},
		Reason:         "ScalingReplicaSet", Message: "Scaled up replica set api-7d9f8b6c5 from 3 to 5", Type: corev1.EventTypeNormal, Count: 1,
		Source: corev1.EventSource{Component: "deployment-controller"}, ReportingController: "deployment-controller"}
	pv := &corev1.PersistentVolume{ObjectMeta: om("", "pv-data-postgres-0", nil), Spec: corev1.PersistentVolumeSpec{
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pv/postgres-0"}},
		ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "payments", Name: "data-postgres-0", APIVersion: "v1"}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}
	for _, o := range []struct {
		o    runtime.Object
		kind string
	}{{node, "Node"}, {nodeLease, "Lease"}, {leader, "Lease"}, {ev, "Event"}, {pv, "PersistentVolume"}} {
		if err := f.create(o.o, o.kind); err != nil {
			return err
		}
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: om("payments", "data-postgres-0", map[string]string{"app": "postgres"}),
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: pv.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	return f.create(pvc, "PersistentVolumeClaim")
}

func (f *filler) custom() error {
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr(true)}}
	crds := []*apiextensionsv1.CustomResourceDefinition{
		{ObjectMeta: metav1.ObjectMeta{Name: "certificates.cert-manager.io"}, Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "cert-manager.io", Scope: apiextensionsv1.NamespaceScoped,
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "certificates", Singular: "certificate", Kind: "Certificate", ShortNames: []string{"cert", "certs"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: schema}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "clusterissuers.cert-manager.io"}, Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "cert-manager.io", Scope: apiextensionsv1.ClusterScoped,
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "clusterissuers", Singular: "clusterissuer", Kind: "ClusterIssuer"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: schema}}}},
	}
	for _, c := range crds {
		rev, err := f.w.CreateCRD(f.ctx, c)
		if err != nil {
			return fmt.Errorf("demo crd %s: %w", c.Name, err)
		}
		if err := f.record(c, "CustomResourceDefinition", rev); err != nil {
			return err
		}
	}
	apisvc := &apiregistrationv1.APIService{ObjectMeta: om("", "v1.cert-manager.io", map[string]string{"kube-aggregator.kubernetes.io/automanaged": "true"}),
		Spec: apiregistrationv1.APIServiceSpec{Group: "cert-manager.io", Version: "v1", GroupPriorityMinimum: 1000, VersionPriority: 100}}
	if err := f.create(apisvc, "APIService"); err != nil {
		return err
	}
	for _, name := range []string{"api-cert", "admin-cert"} {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
			"metadata": map[string]any{"name": name, "namespace": "payments"},
			"spec": map[string]any{"secretName": "api-tls", "dnsNames": []any{name + ".payments.example.com"},
				"issuerRef": map[string]any{"name": "letsencrypt", "kind": "ClusterIssuer"}}}}
		if err := f.cr(u, "certificates"); err != nil {
			return err
		}
	}
	ci := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
		"metadata": map[string]any{"name": "letsencrypt"},
		"spec":     map[string]any{"acme": map[string]any{"server": "https://acme-v02.api.letsencrypt.org/directory", "email": "ops@example.com"}}}}
	return f.cr(ci, "clusterissuers")
}

func mustKey(w *kubestore.Writer, obj runtime.Object) string {
	k, err := w.KeyFor(obj)
	if err != nil {
		panic(fmt.Sprintf("demodata: key of a built-in demo object: %v", err)) // programming error, not input
	}
	return k
}
