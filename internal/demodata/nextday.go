package demodata

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// Day is what [NextDay] changed, for tests and the demo to name.
type Day struct {
	// Changed are the keys updated (each once), Deleted and Added the
	// keys removed and created.
	Changed, Deleted, Added []string
	// ChurnedKey is the Lease renewed Renewals times: the key with the most
	// versions in the file afterwards.
	ChurnedKey string
	Renewals   int
	// Events is how many Events the day added.
	Events int
	// Revision is the store revision after the last write.
	Revision int64
}

// NextDay applies a day of a cluster's life to what [Fill] wrote through
// the same w: a rollout of payments/api by a CD controller, a ConfigMap
// edit, a rotated Secret, an accidental CronJob deletion, a new
// Deployment, a ClusterRoleBinding to cluster-admin and a validating
// webhook (what a forensic diff flags), Events, and a leader Lease renewed
// renewals times (what fills the history).
func NextDay(ctx context.Context, w *kubestore.Writer, renewals int) (Day, error) {
	var d Day
	update := func(key, manager string, edit func(runtime.Object)) error {
		obj := w.Stored(key)
		if obj == nil {
			return fmt.Errorf("next day: %s was not written by this writer", key)
		}
		edit(obj)
		rev, err := w.Update(ctx, obj, manager)
		if err != nil {
			return fmt.Errorf("next day: update %s: %w", key, err)
		}
		d.Revision = rev
		return nil
	}
	p := w.Prefix()
	changes := []struct {
		key, manager string
		edit         func(runtime.Object)
	}{
		{p + "/deployments/payments/api", "argocd-controller", func(o runtime.Object) {
			dep := o.(*appsv1.Deployment)
			dep.Spec.Replicas = ptr(int32(5))
			dep.Spec.Template.Spec.Containers[0].Image = "registry.example.com/payments/api:1.9.0"
		}},
		{p + "/configmaps/payments/api-config", "kubectl-edit", func(o runtime.Object) {
			o.(*corev1.ConfigMap).Data["LOG_LEVEL"] = "debug"
		}},
		{p + "/secrets/payments/stripe", "vault-agent", func(o runtime.Object) {
			o.(*corev1.Secret).Data["apiKey"] = []byte("sk_test_demo_rotated_9Xq2LmN8vB4cR7tY")
		}},
	}
	for _, c := range changes {
		if err := update(c.key, c.manager, c.edit); err != nil {
			return d, err
		}
		d.Changed = append(d.Changed, c.key)
	}

	cronKey := p + "/cronjobs/payments/settle"
	rev, err := w.DeleteKey(ctx, cronKey)
	if err != nil {
		return d, fmt.Errorf("next day: delete %s: %w", cronKey, err)
	}
	d.Deleted, d.Revision = append(d.Deleted, cronKey), rev

	fraud := map[string]string{"app": "fraud-check"}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	for _, obj := range []runtime.Object{
		&appsv1.Deployment{ObjectMeta: om("payments", "fraud-check", fraud), Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: fraud},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: fraud},
				Spec: podSpec(container("fraud-check", "registry.example.com/payments/fraud-check:0.3.1", 8080))}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: om("", "debug-admin", nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "payments"}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: om("", "policy-guard", nil),
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name:                    "pods.policy-guard.example.com",
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr("https://203.0.113.7:8443/validate")},
				Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
				SideEffects:             &none,
				FailurePolicy:           &fail,
				AdmissionReviewVersions: []string{"v1"},
			}}},
	} {
		rev, err := w.Create(ctx, obj)
		if err != nil {
			return d, fmt.Errorf("next day: %w", err)
		}
		d.Revision = rev
		d.Added = append(d.Added, mustKey(w, obj))
	}

	for i := range 20 {
		ev := &corev1.Event{ObjectMeta: om("payments", fmt.Sprintf("fraud-check.18a2c%07x", i), nil),
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "payments", Name: "fraud-check"},
			Reason:         "ScalingReplicaSet", Message: fmt.Sprintf("Scaled up replica set fraud-check-6b7c9d from %d to %d", i, i+1),
			Type: corev1.EventTypeNormal, Count: 1, Source: corev1.EventSource{Component: "deployment-controller"}, ReportingController: "deployment-controller"}
		rev, err := w.Create(ctx, ev)
		if err != nil {
			return d, fmt.Errorf("next day: event: %w", err)
		}
		d.Revision = rev
		d.Added = append(d.Added, mustKey(w, ev))
		d.Events++
	}

	d.ChurnedKey = p + "/leases/kube-system/kube-controller-manager"
	for i := range renewals {
		err := update(d.ChurnedKey, "kube-controller-manager", func(o runtime.Object) {
			l := o.(*coordinationv1.Lease)
			t := metav1.NewMicroTime(w.Now().Add(time.Duration(i+1) * 10 * time.Second))
			l.Spec.RenewTime = &t
		})
		if err != nil {
			return d, err
		}
		d.Renewals++
	}
	return d, nil
}
