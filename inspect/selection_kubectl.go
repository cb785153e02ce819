package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

// AllTypes is what the TYPE "all" selects, kubectl's "all" category.
var AllTypes = []string{"pods", "services", "daemonsets.apps", "deployments.apps", "replicasets.apps",
	"statefulsets.apps", "jobs.batch", "cronjobs.batch", "replicationcontrollers",
	"horizontalpodautoscalers.autoscaling"}

// FieldSelectorFields are the fields a field selector may name: the
// object's key tells them, so they select without decoding a value.
var FieldSelectorFields = []string{"metadata.name", "metadata.namespace"}

// SelectMany resolves a command line whose TYPE may name several types
// ("deploy,svc", "all") into one Selection per type, in the order named,
// each type once. Labels and fields are kubectl's -l and
// --field-selector; names and -l exclude each other, as in kubectl. Mistakes
// are [*SelectionError]s; an unknown type says which known one it may be.
func (r *Selector) SelectMany(ctx context.Context, a SelectArgs, labelSel, fieldSel string) ([]Selection, error) {
	var ls labels.Selector
	var fs fields.Selector
	if labelSel != "" {
		var err error
		if ls, err = labels.Parse(labelSel); err != nil {
			return nil, selectionErrorf("-l %s: %v", labelSel, err)
		}
	}
	if fieldSel != "" {
		var err error
		if fs, err = ParseFieldSelector(fieldSel); err != nil {
			return nil, err
		}
	}
	typ, names, err := ParseTypeArgs(a.Args)
	if err != nil {
		return nil, err
	}
	if ls != nil && len(names) > 0 {
		return nil, selectionErrorf("names and -l exclude each other")
	}
	if typ == "" {
		sel, err := r.Select(ctx, a)
		if err != nil {
			return nil, err
		}
		sel.Labels, sel.Fields = ls, fs
		return []Selection{sel}, nil
	}
	var types []string
	for t := range strings.SplitSeq(typ, ",") {
		if strings.EqualFold(t, "all") {
			types = append(types, AllTypes...)
		} else {
			types = append(types, t)
		}
	}
	var out []Selection
	seen := map[string]bool{}
	for _, t := range types {
		if t == "" {
			return nil, selectionErrorf("empty TYPE in %q", typ)
		}
		res, err := r.Resolve(ctx, t, a.Revision)
		if err != nil {
			if errors.Is(err, decode.ErrUnknownResource) {
				return nil, r.unknownType(t)
			}
			return nil, err
		}
		if seen[res.KeyPath] {
			continue
		}
		seen[res.KeyPath] = true
		if !res.Namespaced && a.Namespace != "" {
			if len(types) > 1 {
				continue // kubectl get all -n x leaves cluster-scoped types out
			}
			return nil, selectionErrorf("%s are cluster-scoped: drop -n", res.Plural)
		}
		out = append(out, Selection{Resource: &res, Names: names, Namespace: a.Namespace, Labels: ls, Fields: fs})
	}
	return out, nil
}

// ParseFieldSelector parses a field selector as kubectl does, with only
// the [FieldSelectorFields]; another field is a [*SelectionError] that
// names them.
func ParseFieldSelector(s string) (fields.Selector, error) {
	fs, err := fields.ParseSelector(s)
	if err != nil {
		return nil, selectionErrorf("--field-selector %s: %v", s, err)
	}
	for _, req := range fs.Requirements() {
		if !slices.Contains(FieldSelectorFields, req.Field) {
			return nil, selectionErrorf("--field-selector: field %q is not supported: only %s are", req.Field, strings.Join(FieldSelectorFields, " and "))
		}
	}
	return fs, nil
}

// unknownType is the error for a TYPE nothing in the table (built in, or
// learned from the file's CRDs) answers to, with the closest types.
func (r *Selector) unknownType(typ string) error {
	var words []string
	for _, res := range r.o.Table.All() {
		if !res.Internal {
			words = append(words, res.Plural, res.Singular)
			words = append(words, res.ShortNames...)
		}
	}
	best := Suggest(strings.ToLower(typ), words)
	var plurals []string
	for _, w := range best {
		if res, err := r.o.Table.Resolve(w); err == nil && !slices.Contains(plurals, res.Plural) {
			plurals = append(plurals, res.Plural)
		}
	}
	err := fmt.Errorf("the server doesn't have a resource type %q: %w", typ, decode.ErrUnknownResource)
	if len(plurals) > 0 {
		err = fmt.Errorf("the server doesn't have a resource type %q; did you mean %s?: %w", typ, strings.Join(plurals, " or "), decode.ErrUnknownResource)
	}
	return &SelectionError{err}
}

// Suggest returns the words closest to word by Levenshtein distance
// (at most 2, or a third of word's length when it is longer), closest
// first, or the words word is a prefix of; none when nothing is close.
func Suggest(word string, words []string) []string {
	limit := max(2, len(word)/3)
	best := limit + 1
	var out []string
	for _, w := range words {
		d := levenshtein.ComputeDistance(word, strings.ToLower(w))
		if strings.HasPrefix(strings.ToLower(w), word) && len(word) >= 3 {
			d = min(d, 1)
		}
		switch {
		case d < best:
			best, out = d, []string{w}
		case d == best && !slices.Contains(out, w):
			out = append(out, w)
		}
	}
	if best > limit {
		return nil
	}
	return out
}

