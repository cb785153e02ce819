package duhtml

import (
	_ "embed" // the page template and the layout library
	"fmt"
	"html/template"
	"io"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/units"
)

var (
	//go:embed page.html.tmpl
	pageTemplate string
	//go:embed third_party/d3-hierarchy/d3-hierarchy.min.js
	d3Hierarchy string
	//go:embed third_party/d3-hierarchy/LICENSE
	d3License string
)

// MaxGroups bounds the resource × namespace groups the treemap draws, and
// MaxNamespaces those of one resource; the smaller ones are merged, per
// resource, into one "(N other namespaces)".
const (
	MaxGroups     = 1000
	MaxNamespaces = 20
)

// Options describe the page.
type Options struct {
	// Source names the file the report is of (as the user gave it).
	Source string
	// Top is how many rows each table shows; 0 is 20.
	Top int
}

// Node is one rectangle of the treemap, or a group of them (Children set).
// The short JSON names keep a page of a few thousand rectangles small.
type Node struct {
	Name string `json:"n"`
	// Key is the etcd key of a leaf that is one object.
	Key string `json:"k,omitempty"`
	// Bytes, HistoryBytes and Revisions are a leaf's (0 on a group: the
	// layout sums its leaves).
	Bytes        int64 `json:"v,omitempty"`
	HistoryBytes int64 `json:"h,omitempty"`
	Revisions    int64 `json:"r,omitempty"`
	// Rest is set on a leaf that stands for this many keys not shown on
	// their own.
	Rest     int64   `json:"o,omitempty"`
	Children []*Node `json:"c,omitempty"`
}

// Leaves returns the rectangles the treemap draws for n (its leaves).
func (n *Node) Leaves() []*Node {
	if len(n.Children) == 0 {
		return []*Node{n}
	}
	var out []*Node
	for _, c := range n.Children {
		out = append(out, c.Leaves()...)
	}
	return out
}

// Tree builds the treemap's tree: resource → namespace (skipped for
// cluster-scoped keys) → object, each of u.Largest its own leaf, the rest
// of each group one leaf.
func Tree(u *inspect.Usage) *Node {
	type gk struct{ res, ns string }
	root := &Node{Name: "etcd"}
	resNodes := map[string]*Node{}
	groupNodes := map[gk]*Node{}
	rest := map[*Node]*inspect.Counts{} // what of a group no leaf shows yet
	resNode := func(res string) *Node {
		n := resNodes[res]
		if n == nil {
			n = &Node{Name: res}
			resNodes[res] = n
			root.Children = append(root.Children, n)
		}
		return n
	}
	var merged map[string]*Node // per resource, the groups past the limits
	perRes := map[string]int{}
	kept := 0
	for _, g := range u.ResourceNamespaces {
		r := resNode(g.Resource)
		c := g.Counts
		if kept >= MaxGroups || perRes[g.Resource] >= MaxNamespaces {
			if merged == nil {
				merged = map[string]*Node{}
			}
			n := merged[g.Resource]
			if n == nil {
				n = &Node{}
				merged[g.Resource] = n
				r.Children = append(r.Children, n)
				rest[n] = &inspect.Counts{}
			}
			addCounts(rest[n], &c)
			n.Rest++ // namespaces, for the name below
			continue
		}
		kept++
		perRes[g.Resource]++
		n := r
		if g.Namespace != "" {
			n = &Node{Name: g.Namespace}
			r.Children = append(r.Children, n)
		}
		groupNodes[gk{g.Resource, g.Namespace}] = n
		if rest[n] == nil {
			rest[n] = &inspect.Counts{}
		}
		addCounts(rest[n], &c)
	}
	for _, n := range merged {
		n.Name = fmt.Sprintf("(%d other namespaces)", n.Rest)
		n.Rest = 0
	}
	for _, k := range u.Largest {
		n := groupNodes[gk{k.Resource, k.Namespace}]
		if n == nil {
			continue // in a merged group
		}
		n.Children = append(n.Children, &Node{Name: k.Name, Key: k.Key, Bytes: k.Bytes, HistoryBytes: k.HistoryBytes, Revisions: k.Revisions})
		c := rest[n]
		c.Keys--
		c.Bytes -= k.Bytes
		c.HistoryBytes -= k.HistoryBytes
		c.Revisions -= k.Revisions
	}
	for n, c := range rest {
		if c.Keys > 0 && c.Bytes > 0 {
			n.Children = append(n.Children, &Node{Name: fmt.Sprintf("(%d other keys)", c.Keys),
				Bytes: c.Bytes, HistoryBytes: c.HistoryBytes, Revisions: c.Revisions, Rest: c.Keys})
		}
	}
	return root
}

// Write writes the page of u to w. It reads nothing but u: the page is
// the same for the same report.
func Write(w io.Writer, u *inspect.Usage, o Options) error {
	if o.Top <= 0 {
		o.Top = 20
	}
	t, err := template.New("page").Funcs(template.FuncMap{
		"bytes": units.Bytes,
		"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
		"share": func(part, whole int64) string { return share(part, whole) },
		"num":   units.Thousands,
		"top": func(n int, v any) any {
			switch l := v.(type) {
			case []inspect.Group:
				return l[:min(n, len(l))]
			case []inspect.KeyUsage:
				return l[:min(n, len(l))]
			}
			return v
		},
		"nsName": func(ns string) string {
			if ns == "" {
				return "(cluster-scoped)"
			}
			return ns
		},
	}).Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("du page template: %w", err)
	}
	return t.Execute(w, struct {
		U       *inspect.Usage
		O       Options
		Tree    *Node
		Library template.JS
		License string
	}{u, o, Tree(u), template.JS(d3Hierarchy), d3License})
}

func addCounts(c, o *inspect.Counts) {
	c.Keys += o.Keys
	c.Revisions += o.Revisions
	c.Bytes += o.Bytes
	c.HistoryBytes += o.HistoryBytes
}

func share(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}
