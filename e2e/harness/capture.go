package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Listing is what the API served for one resource: Name is kubectl's
// resource.group form ("deployments.apps", "configmaps").
type Listing struct {
	Name  string
	GVR   schema.GroupVersionResource
	Items []map[string]any
	// Err is set when the API refused to list at the requested revision.
	Err error
}

// CaptureAPI lists every listable resource at the group's preferred version,
// as `kubectl get -A -o json` does. With rv set, every list is served at
// exactly that revision (resourceVersionMatch=Exact), so the result is the
// state a snapshot taken at rv holds.
func CaptureAPI(ctx context.Context, cfg *rest.Config, rv string) ([]Listing, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	var out []Listing
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", l.GroupVersion, err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerb(r.Verbs, "list") {
				continue
			}
			name := r.Name
			if gv.Group != "" {
				name += "." + gv.Group
			}
			lst := Listing{Name: name, GVR: gv.WithResource(r.Name)}
			opts := metav1.ListOptions{}
			if rv != "" {
				opts.ResourceVersion, opts.ResourceVersionMatch = rv, metav1.ResourceVersionMatchExact
			}
			ul, err := dyn.Resource(lst.GVR).List(ctx, opts)
			if err != nil {
				lst.Err = err
			} else {
				for _, it := range ul.Items {
					lst.Items = append(lst.Items, it.Object)
				}
			}
			out = append(out, lst)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// WriteAPI writes dir/<name>.json as a v1 List for every listing with items,
// as served: managedFields included (`kubectl get -o json
// --show-managed-fields`).
func WriteAPI(dir string, ls []Listing) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, l := range ls {
		if l.Err != nil || len(l.Items) == 0 {
			continue
		}
		items := make([]any, 0, len(l.Items))
		for _, it := range l.Items {
			items = append(items, it)
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}, "", "    ")
		if err != nil {
			return fmt.Errorf("marshal %s: %w", l.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, l.Name+".json"), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", l.Name, err)
		}
	}
	return nil
}
