package inspect

import (
	"context"
	"slices"
	"testing"
)

// TestCompletions: the demo file's types, names and namespaces, as shell
// completion offers them, against what ls lists (Entries and Keep).
func TestCompletions(t *testing.T) {
	t.Parallel()
	r, reported := newDemoSelector(t)
	ctx := context.Background()
	types, err := r.Types(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(types) || len(slices.Compact(slices.Clone(types))) != len(types) {
		t.Errorf("types not sorted or repeated: %v", types)
	}
	for _, want := range []string{"configmaps", "deployments", "namespaces", "secrets"} {
		if !slices.Contains(types, want) {
			t.Errorf("types %v lack %s", types, want)
		}
	}
	// every word resolves back to a resource with objects
	for _, typ := range types {
		sel, err := r.Select(ctx, SelectArgs{Args: []string{typ}})
		if err != nil {
			t.Errorf("type %q does not select: %v", typ, err)
			continue
		}
		names, err := r.Names(ctx, &sel, 0)
		if err != nil || len(names) == 0 {
			t.Errorf("type %q: names %v, %v", typ, names, err)
		}
	}

	nss, err := r.Namespaces(ctx, &Selection{}, 0)
	if err != nil || !slices.Contains(nss, "kube-system") || !slices.Contains(nss, "default") {
		t.Fatalf("namespaces %v, %v", nss, err)
	}
	cm, err := r.Select(ctx, SelectArgs{Args: []string{"cm"}})
	if err != nil {
		t.Fatal(err)
	}
	cmNS, err := r.Namespaces(ctx, &cm, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range cmNS {
		if !slices.Contains(nss, ns) {
			t.Errorf("configmaps in namespace %q, not a Namespace object", ns)
		}
	}
	// the names in one namespace are what ls -n lists
	sel, err := r.Select(ctx, SelectArgs{Args: []string{"cm"}, Namespace: "kube-system"})
	if err != nil {
		t.Fatal(err)
	}
	names, err := r.Names(ctx, &sel, 0)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := r.Entries(ctx, &sel, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range entries {
		if ki, ok := r.Keep(&sel, &entries[i]); ok {
			want = append(want, ki.Name)
		}
	}
	if len(want) == 0 || !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	// cluster-scoped: no namespaces; no TYPE: no names
	nsRes, _ := r.Select(ctx, SelectArgs{Args: []string{"ns"}})
	if got, err := r.Namespaces(ctx, &nsRes, 0); err != nil || got != nil {
		t.Errorf("namespaces of namespaces: %v, %v", got, err)
	}
	if got, err := r.Names(ctx, &Selection{}, 0); err != nil || got != nil {
		t.Errorf("names without TYPE: %v, %v", got, err)
	}
	if len(*reported) > 0 {
		t.Errorf("reported %v", *reported)
	}
	t.Logf("%d types, %d namespaces, %d configmaps in kube-system", len(types), len(nss), len(names))
}