// SuggestNamespace returns the namespaces of the file (as of revision rev)
// closest to ns, for a selection in ns that found nothing; none when ns
// exists or nothing is close.
func (r *Selector) SuggestNamespace(ctx context.Context, ns string, rev int64) ([]string, error) {
	all, err := r.Namespaces(ctx, &Selection{}, rev)
	if err != nil || slices.Contains(all, ns) {
		return nil, err
	}
	return Suggest(ns, all), nil
}

// MatchLabels returns the entries whose objects' labels sel.Labels
// matches, in order, decoding their values on workers goroutines (the
// labels are in the value: only the entries given are decoded, so narrow
// them by key with [Selector.Keep] first). Values that are not objects
// are left out; values that cannot be decoded are left out and told to
// OnProblem with their key, in order. Without Labels it returns entries.
func (r *Selector) MatchLabels(ctx context.Context, sel *Selection, entries []Entry, workers int) ([]Entry, error) {
	if sel.Labels == nil {
		return entries, nil
	}
	keep := make([]bool, len(entries))
	bad, err := r.EachLabels(ctx, entries, workers, func(i int, l map[string]string, object bool) {
		keep[i] = object && sel.Labels.Matches(labels.Set(l))
	})
	if err != nil {
		return nil, err
	}
	var out []Entry
	for i := range entries {
		if keep[i] && !bad[i] {
			out = append(out, entries[i])
		}
	}
	return out, nil
}

// EachLabels is [Selector.EachObject] for the labels alone: each value is
// read only as far as its labels where the decoder can
// ([decode.Decoder.Labels]); object is false for a value that holds no
// object (text, empty).
func (r *Selector) EachLabels(ctx context.Context, entries []Entry, workers int, fn func(i int, labels map[string]string, object bool)) (bad []bool, err error) {
	return r.each(ctx, entries, workers, func(i int, rec Record) error {
		switch decode.SniffEncoding(rec.Value) {
		case decode.EncodingText, decode.EncodingEmpty:
			fn(i, nil, false)
			return nil
		}
		l, err := r.o.Decoder.Labels(rec.Key, rec.Value)
		if err != nil {
			return err
		}
		fn(i, l, true)
		return nil
	})
}

// EachObject decodes the newest value of each entry on workers goroutines
// and calls fn with its index and the object as stored (nil for a value
// that is not an object: text, empty); fn must be safe for concurrent use
// and touch only what belongs to its index. A value that cannot be decoded
// is told to OnProblem with its key, in order, after all are done, and
// marked in bad; fn is not called for it.
func (r *Selector) EachObject(ctx context.Context, entries []Entry, workers int, fn func(i int, obj *unstructured.Unstructured)) (bad []bool, err error) {
	return r.each(ctx, entries, workers, func(i int, rec Record) error {
		switch decode.SniffEncoding(rec.Value) {
		case decode.EncodingText, decode.EncodingEmpty:
			fn(i, nil)
			return nil
		}
		v, err := r.o.Decoder.Decode(rec.Key, rec.Value)
		if err != nil {
			return err
		}
		fn(i, v.Object)
		return nil
	})
}

// each reads the newest record of each entry on workers goroutines and
// calls fn with it; fn's errors are told to OnProblem with the key, in
// order, after all are done, and marked in bad.
func (r *Selector) each(ctx context.Context, entries []Entry, workers int, fn func(i int, rec Record) error) (bad []bool, err error) {
	errs := make([]error, len(entries))
	par.Do(len(entries), workers, func(i int) {
		if i&0xff == 0 && ctx.Err() != nil {
			return
		}
		rec, err := r.snap.Get(entries[i].Rev)
		if err == nil {
			err = fn(i, rec)
		}
		errs[i] = err
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bad = make([]bool, len(entries))
	for i := range entries {
		if errs[i] != nil {
			bad[i] = true
			r.problem(entries[i].Key, errs[i])
		}
	}
	return bad, nil
}

// KeyInfo returns what e's key says about its object, and whether the key
// is one of a known resource's.
func (r *Selector) KeyInfo(e *Entry) (decode.KeyInfo, bool) {
	return r.o.Table.ForKey(r.o.Prefix, e.Key)
}

// Missing returns, in order, the names sel asks for that no entry of kept
// (entries sel keeps) has, like kubectl's NotFound errors.
func (r *Selector) Missing(sel *Selection, kept []Entry) []string {
	if len(sel.Names) == 0 || sel.Resource == nil {
		return nil
	}
	found := map[string]bool{}
	for i := range kept {
		if ki, ok := r.Keep(sel, &kept[i]); ok {
			found[ki.Name] = true
		}
	}
	var out []string
	for _, n := range sel.Names {
		if !found[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
