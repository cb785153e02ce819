package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcdsafe/etcdsafe/decode"
)

// Selection is what a kubectl-like command line selects: TYPE[/NAME] or
// TYPE NAME..., -n NAMESPACE, or a raw --prefix. Make one with
// [Selector.Select].
type Selection struct {
	// Resource is the resource TYPE names; nil selects every key (or
	// those under RawPrefix), special keys such as compact_rev_key
	// included.
	Resource *decode.Resource
	// Names are exact object names; none = every object.
	Names []string
	// Namespace is the namespace; "" = every namespace.
	Namespace string
	// RawPrefix is a raw etcd key prefix, given instead of a TYPE.
	RawPrefix string
	// Labels is a label selector (-l); nil = every object. [Selector.Keep]
	// does not apply it (the labels are in the value): see
	// [Selector.MatchLabels].
	Labels labels.Selector
	// Fields is a field selector on metadata.name and metadata.namespace
	// ([FieldSelectorFields]); nil = every object. [Selector.Keep] applies
	// it: it leaves out the keys that are not objects.
	Fields fields.Selector
}

// SelectArgs is a kubectl-like command line for [Selector.Select].
type SelectArgs struct {
	// Args are "TYPE", "TYPE/NAME" or "TYPE NAME..."; none = every key.
	Args []string
	// Namespace is -n; "" = every namespace.
	Namespace string
	// Prefix is --prefix, a raw key prefix instead of TYPE.
	Prefix string
	// Revision is the state whose CRDs define custom TYPEs (0 = newest).
	Revision int64
}

// SelectionError is a command line that selects nothing that can be: two
// ways of naming objects at once, an empty name, an unknown TYPE (wrapping
// [decode.ErrUnknownResource]), -n with a cluster-scoped TYPE. It is the
// user's mistake, not the file's.
type SelectionError struct{ Err error }

// Error returns the wrapped error's text, a plain sentence for the user.
func (e *SelectionError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *SelectionError) Unwrap() error { return e.Err }

func selectionErrorf(format string, a ...any) error {
	return &SelectionError{fmt.Errorf(format, a...)}
}

// ParseTypeArgs reads "TYPE", "TYPE/NAME", "TYPE NAME..." like kubectl. No
// args give typ "". A malformed line is a [*SelectionError].
func ParseTypeArgs(args []string) (typ string, names []string, err error) {
	if len(args) == 0 {
		return "", nil, nil
	}
	typ = args[0]
	if i := strings.Index(typ, "/"); i >= 0 {
		if len(args) > 1 {
			return "", nil, selectionErrorf("use either TYPE/NAME or TYPE NAME..., not both")
		}
		typ, names = typ[:i], []string{typ[i+1:]}
		if names[0] == "" {
			return "", nil, selectionErrorf("empty name in %q", args[0])
		}
		return typ, names, nil
	}
	return typ, args[1:], nil
}

// SelectorOptions configure a [Selector].
type SelectorOptions struct {
	// Table maps types and keys to resources ([decode.BuiltinResources]);
	// the Selector adds the custom resources of the file's CRDs to it.
	Table *decode.ResourceTable
	// Decoder decodes the CRDs.
	Decoder *decode.Decoder
	// Prefix is kube-apiserver's --etcd-prefix, without trailing slash.
	Prefix string
	// OnProblem, if not nil, is told in order of each CRD that could not
	// be learned (with its key) and each record a walk could not read
	// (key ""); the query goes on without them.
	OnProblem func(key string, err error)
	// OnCompacted, if not nil, is told when a query asks for a revision
	// older than the file's last compaction: the objects that changed
	// between the two are missing from its answer.
	OnCompacted func(rev, compacted int64)
}

// Selector turns kubectl-like selections into queries over one
// [Snapshot], learning the custom resources defined by the CRDs in the
// file itself when a type is not built in. It is not safe for concurrent
// use, except [Selector.Keep] and [Selector.Query], which only read.
type Selector struct {
	snap      *Snapshot
	o         SelectorOptions
	crdLoaded bool
}

