package inspect

import (
	"context"
	"slices"

	"github.com/etcdsafe/etcdsafe/decode"
)

// The completions of a command line (shell completion of TYPE, NAME and
// -n): what the file holds, from its keys alone, values unread.

// Types returns the TYPE words that select the resources with live
// objects in the file as of revision rev (0 = newest), sorted: the plural
// ("deployments"), or plural.group when the plural alone selects another
// resource. Custom resources are learned from the file's CRDs. It walks
// the whole key index once.
func (r *Selector) Types(ctx context.Context, rev int64) ([]string, error) {
	if err := r.LoadCRDs(ctx, rev); err != nil {
		return nil, err
	}
	entries, _, err := r.snap.Index(ctx, Query{Revision: rev})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var types []string
	for i := range entries {
		ki, ok := r.o.Table.ForKey(r.o.Prefix, entries[i].Key)
		if !ok || ki.Resource.Internal || seen[ki.Resource.KeyPath] {
			continue
		}
		seen[ki.Resource.KeyPath] = true
		word := ki.Resource.Plural
		if res, err := r.o.Table.Resolve(word); err != nil || res.KeyPath != ki.Resource.KeyPath {
			word += "." + ki.Resource.Group
		}
		types = append(types, word)
	}
	slices.Sort(types)
	return slices.Compact(types), nil
}

// Names returns the names of the live objects sel selects (its Resource,
// in its Namespace or in every one) as of revision rev, sorted, each
// once. sel.Names is ignored. A Selection without Resource has no names.
func (r *Selector) Names(ctx context.Context, sel *Selection, rev int64) ([]string, error) {
	if sel.Resource == nil {
		return nil, nil
	}
	all := *sel
	all.Names = nil
	return r.keyInfos(ctx, &all, rev, func(ki decode.KeyInfo) string { return ki.Name })
}

// Namespaces returns the namespaces as of revision rev, sorted: those
// holding objects of sel.Resource, or with no Resource, the Namespace
// objects in the file. A cluster-scoped Resource has none.
func (r *Selector) Namespaces(ctx context.Context, sel *Selection, rev int64) ([]string, error) {
	if sel.Resource == nil {
		ns, err := r.o.Table.Resolve("namespaces")
		if err != nil {
			return nil, err
		}
		return r.Names(ctx, &Selection{Resource: &ns}, rev)
	}
	if !sel.Resource.Namespaced {
		return nil, nil
	}
	return r.keyInfos(ctx, &Selection{Resource: sel.Resource}, rev, func(ki decode.KeyInfo) string { return ki.Namespace })
}

// keyInfos returns what field says of each live key sel keeps, sorted,
// each once.
func (r *Selector) keyInfos(ctx context.Context, sel *Selection, rev int64, field func(decode.KeyInfo) string) ([]string, error) {
	entries, _, err := r.snap.Index(ctx, r.Query(sel, rev, false))
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range entries {
		if ki, ok := r.Keep(sel, &entries[i]); ok {
			out = append(out, field(ki))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
