package kdiff

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

// Mass deletion: a kind with at least MassDeletionMin objects deleted that
// are at least MassDeletionPercent of its objects in A is flagged (a night
// of ordinary churn deletes a few objects of a kind, a mistaken
// `kubectl delete -A`, a namespace deleted or a CRD removed takes most).
const (
	MassDeletionMin     = 10
	MassDeletionPercent = 20
)

// Finding types.
const (
	FindingMassDeletion      = "mass-deletion"
	FindingClusterAdmin      = "cluster-admin-binding"
	FindingAdmissionWebhook  = "admission-webhook"
	FindingKubeSystemSecret  = "kube-system-secret"
	FindingKubeSystemRBAC    = "kube-system-rbac"
	FindingCRDRemoved        = "crd-removed"
	severityHigh, severityMe = "high", "medium"
)

// Finding is one thing an operator looks at first. Its JSON form is part
// of `etcdsafe diff -o json`.
type Finding struct {
	// Type is one of the Finding* constants.
	Type string `json:"type"`
	// Severity is "high" (access or admission changed, objects lost) or
	// "medium" (sensitive objects changed).
	Severity string `json:"severity"`
	// Message says what was found, in a sentence.
	Message string `json:"message"`
	// Keys are the etcd keys concerned.
	Keys []string `json:"keys"`
}

// findings works out the plan's findings; the objects it had to render
// (bindings, webhooks, kube-system Secrets and RBAC) are kept for Objects.
func (p *Plan) findings(ctx context.Context, cl *classifier, res *inspect.DiffResult) error {
	// mass deletions, by class
	deleted := map[int][]string{}
	for _, c := range p.Changes {
		if c.Kind == inspect.Deleted {
			n := cl.classOf(c.Key)
			deleted[n] = append(deleted[n], c.Key)
		}
	}
	var classes []int
	for n := range deleted {
		classes = append(classes, n)
	}
	slices.Sort(classes)
	for _, n := range classes {
		keys := deleted[n]
		total := 0
		if n < len(res.LiveA) {
			total = res.LiveA[n]
		}
		if len(keys) < MassDeletionMin || len(keys)*100 < total*MassDeletionPercent {
			continue
		}
		what := cl.classes[n]
		if what == "" {
			what = "keys outside " + p.a.Prefix
		}
		p.Findings = append(p.Findings, Finding{Type: FindingMassDeletion, Severity: severityHigh, Keys: keys,
			Message: fmt.Sprintf("mass deletion: %d of %d %s deleted", len(keys), total, what)})
	}

	// the changes to look into
	var look []int
	for i, c := range p.Changes {
		r := c.Info.Resource
		switch {
		case !c.Known:
		case c.Kind == inspect.Deleted && r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition":
			p.Findings = append(p.Findings, Finding{Type: FindingCRDRemoved, Severity: severityHigh, Keys: []string{c.Key},
				Message: fmt.Sprintf("CustomResourceDefinition %s removed: every object of it is gone", c.Info.Name)})
		case r.Group == "rbac.authorization.k8s.io" && (r.Kind == "ClusterRoleBinding" || r.Kind == "RoleBinding"),
			r.Group == "admissionregistration.k8s.io" && strings.HasSuffix(r.Kind, "WebhookConfiguration"),
			c.Info.Namespace == "kube-system" && (r.Group == "" && r.Kind == "Secret" || r.Group == "rbac.authorization.k8s.io"):
			look = append(look, i)
		}
	}
	objs := make([]*Object, len(look))
	par.Do(len(look), p.o.Workers, func(i int) {
		if ctx.Err() == nil {
			objs[i] = p.render(look[i], true)
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, o := range objs {
		p.pre[look[i]] = o
		if o.NoiseOnly {
			continue
		}
		c := &p.Changes[look[i]]
		r := c.Info.Resource
		verb := map[string]string{"added": "added", "deleted": "deleted", "changed": "changed"}[o.Change]
		if strings.HasSuffix(r.Kind, "RoleBinding") && o.Change != "deleted" && grantsClusterAdmin(o.after) {
			p.Findings = append(p.Findings, Finding{Type: FindingClusterAdmin, Severity: severityHigh, Keys: []string{c.Key},
				Message: fmt.Sprintf("cluster-admin binding %s: %s (subjects: %s)", verb, o.Label(), subjects(o.after))})
		}
		if r.Group == "admissionregistration.k8s.io" && o.Change != "deleted" {
			p.Findings = append(p.Findings, Finding{Type: FindingAdmissionWebhook, Severity: severityHigh, Keys: []string{c.Key},
				Message: fmt.Sprintf("admission webhook %s: %s (webhooks: %s)", verb, o.Label(), webhooks(o.after))})
		}
		if c.Info.Namespace == "kube-system" {
			typ := FindingKubeSystemRBAC
			if r.Kind == "Secret" {
				typ = FindingKubeSystemSecret
			}
			p.Findings = append(p.Findings, Finding{Type: typ, Severity: severityMe, Keys: []string{c.Key},
				Message: fmt.Sprintf("%s %s in kube-system", o.Label(), verb)})
		}
	}
	slices.SortStableFunc(p.Findings, func(x, y Finding) int {
		if x.Severity != y.Severity {
			if x.Severity == severityHigh {
				return -1
			}
			return 1
		}
		return 0
	})
	return nil
}

// grantsClusterAdmin: a binding whose roleRef is the ClusterRole
// cluster-admin.
func grantsClusterAdmin(obj map[string]any) bool {
	ref, _ := obj["roleRef"].(map[string]any)
	return ref != nil && ref["kind"] == "ClusterRole" && ref["name"] == "cluster-admin"
}

// subjects lists a binding's subjects: "User alice, ServiceAccount ns/sa".
func subjects(obj map[string]any) string {
	list, _ := obj["subjects"].([]any)
	var out []string
	for _, s := range list {
		m, _ := s.(map[string]any)
		if m == nil {
			continue
		}
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		if ns, _ := m["namespace"].(string); ns != "" {
			name = ns + "/" + name
		}
		out = append(out, kind+" "+name)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// webhooks lists a webhook configuration's webhooks and where they call:
// "policy.example.com -> https://x, validate.ns -> service ns/svc".
func webhooks(obj map[string]any) string {
	list, _ := obj["webhooks"].([]any)
	var out []string
	for _, w := range list {
		m, _ := w.(map[string]any)
		if m == nil {
			continue
		}
		name, _ := m["name"].(string)
		to := "?"
		if cc, _ := m["clientConfig"].(map[string]any); cc != nil {
			if u, _ := cc["url"].(string); u != "" {
				to = u
			} else if svc, _ := cc["service"].(map[string]any); svc != nil {
				to = fmt.Sprintf("service %v/%v", svc["namespace"], svc["name"])
			}
		}
		out = append(out, name+" -> "+to)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
