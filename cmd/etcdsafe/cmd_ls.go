package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// listOptions are the selection flags of ls, get and dump.
type listOptions struct {
	src       sourceOptions
	namespace string
	all       bool
	prefix    string
	revision  int64
}

func (o *listOptions) addFlags(c *cobra.Command) {
	o.src.addFlags(c.Flags())
	c.Flags().StringVarP(&o.namespace, "namespace", "n", "", "only this namespace")
	c.Flags().BoolVarP(&o.all, "all-namespaces", "A", false, "every namespace (the default when -n is not given)")
	c.Flags().StringVar(&o.prefix, "prefix", "", "raw etcd key prefix instead of TYPE (e.g. /registry/ranges/)")
	c.Flags().Int64Var(&o.revision, "revision", 0, "the state as of this etcd revision (default: newest)")
}

func (o *listOptions) validate(args []string) error {
	if o.all && o.namespace != "" {
		return usagef("-n and -A exclude each other")
	}
	if o.prefix != "" && len(args) > 0 {
		return usagef("--prefix and TYPE exclude each other")
	}
	if o.revision < 0 {
		return usagef("--revision must be positive")
	}
	return nil
}

type lsOptions struct {
	listOptions
	deleted bool
	output  string
}

func newLsCmd() *cobra.Command {
	o := &lsOptions{}
	c := &cobra.Command{
		Use:   "ls SOURCE [TYPE[/NAME]]",
		Short: "List the keys and objects in a snapshot",
		Long: `List objects like 'kubectl get': TYPE is a plural, singular, short name or kind, optionally
with its group (deployments.apps, cert, certificates.cert-manager.io); custom resources are
learned from the CRDs in the snapshot itself. Without TYPE, every key is listed, special
keys such as compact_rev_key and /registry/ranges/... included. Without -n, all namespaces
are listed. --deleted lists objects that were deleted but whose last value is still in the
file's history (deleted after the last compaction).

Columns: namespace, name, kind, apiVersion (as the API serves it), the revision of the
newest value, its size, and the encryption-at-rest provider and key name.` + exitStatusHelp,
		Example: `  etcdsafe ls snapshot.db deployments -n payments
  etcdsafe ls snapshot.db secrets -A -o keys
  etcdsafe ls snapshot.db configmaps --deleted
  etcdsafe ls /var/lib/etcd --prefix /registry/ranges/`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			switch o.output {
			case "table", "json", "keys":
			default:
				return usagef("-o must be table, json or keys")
			}
			return runLs(cmd, o, args[0], args[1:], cmd.OutOrStdout())
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&o.deleted, "deleted", false, "list deleted objects still in the file's history")
	c.Flags().StringVarP(&o.output, "output", "o", "table", "table, json or keys")
	return c
}

type lsRow struct {
	Key             string `json:"key"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	Resource        string `json:"resource,omitempty"`
	Kind            string `json:"kind,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	CreateRevision  int64  `json:"createRevision"`
	ModRevision     int64  `json:"modRevision"`
	Version         int64  `json:"version"`
	Size            int    `json:"size"`
	Encryption      string `json:"encryption"`
	Lease           int64  `json:"lease,omitempty"`
	DeletedRevision int64  `json:"deletedRevision,omitempty"`
}

