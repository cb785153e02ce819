package kdiff

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/source"
)

// LineageMode says whether [Prepare] may trust revisions.
type LineageMode int

// The lineage modes.
const (
	// LineageAuto trusts revisions when the files show one cluster
	// history (inspect.CompareLineage) and the archives' cluster IDs, when
	// known, agree.
	LineageAuto LineageMode = iota
	// LineageSame trusts revisions whatever the files show.
	LineageSame
	// LineageValues compares the values of every key both files hold.
	LineageValues
)

// Options configure [Prepare].
type Options struct {
	// Args and Namespace select objects as kubectl does: "TYPE",
	// "TYPE/NAME" or "TYPE NAME...", and -n; none = every key of both
	// files. TYPE may be a custom resource of either file.
	Args      []string
	Namespace string
	// IncludeStatus keeps .status in the objects compared.
	IncludeStatus bool
	// ShowSecrets shows Secret values instead of masks.
	ShowSecrets bool
	// Lineage says whether revisions are trusted; see [LineageMode].
	Lineage LineageMode
	// ClusterIDA and ClusterIDB are the cluster IDs the sources' backup
	// manifests name, "" when unknown: two known and different IDs are
	// two clusters.
	ClusterIDA, ClusterIDB string
	// Stat counts without diffs: [Plan.Objects] renders only the changed
	// objects (to tell noise from changes) and leaves [Object.Diff] empty.
	Stat bool
	// EventDiffs diffs Events too; without it Events are treated as with
	// Stat (counted and named, no diff): a night of a real cluster holds
	// thousands, each a record of what happened rather than a change.
	EventDiffs bool
	// Workers is how many objects are rendered at once; 0 = every core.
	Workers int
	// OnProblem, if not nil, is told of each record or object that could
	// not be read (side "A" or "B", key "" for a record of the walk); the
	// diff goes on without it, or compares it as a key.
	OnProblem func(side, key string, err error)
}

// Lineage is how [Prepare] treated unchanged revisions.
type Lineage struct {
	// Mode is "revisions" (a key with the same create and mod revision on
	// both sides is taken as unchanged, unread) or "values" (every common
	// key's values are compared).
	Mode string `json:"mode"`
	// Forced: the mode was asked for, not decided from the files.
	Forced bool `json:"forced"`
	// Reason says what the files showed.
	Reason string `json:"reason"`
}

// Plan is what [Prepare] found: the changed keys, the findings, the
// counts. Render the changes with [Plan.Objects].
type Plan struct {
	// Lineage is how revisions were treated.
	Lineage Lineage
	// RevisionA and RevisionB are the files' newest revisions.
	RevisionA, RevisionB int64
	// Findings are what an operator looks at first, in order of severity.
	Findings []Finding
	// Changes are the keys that differ, in output order: cluster-scoped
	// objects, then by namespace, kind and name, then keys that name no
	// object.
	Changes []Change
	// Skipped counts the common keys trusted unchanged by revision;
	// Compared those whose values were compared; Unchanged every common
	// key found unchanged.
	Skipped, Compared, Unchanged int

	a, b *source.Source
	o    Options
	pre  map[int]*Object // rendered for the findings
}

// Change is one changed key, with what its key says of its object.
type Change struct {
	inspect.Change
	// Info is the key's resource, namespace and name; Known is false for
	// a key under no known resource.
	Info  decode.KeyInfo
	Known bool
}