// NewSelector returns a Selector over s.
func NewSelector(s *Snapshot, o SelectorOptions) *Selector {
	return &Selector{snap: s, o: o}
}

func (r *Selector) problem(key string, err error) {
	if r.o.OnProblem != nil {
		r.o.OnProblem(key, err)
	}
}

// Select resolves a command line into a Selection. A mistake in it is a
// [*SelectionError]; an ambiguous TYPE wraps [decode.ErrAmbiguousResource].
func (r *Selector) Select(ctx context.Context, a SelectArgs) (Selection, error) {
	sel := Selection{Namespace: a.Namespace, RawPrefix: a.Prefix}
	typ, names, err := ParseTypeArgs(a.Args)
	if err != nil || typ == "" {
		return sel, err
	}
	res, err := r.Resolve(ctx, typ, a.Revision)
	if err != nil {
		return sel, err
	}
	if !res.Namespaced && a.Namespace != "" {
		return sel, selectionErrorf("%s are cluster-scoped: drop -n", res.Plural)
	}
	sel.Resource, sel.Names = &res, names
	return sel, nil
}

// Resolve turns a kubectl-style TYPE into a resource, learning the CRDs in
// the file (as of revision rev, 0 = newest) when the type is not built
// in. An unknown type is a [*SelectionError].
func (r *Selector) Resolve(ctx context.Context, typ string, rev int64) (decode.Resource, error) {
	res, err := r.o.Table.Resolve(typ)
	if err == nil || !errors.Is(err, decode.ErrUnknownResource) {
		return res, err
	}
	if err := r.LoadCRDs(ctx, rev); err != nil {
		return decode.Resource{}, err
	}
	res, err = r.o.Table.Resolve(typ)
	if err != nil {
		return decode.Resource{}, &SelectionError{err}
	}
	return res, nil
}

// LoadCRDs teaches the table the custom resources defined by the CRDs in
// the file (as of revision rev, 0 = newest), once.
func (r *Selector) LoadCRDs(ctx context.Context, rev int64) error {
	if r.crdLoaded {
		return nil
	}
	r.crdLoaded = true
	entries, _, err := r.snap.Index(ctx, Query{Prefixes: [][]byte{[]byte(r.crdPrefix())}, Revision: rev})
	if err != nil {
		return err
	}
	for _, e := range entries {
		r.learnCRD(e)
	}
	return nil
}

func (r *Selector) crdPrefix() string {
	return r.o.Prefix + "/apiextensions.k8s.io/customresourcedefinitions/"
}

// learnCRD adds the custom resource the CRD at e defines.
func (r *Selector) learnCRD(e Entry) {
	rec, err := r.snap.Get(e.Rev)
	if err != nil {
		r.problem(e.Key, fmt.Errorf("CRD not learned: %w", err))
		return
	}
	v, err := r.o.Decoder.Decode(rec.Key, rec.Value)
	if err != nil {
		r.problem(e.Key, fmt.Errorf("CRD not learned: %w", err))
		return
	}
	if err := r.o.Table.AddCRD(v.Object); err != nil {
		r.problem(e.Key, fmt.Errorf("CRD not learned: %w", err))
	}
}

// Query is the index query for sel, as of revision rev (0 = newest), of
// the live keys or, with deleted, of the deleted ones. Its prefixes may
// match more than sel: filter the entries with [Selector.Keep].
func (r *Selector) Query(sel *Selection, rev int64, deleted bool) Query {
	q := Query{Revision: rev, Deleted: deleted}
	ns := sel.Namespace
	if ns == "" && sel.Fields != nil && sel.Resource != nil && sel.Resource.Namespaced {
		ns, _ = sel.Fields.RequiresExactMatch("metadata.namespace") // a narrower walk; Keep checks it
	}
	switch {
	case sel.RawPrefix != "":
		q.Prefixes = [][]byte{[]byte(sel.RawPrefix)}
	case sel.Resource == nil:
		// everything, special keys such as compact_rev_key included
	case len(sel.Names) > 0 && ns != "" || len(sel.Names) > 0 && !sel.Resource.Namespaced:
		for _, n := range sel.Names {
			q.Prefixes = append(q.Prefixes, []byte(r.o.Table.KeyPrefix(r.o.Prefix, *sel.Resource, ns)+n))
		}
	default:
		q.Prefixes = [][]byte{[]byte(r.o.Table.KeyPrefix(r.o.Prefix, *sel.Resource, ns))}
	}
	return q
}