func runLs(cmd *cobra.Command, o *lsOptions, path string, args []string, out io.Writer) (err error) {
	fails := &failures{w: cmd.ErrOrStderr()}
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.settle(cmd.Context(), err) }()
	out0 := out
	out = s.out(cmd.Context(), out)
	sel, entries, err := s.selectEntries(cmd, &o.listOptions, args, o.deleted, fails)
	if err != nil {
		return err
	}
	// Rows are made on the fly from the index entries, twice for a table
	// (column widths, then lines): nothing per row is kept.
	each := func(fn func(lsRow) error) error {
		for _, e := range entries {
			if ki, ok := s.keep(sel, e); ok {
				if err := fn(newLsRow(e, ki, ki.Name != "" || ki.Resource.Kind != "")); err != nil {
					return err
				}
			}
		}
		return nil
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	n := 0
	switch o.output {
	case "json":
		sep := "[\n"
		err = each(func(r lsRow) error {
			b, err := json.MarshalIndent(r, "  ", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "%s  %s", sep, b)
			sep = ",\n"
			n++
			return nil
		})
		if n == 0 {
			fmt.Fprint(bw, "[")
		}
		fmt.Fprint(bw, "\n]\n")
	case "keys":
		clean := func(k string) string { return k } // raw for scripts
		if isTerminal(out0) {
			clean = termtext.Clean
		}
		for _, e := range entries {
			if _, ok := s.keep(sel, e); ok {
				n++
				bw.WriteString(clean(e.Key))
				if err = bw.WriteByte('\n'); err != nil {
					break
				}
			}
		}
	default:
		n, err = writeLsTable(cmd.Context(), bw, s, sel, entries, o.deleted)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if n == 0 && o.output == "table" {
		fmt.Fprintln(cmd.ErrOrStderr(), "No matching keys found.")
	}
	return fails.err()
}

func newLsRow(e inspect.Entry, ki decode.KeyInfo, known bool) lsRow {
	r := lsRow{Key: e.Key, CreateRevision: e.CreateRevision, ModRevision: e.ModRevision, Version: e.Version,
		Size: int(e.ValueSize), Encryption: e.Encryption(), Lease: e.Lease, DeletedRevision: e.DeletedRevision}
	if known {
		r.Namespace, r.Name = ki.Namespace, ki.Name
		r.Resource, r.Kind = ki.Resource.Plural, ki.Resource.Kind
		r.APIVersion = ki.Resource.Version
		if ki.Resource.Group != "" {
			r.Resource += "." + ki.Resource.Group
			r.APIVersion = ki.Resource.Group + "/" + ki.Resource.Version
		}
	}
	return r
}

// writeLsTable prints aligned columns like kubectl, in two passes over
// the entries instead of buffering rows (text/tabwriter keeps every line):
// the column widths, then the lines. Both passes run on every core, over
// chunks of entries; the lines of each chunk are written in order. No
// allocation per row: ls -A of a 1M-key file prints 1M lines.
func writeLsTable(ctx context.Context, w io.Writer, s *source, sel selector, entries []inspect.Entry, deleted bool) (int, error) {
	const chunk = 8192
	chunks := (len(entries) + chunk - 1) / chunk
	bounds := func(i int) []inspect.Entry { return entries[i*chunk : min(len(entries), (i+1)*chunk)] }
	widths := make([][8]int, chunks)
	counts := make([]int, chunks)
	par.Do(chunks, renderWorkers(), func(i int) {
		var c lsCells
		for j := range bounds(i) {
			if c.set(s, sel, &bounds(i)[j]) {
				c.measure(&widths[i])
				counts[i]++
			}
		}
	})
	var t lsTable
	t.deleted = deleted
	n := 0
	for i := range widths {
		for k, v := range widths[i] {
			t.w[k] = max(t.w[k], v)
		}
		n += counts[i]
	}
	if n == 0 {
		return 0, nil
	}
	for i, h := range lsHeader {
		t.w[i] = max(t.w[i], len(h))
	}
	if _, err := w.Write(t.appendCells(nil, lsHeader)); err != nil {
		return n, err
	}
	// line buffers go round: made once per worker, not once per chunk
	bufs := sync.Pool{New: func() any { return make([]byte, 0, chunk*128) }}
	p := newPipeline(ctx, renderWorkers(), func(i int) []byte {
		b := bufs.Get().([]byte)[:0]
		var c lsCells
		for j := range bounds(i) {
			if c.set(s, sel, &bounds(i)[j]) {
				b = t.appendLine(b, &c)
			}
		}
		return b
	}, func(b []byte) error {
		_, err := w.Write(b)
		bufs.Put(b) //nolint:staticcheck // a slice header is small enough
		return err
	})
	defer p.stop()
	for i := range chunks {
		if err := p.submit(i); err != nil {
			return n, err
		}
	}
	return n, p.finish()
}

// lsCells are the columns of one table line, as parts of strings the
// entry and the resource table already hold.
type lsCells struct {
	ns, name, kind, group, version, enc string
	mod, size, del                      int64
}

// set fills c from e, and says whether the selection keeps it.
func (c *lsCells) set(s *source, sel selector, e *inspect.Entry) bool {
	ki, ok := s.keep(sel, *e)
	if !ok {
		return false
	}
	*c = lsCells{ns: ki.Namespace, name: ki.Name, kind: ki.Resource.Kind, mod: e.ModRevision, size: int64(e.ValueSize),
		enc: e.Encryption(), del: e.DeletedRevision}
	if ki.Name != "" || ki.Resource.Kind != "" {
		c.group, c.version = ki.Resource.Group, ki.Resource.Version
	} else {
		c.ns, c.name, c.kind = "", e.Key, ""
	}
	if c.kind == "" {
		c.name, c.kind = e.Key, "(key)"
	}
	// Keys, names and (for CRDs) kinds come from the file: a table is for
	// people, so no escape sequence of theirs reaches the terminal. Clean
	// returns a safe string as it is, without allocating.
	c.ns, c.name, c.kind = termtext.Clean(c.ns), termtext.Clean(c.name), termtext.Clean(c.kind)
	c.group, c.version, c.enc = termtext.Clean(c.group), termtext.Clean(c.version), termtext.Clean(c.enc)
	return true
}

// lsTable prints aligned columns like kubectl.
type lsTable struct {
	deleted bool
	w       [8]int
}

var lsHeader = [8]string{"NAMESPACE", "NAME", "KIND", "APIVERSION", "REVISION", "SIZE", "ENCRYPTION", "DELETED-AT"}

func (c *lsCells) apiVersionLen() int {
	switch {
	case c.version == "":
		return 1 // "-"
	case c.group == "":
		return len(c.version)
	}
	return len(c.group) + 1 + len(c.version)
}

func (c *lsCells) measure(w *[8]int) {
	l := [8]int{max(len(c.ns), 1), len(c.name), len(c.kind), c.apiVersionLen(), digits(c.mod), digits(c.size), len(c.enc), digits(c.del)}
	for i := range w {
		w[i] = max(w[i], l[i])
	}
}

func digits(v int64) int {
	n := 1
	if v < 0 {
		n, v = 2, -v
	}
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

func (t *lsTable) last() int {
	if t.deleted {
		return 7
	}
	return 6
}

// pad appends spaces after a cell of width have in column i.
func (t *lsTable) pad(b []byte, i, have int) []byte {
	if i == t.last() {
		return b
	}
	for range t.w[i] - have + 2 {
		b = append(b, ' ')
	}
	return b
}

func (t *lsTable) appendCells(b []byte, c [8]string) []byte {
	for i := 0; i <= t.last(); i++ {
		b = append(b, c[i]...)
		b = t.pad(b, i, len(c[i]))
	}
	return append(b, '\n')
}

func (t *lsTable) appendLine(b []byte, c *lsCells) []byte {
	b = append(b, orDash(c.ns)...)
	b = t.pad(b, 0, max(len(c.ns), 1))
	b = append(b, c.name...)
	b = t.pad(b, 1, len(c.name))
	b = append(b, c.kind...)
	b = t.pad(b, 2, len(c.kind))
	switch {
	case c.version == "":
		b = append(b, '-')
	case c.group == "":
		b = append(b, c.version...)
	default:
		b = append(append(append(b, c.group...), '/'), c.version...)
	}
	b = t.pad(b, 3, c.apiVersionLen())
	b = strconv.AppendInt(b, c.mod, 10)
	b = t.pad(b, 4, digits(c.mod))
	b = strconv.AppendInt(b, c.size, 10)
	b = t.pad(b, 5, digits(c.size))
	b = append(b, c.enc...)
	if t.deleted {
		b = t.pad(b, 6, len(c.enc))
		b = strconv.AppendInt(b, c.del, 10)
	}
	return append(b, '\n')
}

// selectEntries resolves the selection and walks the file once for its
// keys (live, or deleted with deleted set). Without a TYPE, the CRDs in the
// file are learned first: the keys of custom resources are named after them.
func (s *source) selectEntries(cmd *cobra.Command, o *listOptions, args []string, deleted bool, fails *failures) (selector, []inspect.Entry, error) {
	sel, err := s.selection(cmd, o, args, fails)
	if err != nil {
		return sel, nil, err
	}
	// A walk over the whole keyspace finds the CRDs on the way: they are
	// learned from its entries instead of from a walk of their own.
	whole := sel.resource == nil && sel.rawPrefix == "" && !deleted
	if sel.resource == nil && !whole {
		if err := s.loadCRDs(cmd.Context(), o.revision, fails); err != nil {
			return sel, nil, err
		}
	}
	s.warnCompacted(cmd, o.revision)
	entries, problems, err := s.snap.Index(cmd.Context(), s.query(sel, o.revision, deleted))
	if err != nil {
		return sel, nil, err
	}
	fails.addProblems(problems)
	if whole && !s.crdLoaded {
		s.crdLoaded = true
		p := s.crdPrefix()
		i, _ := slices.BinarySearchFunc(entries, p, func(e inspect.Entry, p string) int { return strings.Compare(e.Key, p) })
		for ; i < len(entries) && strings.HasPrefix(entries[i].Key, p); i++ {
			s.learnCRD(entries[i], fails)
		}
	}
	return sel, entries, nil
}

// warnCompacted says when a state asked for is older than the last
// compaction, and so incomplete.
func (s *source) warnCompacted(cmd *cobra.Command, rev int64) {
	if c := s.snap.CompactRevision(); rev > 0 && rev < c {
		fmt.Fprintf(cmd.ErrOrStderr(), "etcdsafe: warning: revision %d is older than the last compaction (%d): the file no longer holds the objects that changed between the two, so they are missing here\n", rev, c)
	}
}

// selection resolves TYPE[/NAME] -n -A --prefix into a selector.
func (s *source) selection(cmd *cobra.Command, o *listOptions, args []string, fails *failures) (selector, error) {
	sel := selector{namespace: o.namespace, rawPrefix: o.prefix}
	typ, names, err := parseTypeArgs(args)
	if err != nil || typ == "" {
		return sel, err
	}
	r, err := s.resolve(cmd.Context(), typ, o.revision, fails)
	if err != nil {
		return sel, err
	}
	if !r.Namespaced && o.namespace != "" {
		return sel, usagef("%s are cluster-scoped: drop -n", r.Plural)
	}
	sel.resource, sel.names = &r, names
	return sel, nil
}