// Prepare walks a and b once (see inspect.Diff), decides the lineage and
// works out the findings. A selection that names nothing possible is an
// [*inspect.SelectionError].
func Prepare(ctx context.Context, a, b *source.Source, o Options) (*Plan, error) {
	p := &Plan{a: a, b: b, o: o, pre: map[int]*Object{}}
	if p.o.Workers <= 0 {
		p.o.Workers = runtime.GOMAXPROCS(0)
	}
	problem := func(side string) func(key string, err error) {
		return func(key string, err error) {
			if o.OnProblem != nil {
				o.OnProblem(side, key, err)
			}
		}
	}
	selA := a.Selector(inspect.SelectorOptions{OnProblem: problem("A")})
	selB := b.Selector(inspect.SelectorOptions{OnProblem: problem("B")})
	sel, err := selA.Select(ctx, inspect.SelectArgs{Args: o.Args, Namespace: o.Namespace})
	if err != nil && errors.Is(err, decode.ErrUnknownResource) {
		sel, err = selB.Select(ctx, inspect.SelectArgs{Args: o.Args, Namespace: o.Namespace}) // a type B's CRDs define
	}
	if err != nil {
		return nil, err
	}
	if sel.Resource != nil && sel.Resource.Custom {
		// both tables must know it
		for _, s := range []*inspect.Selector{selA, selB} {
			if err := s.LoadCRDs(ctx, 0); err != nil {
				return nil, err
			}
		}
	}
	if p.RevisionA, err = a.Snapshot.Revision(); err != nil {
		return nil, err
	}
	if p.RevisionB, err = b.Snapshot.Revision(); err != nil {
		return nil, err
	}
	if err := p.decideLineage(); err != nil {
		return nil, err
	}

	cl := newClassifier(a, b, &sel)
	res, err := inspect.Diff(ctx, a.Snapshot, b.Snapshot, selA.Query(&sel, 0, false),
		inspect.DiffOptions{SameLineage: p.Lineage.Mode == "revisions", Filter: cl.classify})
	if err != nil {
		return nil, err
	}
	for _, pr := range res.ProblemsA {
		problem("A")("", pr)
	}
	for _, pr := range res.ProblemsB {
		problem("B")("", pr)
	}
	p.Skipped, p.Compared = res.Skipped, res.Compared
	p.Unchanged = res.Skipped + res.Compared
	for _, c := range res.Changes {
		if c.Kind == inspect.Modified {
			p.Unchanged--
		}
	}

	// Keys of custom resources are named after CRDs: learn them when a
	// changed key is under no known resource.
	known := func(k string) (decode.KeyInfo, bool) {
		if ki, ok := a.Table.ForKey(a.Prefix, k); ok {
			return ki, true
		}
		return b.Table.ForKey(b.Prefix, k)
	}
	for _, c := range res.Changes {
		if _, ok := known(c.Key); !ok && strings.HasPrefix(c.Key, a.Prefix+"/") {
			for _, s := range []*inspect.Selector{selA, selB} {
				if err := s.LoadCRDs(ctx, 0); err != nil {
					return nil, err
				}
			}
			break
		}
	}
	p.Changes = make([]Change, len(res.Changes))
	for i, c := range res.Changes {
		ki, ok := known(c.Key)
		p.Changes[i] = Change{Change: c, Info: ki, Known: ok && ki.Name != ""}
	}
	slices.SortStableFunc(p.Changes, compareChanges)
	if err := p.findings(ctx, cl, res); err != nil {
		return nil, err
	}
	return p, nil
}

// compareChanges orders cluster-scoped objects first, then by namespace,
// group, kind and name; keys that name no object last, by key.
func compareChanges(x, y Change) int {
	if x.Known != y.Known {
		if x.Known {
			return -1
		}
		return 1
	}
	if !x.Known {
		return strings.Compare(x.Key, y.Key)
	}
	return cmp.Or(
		strings.Compare(x.Info.Namespace, y.Info.Namespace),
		strings.Compare(x.Info.Resource.Group, y.Info.Resource.Group),
		strings.Compare(x.Info.Resource.Kind, y.Info.Resource.Kind),
		strings.Compare(x.Info.Name, y.Info.Name),
		strings.Compare(x.Key, y.Key))
}

// decideLineage applies o.Lineage, the cluster IDs and
// inspect.CompareLineage.
func (p *Plan) decideLineage() error {
	switch p.o.Lineage {
	case LineageSame:
		p.Lineage = Lineage{Mode: "revisions", Forced: true, Reason: "asked for: keys with the same create and mod revision are taken as unchanged, unread"}
		return nil
	case LineageValues:
		p.Lineage = Lineage{Mode: "values", Forced: true, Reason: "asked for: the values of every key both files hold are compared"}
		return nil
	}
	if p.o.ClusterIDA != "" && p.o.ClusterIDB != "" && p.o.ClusterIDA != p.o.ClusterIDB {
		p.Lineage = Lineage{Mode: "values", Reason: fmt.Sprintf("the backups name two clusters (%s, %s)", p.o.ClusterIDA, p.o.ClusterIDB)}
		return nil
	}
	v, err := inspect.CompareLineage(p.a.Snapshot, p.b.Snapshot)
	if err != nil {
		return err
	}
	if v.Same {
		p.Lineage = Lineage{Mode: "revisions", Reason: "one cluster history: " + v.Reason}
	} else {
		p.Lineage = Lineage{Mode: "values", Reason: "one cluster history not shown: " + v.Reason}
	}
	return nil
}

// classifier selects keys and counts them by resource during the walk:
// resources known to either file's table by their key path, other keys by
// their first two segments (the group and plural of a custom resource).
type classifier struct {
	a, b    *source.Source
	sel     *inspect.Selection
	byPath  map[string]int
	mu      sync.RWMutex
	other   map[string]int
	classes []string // class -> name (key path, or "" for keys outside the prefix)
}

func newClassifier(a, b *source.Source, sel *inspect.Selection) *classifier {
	c := &classifier{a: a, b: b, sel: sel, byPath: map[string]int{}, other: map[string]int{}, classes: []string{""}}
	for _, t := range []*decode.ResourceTable{a.Table, b.Table} {
		for _, r := range t.All() {
			if _, ok := c.byPath[r.KeyPath]; !ok {
				c.byPath[r.KeyPath] = len(c.classes)
				c.classes = append(c.classes, r.KeyPath)
			}
		}
	}
	return c
}

