package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Workload names what ApplyWorkload created.
type Workload struct {
	// Namespaces are the application namespaces.
	Namespaces []string
	// Deleted is the ConfigMap created then deleted, as namespace/name.
	Deleted string
	// Writes counts the API calls that changed something.
	Writes int
}

// WorkloadOptions tunes ApplyWorkload.
type WorkloadOptions struct {
	// SkipBigConfigMap leaves out the ConfigMap near 1 MiB, for snapshots
	// small enough to commit.
	SkipBigConfigMap bool
}

// WidgetGVR and ClusterWidgetGVR are the workload's custom resources.
var (
	WidgetGVR        = schema.GroupVersionResource{Group: "e2e.etcdsafe.io", Version: "v1", Resource: "widgets"}
	ClusterWidgetGVR = schema.GroupVersionResource{Group: "e2e.etcdsafe.io", Version: "v1", Resource: "clusterwidgets"}
)

// ApplyWorkload creates a realistic set of objects through client-go: every
// kind an operator restores, Deployments updated several times, a ConfigMap
// near 1 MB, Secrets of several types (encrypted at rest), CRDs with
// namespaced and cluster-scoped custom resources, and one deleted object.
func ApplyWorkload(ctx context.Context, cfg *rest.Config, o WorkloadOptions) (*Workload, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apiextensions client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	w := &Workload{Namespaces: []string{"payments", "shop", "monitoring"}}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("workload: %s: %w", what, err)
		}
		w.Writes++
		return nil
	}
	ptr := func(i int32) *int32 { return &i }

	if err := step("priority class", create(ctx, cs.SchedulingV1().PriorityClasses().Create, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: "business-critical"}, Value: 100000, Description: "e2e"})); err != nil {
		return nil, err
	}
	for i, name := range []string{"e2e-node-1", "e2e-node-2"} {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "node-role.kubernetes.io/worker": ""}},
			Spec:       corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", i), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", i)}},
		}
		if err := step("node "+name, create(ctx, cs.CoreV1().Nodes().Create, n)); err != nil {
			return nil, err
		}
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-node-lease"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: ptr(40), RenewTime: &metav1.MicroTime{Time: time.Now().Truncate(time.Microsecond)}}}
		if err := step("node lease "+name, create(ctx, cs.CoordinationV1().Leases("kube-node-lease").Create, lease)); err != nil {
			return nil, err
		}
	}
	hostPath := corev1.HostPathDirectoryOrCreate
	for i := range 2 {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pv-local-%d", i), Labels: map[string]string{"type": "local"}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              "manual",
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/mnt/data%d", i), Type: &hostPath}},
			},
		}
		if err := step("pv", create(ctx, cs.CoreV1().PersistentVolumes().Create, pv)); err != nil {
			return nil, err
		}
	}
	if err := applyCRDs(ctx, ext, dyn, w); err != nil {
		return nil, err
	}
	if err := step("cluster role", create(ctx, cs.RbacV1().ClusterRoles().Create, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-reader", Labels: map[string]string{"rbac.example.com/aggregate": "true"}},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"e2e.etcdsafe.io"}, Resources: []string{"widgets"}, Verbs: []string{"get", "list", "watch"}}},
	})); err != nil {
		return nil, err
	}
	if err := step("cluster role binding", create(ctx, cs.RbacV1().ClusterRoleBindings().Create, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-reader-ops"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "widget-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "ops"}},
	})); err != nil {
		return nil, err
	}
	ignore := admissionv1.Ignore
	none := admissionv1.SideEffectClassNone
	port := int32(443)
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.etcdsafe.io/webhook": "never-matches"}}
	hook := admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Namespace: "nowhere", Name: "no-such-webhook", Port: &port}}
	rules := []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create},
		Rule: admissionv1.Rule{APIGroups: []string{"e2e.etcdsafe.io"}, APIVersions: []string{"v1"}, Resources: []string{"widgets"}}}}
	if err := step("validating webhook", create(ctx, cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create, &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-policy"},
		Webhooks: []admissionv1.ValidatingWebhook{{Name: "validate.widgets.e2e.etcdsafe.io", ClientConfig: hook, Rules: rules,
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}, ObjectSelector: never}},
	})); err != nil {
		return nil, err
	}
	if err := step("mutating webhook", create(ctx, cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create, &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-defaults"},
		Webhooks: []admissionv1.MutatingWebhook{{Name: "default.widgets.e2e.etcdsafe.io", ClientConfig: hook, Rules: rules,
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}, ObjectSelector: never}},
	})); err != nil {
		return nil, err
	}
	pathType := networkingv1.PathTypePrefix
	if err := step("ingress class", create(ctx, cs.NetworkingV1().IngressClasses().Create, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}})); err != nil {
		return nil, err
	}

	for nsi, ns := range w.Namespaces {
		if err := step("namespace "+ns, create(ctx, cs.CoreV1().Namespaces().Create, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": ns, "pod-security.kubernetes.io/enforce": "baseline"}}})); err != nil {
			return nil, err
		}
		// No controller-manager runs: create what its controllers would, so
		// that Pods pass the ServiceAccount admission plugin.
		for _, sa := range []string{"default", "app"} {
			if err := step("service account", create(ctx, cs.CoreV1().ServiceAccounts(ns).Create, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}})); err != nil {
				return nil, err
			}
		}
		labels := map[string]string{"app": "api", "tier": "backend"}
		tmpl := corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
			Spec: corev1.PodSpec{
				ServiceAccountName: "app",
				Containers: []corev1.Container{{
					Name: "api", Image: "registry.example.com/" + ns + "/api:1.4.0",
					Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:       []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
				}},
			},
		}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Labels: labels},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr(2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
		}
		if err := step("deployment", create(ctx, cs.AppsV1().Deployments(ns).Create, dep)); err != nil {
			return nil, err
		}
		for i, img := range []string{"1.4.1", "1.4.2", "1.5.0"} {
			err := retryUpdate(ctx, func() error {
				d, err := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
				if err != nil {
					return err
				}
				d.Spec.Replicas = ptr(int32(3 + i))
				d.Spec.Template.Spec.Containers[0].Image = "registry.example.com/" + ns + "/api:" + img
				_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
				return err
			})
			if err := step("update deployment", err); err != nil {
				return nil, err
			}
		}
		if err := step("deployment status", retryUpdate(ctx, func() error {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 5, ReadyReplicas: 5, AvailableReplicas: 5, UpdatedReplicas: 5}
			_, err = cs.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
			return err
		})); err != nil {
			return nil, err
		}
		dbLabels := map[string]string{"app": "db"}
		if err := step("headless service", create(ctx, cs.CoreV1().Services(ns).Create, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: dbLabels},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: dbLabels, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
		})); err != nil {
			return nil, err
		}
		if err := step("clusterip service", create(ctx, cs.CoreV1().Services(ns).Create, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Labels: labels},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		})); err != nil {
			return nil, err
		}
		if err := step("nodeport service", create(ctx, cs.CoreV1().Services(ns).Create, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "api-public"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: int32(30080 + nsi)},
				{Name: "metrics", Port: 9090}}},
		})); err != nil {
			return nil, err
		}
		if err := step("statefulset", create(ctx, cs.AppsV1().StatefulSets(ns).Create, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: dbLabels},
			Spec: appsv1.StatefulSetSpec{ServiceName: "db", Replicas: ptr(1), Selector: &metav1.LabelSelector{MatchLabels: dbLabels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: dbLabels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pg", Image: "postgres:17",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql"}}}}}},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: strPtr("manual"),
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}},
		})); err != nil {
			return nil, err
		}
		if err := step("pvc", create(ctx, cs.CoreV1().PersistentVolumeClaims(ns).Create, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data-db-0", Labels: dbLabels},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: strPtr("manual"),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		})); err != nil {
			return nil, err
		}
		agentLabels := map[string]string{"app": "log-agent"}
		if err := step("daemonset", create(ctx, cs.AppsV1().DaemonSets(ns).Create, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "log-agent"},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: agentLabels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: agentLabels}, Spec: corev1.PodSpec{
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers:  []corev1.Container{{Name: "agent", Image: "fluent/fluent-bit:3.2"}}}}},
		})); err != nil {
			return nil, err
		}
		jobSpec := batchv1.JobSpec{BackoffLimit: ptr(2), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers: []corev1.Container{{Name: "migrate", Image: "registry.example.com/" + ns + "/migrate:7", Args: []string{"--to", "latest"}}}}}}
		if err := step("cronjob", create(ctx, cs.BatchV1().CronJobs(ns).Create, &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "nightly-report"},
			Spec: batchv1.CronJobSpec{Schedule: "17 3 * * *", TimeZone: strPtr("Europe/Berlin"), ConcurrencyPolicy: batchv1.ForbidConcurrent,
				JobTemplate: batchv1.JobTemplateSpec{Spec: jobSpec}},
		})); err != nil {
			return nil, err
		}
		if err := step("job", create(ctx, cs.BatchV1().Jobs(ns).Create, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate-7"}, Spec: jobSpec})); err != nil {
			return nil, err
		}
		if err := step("configmap", create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "api-config", Labels: labels},
			Data:       map[string]string{"app.yaml": "listen: :8080\nlog: json\n", "feature.flags": "checkout=true\n"},
			BinaryData: map[string][]byte{"logo.bin": {0, 1, 2, 0xfe, 0xff}},
		})); err != nil {
			return nil, err
		}
		if nsi == 0 {
			// near the 1 MiB ConfigMap limit: 960 KiB of text
			big := strings.Repeat("0123456789abcdef", 60*1024)
			if o.SkipBigConfigMap {
				big = strings.Repeat("0123456789abcdef", 64)
			}
			if err := step("big configmap", create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "geoip-db"}, Data: map[string]string{"geoip.csv": big}})); err != nil {
				return nil, err
			}
			if err := step("doomed configmap", create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "tmp-debug"}, Data: map[string]string{"debug": "true"}})); err != nil {
				return nil, err
			}
			if err := step("delete configmap", cs.CoreV1().ConfigMaps(ns).Delete(ctx, "tmp-debug", metav1.DeleteOptions{})); err != nil {
				return nil, err
			}
			w.Deleted = ns + "/tmp-debug"
		}
		secrets := []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("s3cr3t-" + ns), "user": []byte("app")}},
			{ObjectMeta: metav1.ObjectMeta{Name: "api-tls"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "tls.key": []byte("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")}},
			{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}`)}},
			{ObjectMeta: metav1.ObjectMeta{Name: "basic"}, Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "admin", "password": "hunter2"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "app-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}}, Type: corev1.SecretTypeServiceAccountToken},
		}
		for _, s := range secrets {
			if err := step("secret "+s.Name, create(ctx, cs.CoreV1().Secrets(ns).Create, s)); err != nil {
				return nil, err
			}
		}
		if err := step("role", create(ctx, cs.RbacV1().Roles(ns).Create, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "config-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}})); err != nil {
			return nil, err
		}
		if err := step("rolebinding", create(ctx, cs.RbacV1().RoleBindings(ns).Create, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "app-config-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "config-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}}})); err != nil {
			return nil, err
		}
		tcp := corev1.ProtocolTCP
		if err := step("networkpolicy", create(ctx, cs.NetworkingV1().NetworkPolicies(ns).Create, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "api-ingress"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: labels}, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "monitoring"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &intstr.IntOrString{Type: intstr.String, StrVal: "http"}}}}}},
		})); err != nil {
			return nil, err
		}
		if err := step("ingress", create(ctx, cs.NetworkingV1().Ingresses(ns).Create, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
			Spec: networkingv1.IngressSpec{IngressClassName: strPtr("nginx"), TLS: []networkingv1.IngressTLS{{Hosts: []string{ns + ".example.com"}, SecretName: "api-tls"}},
				Rules: []networkingv1.IngressRule{{Host: ns + ".example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "api", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}}}}}}},
		})); err != nil {
			return nil, err
		}
		minAvail := intstr.FromInt32(1)
		if err := step("pdb", create(ctx, cs.PolicyV1().PodDisruptionBudgets(ns).Create, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail, Selector: &metav1.LabelSelector{MatchLabels: labels}}})); err != nil {
			return nil, err
		}
		util := int32(70)
		if err := step("hpa", create(ctx, cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create, &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "api"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"},
				MinReplicas: ptr(2), MaxReplicas: 10, Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &util}}}}},
		})); err != nil {
			return nil, err
		}
		holder := "api-" + ns + "-7d9f"
		if err := step("lease", create(ctx, cs.CoordinationV1().Leases(ns).Create, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "api-leader"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: ptr(15), LeaseTransitions: ptr(3), AcquireTime: &metav1.MicroTime{Time: time.Now().Truncate(time.Microsecond)}},
		})); err != nil {
			return nil, err
		}
		for i := range 2 {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-manual-%d", i), Labels: labels},
				Spec:       *tmpl.Spec.DeepCopy(),
			}
			pod.Spec.NodeName = fmt.Sprintf("e2e-node-%d", i+1)
			if err := step("pod", create(ctx, cs.CoreV1().Pods(ns).Create, pod)); err != nil {
				return nil, err
			}
		}
		ready := true
		if err := step("endpointslice", create(ctx, cs.DiscoveryV1().EndpointSlices(ns).Create, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "api-manual", Labels: map[string]string{discoveryv1.LabelServiceName: "api", discoveryv1.LabelManagedBy: "e2e.etcdsafe.io"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.11"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: strPtr("e2e-node-1")}},
			Ports:       []discoveryv1.EndpointPort{{Name: strPtr("http"), Port: ptr(8080)}},
		})); err != nil {
			return nil, err
		}
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		if err := step("core event", create(ctx, cs.CoreV1().Events(ns).Create, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "api.scaled"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "api", APIVersion: "apps/v1"},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set api-7d9f to 5", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "deployment-controller"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		})); err != nil {
			return nil, err
		}
		if err := step("events.k8s.io event", create(ctx, cs.EventsV1().Events(ns).Create, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: "db.backoff"},
			EventTime:  metav1.MicroTime{Time: time.Now().Truncate(time.Microsecond)}, ReportingController: "e2e.etcdsafe.io/tester", ReportingInstance: "tester-1",
			Action: "Probe", Reason: "BackOff", Note: "readiness probe failed", Type: corev1.EventTypeWarning,
			Regarding: corev1.ObjectReference{Kind: "StatefulSet", Namespace: ns, Name: "db", APIVersion: "apps/v1"},
		})); err != nil {
			return nil, err
		}
		for i := range 2 {
			cr := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "e2e.etcdsafe.io/v1", "kind": "Widget",
				"metadata": map[string]any{"name": fmt.Sprintf("widget-%d", i), "labels": map[string]any{"app": "api"}},
				"spec":     map[string]any{"size": int64(3 + i), "color": "blue", "tags": []any{"a", "b"}, "nested": map[string]any{"ratio": "0.5", "enabled": true}},
			}}
			if err := step("widget", createDyn(ctx, dyn.Resource(WidgetGVR).Namespace(ns), cr)); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}

func applyCRDs(ctx context.Context, ext apiextclient.Interface, dyn dynamic.Interface, w *Workload) error {
	schemaProps := &apiextv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{
		"spec": {Type: "object", XPreserveUnknownFields: boolPtr(true), Properties: map[string]apiextv1.JSONSchemaProps{
			"size": {Type: "integer"}, "color": {Type: "string"}}},
		"status": {Type: "object", XPreserveUnknownFields: boolPtr(true)},
	}}
	for _, c := range []struct {
		plural, kind string
		scope        apiextv1.ResourceScope
	}{{"widgets", "Widget", apiextv1.NamespaceScoped}, {"clusterwidgets", "ClusterWidget", apiextv1.ClusterScoped}} {
		crd := &apiextv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: c.plural + ".e2e.etcdsafe.io"},
			Spec: apiextv1.CustomResourceDefinitionSpec{
				Group: "e2e.etcdsafe.io", Scope: c.scope,
				Names: apiextv1.CustomResourceDefinitionNames{Plural: c.plural, Kind: c.kind, ListKind: c.kind + "List", Singular: strings.ToLower(c.kind), ShortNames: []string{c.plural[:len(c.plural)-2]}},
				Versions: []apiextv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema:                   &apiextv1.CustomResourceValidation{OpenAPIV3Schema: schemaProps},
					Subresources:             &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
					AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{{Name: "Size", Type: "integer", JSONPath: ".spec.size"}}}},
			},
		}
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("workload: crd %s: %w", crd.Name, err)
		}
		w.Writes++
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("workload: crd %s not established: %w", crd.Name, err)
		}
	}
	// the REST mapping of a new CRD reaches the handler a little after Established
	for i := range 2 {
		cr := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "e2e.etcdsafe.io/v1", "kind": "ClusterWidget",
			"metadata": map[string]any{"name": fmt.Sprintf("global-%d", i)},
			"spec":     map[string]any{"size": int64(10 + i), "color": "red", "regions": []any{"eu-1", "us-2"}},
		}}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return createDyn(ctx, dyn.Resource(ClusterWidgetGVR), cr) == nil, nil
		})
		if err != nil {
			return fmt.Errorf("workload: cluster widget: %w", err)
		}
		w.Writes++
	}
	return nil
}

func create[T any](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	_, err := fn(ctx, obj, metav1.CreateOptions{})
	return err
}

func createDyn(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured) error {
	_, err := ri.Create(ctx, obj, metav1.CreateOptions{})
	return err
}

func retryUpdate(ctx context.Context, fn func() error) error {
	var err error
	for range 5 {
		if err = fn(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

func strPtr(s string) *string { return &s }
func boolPtr(b bool) *bool    { return &b }