// Keep says whether sel keeps e, by the exact names wanted (a prefix
// query for "api" also matches "api-headless") and the namespace, and
// returns what e's key says about its object. -n without TYPE keeps only
// the namespaced objects of that namespace.
func (r *Selector) Keep(sel *Selection, e *Entry) (decode.KeyInfo, bool) {
	ki, ok := r.o.Table.ForKey(r.o.Prefix, e.Key)
	if sel.Fields != nil && (!ok || ki.Name == "" ||
		!sel.Fields.Matches(fields.Set{"metadata.name": ki.Name, "metadata.namespace": ki.Namespace})) {
		return ki, false
	}
	if sel.Resource == nil || sel.RawPrefix != "" {
		return ki, sel.Namespace == "" || ok && ki.Namespace == sel.Namespace
	}
	if !ok || ki.Resource.KeyPath != sel.Resource.KeyPath {
		return ki, false
	}
	if sel.Namespace != "" && ki.Namespace != sel.Namespace {
		return ki, false
	}
	if len(sel.Names) == 0 {
		return ki, true
	}
	for _, n := range sel.Names {
		if ki.Name == n {
			return ki, true
		}
	}
	return ki, false
}

// Index runs q, telling OnCompacted first when q asks for a revision
// older than the last compaction, and OnProblem of each record the walk
// could not read.
func (r *Selector) Index(ctx context.Context, q Query) ([]Entry, error) {
	if c := r.snap.CompactRevision(); q.Revision > 0 && q.Revision < c && r.o.OnCompacted != nil {
		r.o.OnCompacted(q.Revision, c)
	}
	entries, problems, err := r.snap.Index(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		r.problem("", p)
	}
	return entries, nil
}

// Entries walks the file once for the keys of sel (live, or deleted with
// deleted set) as of revision rev, as [Selector.Index] does, unfiltered
// by [Selector.Keep]. Without a TYPE the CRDs in the file are learned
// first, since the keys of custom resources are named after them; a walk
// over the whole keyspace learns them from its own entries.
func (r *Selector) Entries(ctx context.Context, sel *Selection, rev int64, deleted bool) ([]Entry, error) {
	whole := sel.Resource == nil && sel.RawPrefix == "" && !deleted
	if sel.Resource == nil && !whole {
		if err := r.LoadCRDs(ctx, rev); err != nil {
			return nil, err
		}
	}
	entries, err := r.Index(ctx, r.Query(sel, rev, deleted))
	if err != nil {
		return nil, err
	}
	if whole && !r.crdLoaded {
		r.crdLoaded = true
		p := r.crdPrefix()
		i, _ := slices.BinarySearchFunc(entries, p, func(e Entry, p string) int { return strings.Compare(e.Key, p) })
		for ; i < len(entries) && strings.HasPrefix(entries[i].Key, p); i++ {
			r.learnCRD(entries[i])
		}
	}
	return entries, nil
}

// FindKeys returns, sorted, the keys sel keeps among the newest live and
// deleted ones, in every namespace when sel names none; records the
// walks could not read are left out silently.
func (r *Selector) FindKeys(ctx context.Context, sel *Selection) ([]string, error) {
	var keys []string
	for _, deleted := range []bool{false, true} {
		entries, _, err := r.snap.Index(ctx, r.Query(sel, 0, deleted))
		if err != nil {
			return nil, err
		}
		for i := range entries {
			if _, ok := r.Keep(sel, &entries[i]); ok {
				keys = append(keys, entries[i].Key)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}