func (c *classifier) info(key string) (decode.KeyInfo, bool) {
	if ki, ok := c.a.Table.ForKey(c.a.Prefix, key); ok {
		return ki, true
	}
	return c.b.Table.ForKey(c.b.Prefix, key)
}

// classify is inspect.DiffOptions.Filter. It runs on the walkers.
func (c *classifier) classify(k []byte) (int, bool) {
	key := unsafe.String(unsafe.SliceData(k), len(k)) // not kept past the call
	ki, ok := c.info(key)
	if !c.keep(&ki, ok) {
		return 0, false
	}
	if ok {
		if n, found := c.byPath[ki.Resource.KeyPath]; found {
			return n, true
		}
	}
	return c.otherClass(key), true
}

// keep applies the selection's names and namespace (its type is the
// walk's prefix), as inspect.Selector.Keep does.
func (c *classifier) keep(ki *decode.KeyInfo, ok bool) bool {
	s := c.sel
	if s.Resource == nil {
		return s.Namespace == "" || ok && ki.Namespace == s.Namespace
	}
	if !ok || ki.Resource.KeyPath != s.Resource.KeyPath || s.Namespace != "" && ki.Namespace != s.Namespace {
		return false
	}
	return len(s.Names) == 0 || slices.Contains(s.Names, ki.Name)
}

func (c *classifier) otherClass(key string) int {
	p := c.a.Prefix + "/"
	if !strings.HasPrefix(key, p) {
		return 0
	}
	rest := key[len(p):]
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return 0
	}
	if j := strings.IndexByte(rest[i+1:], '/'); j >= 0 {
		rest = rest[:i+1+j]
	} else {
		rest = rest[:i]
	}
	c.mu.RLock()
	n, ok := c.other[rest]
	c.mu.RUnlock()
	if ok {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.other[rest]; ok {
		return n
	}
	if len(c.classes) >= inspect.MaxDiffClasses-1 {
		return 0
	}
	n = len(c.classes)
	c.other[strings.Clone(rest)] = n
	c.classes = append(c.classes, strings.Clone(rest))
	return n
}

// classOf returns the class of a key after the walk.
func (c *classifier) classOf(key string) int {
	if ki, ok := c.info(key); ok {
		if n, found := c.byPath[ki.Resource.KeyPath]; found {
			return n
		}
	}
	return c.otherClass(key)
}

// Result is what [Plan.Objects] counted.
type Result struct {
	// Added, Deleted and Changed count the objects and keys reported;
	// NoiseOnly the changed ones whose differences were all noise (not
	// reported).
	Added, Deleted, Changed, NoiseOnly int
	// Stats count them by namespace and kind, in output order.
	Stats []Stat
}

// Stat is the counts of one kind in one namespace.
type Stat struct {
	// Namespace is "" for cluster-scoped objects and keys.
	Namespace string `json:"namespace"`
	// Kind is the kind ("Deployment", "Certificate.cert-manager.io"), or
	// "(key)" for keys that name no object.
	Kind      string `json:"kind"`
	Added     int    `json:"added"`
	Deleted   int    `json:"deleted"`
	Changed   int    `json:"changed"`
	NoiseOnly int    `json:"noiseOnly"`
}

// Differs reports whether anything was reported.
func (r *Result) Differs() bool { return r.Added+r.Deleted+r.Changed > 0 }

// Objects renders the plan's changes on [Options.Workers] cores and calls
// emit with each reported object in order; noise-only changes are counted,
// not emitted. emit's error stops it and is returned.
func (p *Plan) Objects(ctx context.Context, emit func(*Object) error) (*Result, error) {
	res := &Result{}
	stats := map[[2]string]*Stat{}
	var order [][2]string
	pl := par.NewOrdered(ctx, p.o.Workers, func(i int) *Object {
		if o := p.pre[i]; o != nil {
			if p.o.Stat {
				c := *o
				c.Diff = ""
				return &c
			}
			return o
		}
		return p.render(i, false)
	}, func(o *Object) error {
		for _, pr := range o.problems {
			if p.o.OnProblem != nil {
				p.o.OnProblem(pr.side, o.Key, pr.err)
			}
		}
		k := [2]string{o.Namespace, o.kindLabel()}
		st := stats[k]
		if st == nil {
			st = &Stat{Namespace: k[0], Kind: k[1]}
			stats[k] = st
			order = append(order, k)
		}
		switch {
		case o.NoiseOnly:
			res.NoiseOnly++
			st.NoiseOnly++
			return nil
		case o.Change == "added":
			res.Added++
			st.Added++
		case o.Change == "deleted":
			res.Deleted++
			st.Deleted++
		default:
			res.Changed++
			st.Changed++
		}
		return emit(o)
	})
	defer pl.Stop()
	for i := range p.Changes {
		if err := pl.Submit(i); err != nil {
			return nil, err
		}
	}
	if err := pl.Finish(); err != nil {
		return nil, err
	}
	for _, k := range order {
		res.Stats = append(res.Stats, *stats[k])
	}
	return res, nil
}
