package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/table"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// listOptions are the selection flags of ls, get and dump.
type listOptions struct {
	src       sourceOptions
	namespace string
	all       bool
	prefix    string
	revision  int64
	sel       selectFlags // -l, --field-selector
}

func (o *listOptions) addFlags(c *cobra.Command) {
	o.src.addFlags(c.Flags())
	c.Flags().StringVarP(&o.namespace, "namespace", "n", "", "only this namespace")
	c.Flags().BoolVarP(&o.all, "all-namespaces", "A", false, "every namespace (the default when -n is not given)")
	c.Flags().StringVar(&o.prefix, "prefix", "", "raw etcd key prefix instead of TYPE (e.g. /registry/ranges/)")
	c.Flags().Int64Var(&o.revision, "revision", 0, "the state as of this etcd revision (default: newest)")
	o.sel.addFlags(c)
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

// selection resolves TYPE[/NAME] -n --prefix into a selection; a mistake
// in them is an inspect.SelectionError (a usage error to classify).
func (o *listOptions) selection(ctx context.Context, res *inspect.Selector, args []string) (inspect.Selection, error) {
	return res.Select(ctx, inspect.SelectArgs{Args: args, Namespace: o.namespace, Prefix: o.prefix, Revision: o.revision})
}

type lsOptions struct {
	listOptions
	sortBy     *inspect.SortBy // --sort-by, nil = key order
	showLabels bool
	deleted    bool
	output     outputSpec
}

func newLsCmd() *cobra.Command {
	o := &lsOptions{}
	c := &cobra.Command{
		Use:   "ls SOURCE [TYPE[,TYPE...][/NAME] | TYPE NAME...]",
		Short: "List the keys and objects in a snapshot",
		Long: `List objects like 'kubectl get': TYPE is a plural, singular, short name or kind, optionally
with its group (deployments.apps, cert, certificates.cert-manager.io); custom resources are
learned from the CRDs in the snapshot itself. Without TYPE, every key is listed, special
keys such as compact_rev_key and /registry/ranges/... included. Without -n, all namespaces
are listed. --deleted lists objects that were deleted but whose last value is still in the
file's history (deleted after the last compaction).

Columns: namespace, name, kind, apiVersion (as the API serves it), the revision of the
newest value, its size, and the encryption-at-rest provider and key name. -o wide adds the
revision that created the key, its version (writes since), its lease and the etcd key.

-o json prints a List (apiVersion v1, kind List) whose items describe the keys: apiVersion,
kind, metadata.name and metadata.namespace of the object (absent for keys that hold none),
and the etcd fields key, resource, createRevision, modRevision, version, size, encryption,
lease, deletedRevision (docs/JSON.md). -o name prints deployment.apps/api (the key for keys
that hold no object); jsonpath=..., go-template=... and custom-columns=... see that List, as
kubectl's do.

TYPE may name several types (deploy,svc) or all (kubectl's set), and names after it (TYPE
NAME...; each one missing is an error, exit 1). -l selects by label, decoding only the
objects the other parts select; --field-selector selects by metadata.name and
metadata.namespace from the keys alone.` + exitStatus(exitRead...),
		Example: `  etcdsafe ls snapshot.db deployments -n payments
  etcdsafe ls snapshot.db secrets -A -o keys
  etcdsafe ls snapshot.db configmaps --deleted
  etcdsafe ls snapshot.db pods -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,REV:.modRevision
  etcdsafe ls /var/lib/etcd --prefix /registry/ranges/`,
		Args: cobra.RangeArgs(1, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			return runLs(cmd, o, args[0], args[1:], cmd.OutOrStdout())
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&o.deleted, "deleted", false, "list deleted objects still in the file's history")
	c.Flags().BoolVar(&o.showLabels, "show-labels", false, "a LABELS column, as kubectl's (decodes the objects listed)")
	addSortByFlag(c, &o.sortBy)
	addObjectOutputFlag(c.Flags(), &o.output, "table", "json", "keys", "name", "wide", "jsonpath", "go-template", "custom-columns")
	completeObjects(c, &o.src, objectArgs{sources: 1})
	return c
}

// lsRow is one key of ls; object is its -o json shape.
type lsRow struct {
	Key             string
	Namespace       string
	Name            string
	Resource        string
	Kind            string
	APIVersion      string
	CreateRevision  int64
	ModRevision     int64
	Version         int64
	Size            int
	Encryption      string
	Lease           int64
	DeletedRevision int64
}

// object is the row as an item of ls's List (docs/JSON.md): the object's
// apiVersion, kind and metadata as kubectl's templates expect them, and
// the etcd fields. A key that holds no object has no apiVersion, kind or
// metadata.
func (r lsRow) object() *unstructured.Unstructured {
	m := map[string]any{"key": r.Key, "createRevision": r.CreateRevision, "modRevision": r.ModRevision,
		"version": r.Version, "size": int64(r.Size), "encryption": r.Encryption}
	if r.Kind != "" {
		m["apiVersion"], m["kind"], m["resource"] = r.APIVersion, r.Kind, r.Resource
		md := map[string]any{"name": r.Name}
		if r.Namespace != "" {
			md["namespace"] = r.Namespace
		}
		m["metadata"] = md
	}
	if r.Lease != 0 {
		m["lease"] = r.Lease
	}
	if r.DeletedRevision != 0 {
		m["deletedRevision"] = r.DeletedRevision
	}
	return &unstructured.Unstructured{Object: m}
}

func runLs(cmd *cobra.Command, o *lsOptions, path string, args []string, out io.Writer) (err error) {
	fails := &failures{w: cmd.ErrOrStderr()}
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.Settle(cmd.Context(), err) }()
	out0 := out
	out = s.Gate(cmd.Context(), out)
	res := newSelector(cmd, s, fails)
	ctx := cmd.Context()
	sels, err := o.selections(ctx, res, args)
	if err != nil {
		return err
	}
	var sel inspect.Selection // the zero selection keeps every entry
	var entries []inspect.Entry
	if len(sels) == 1 && sels[0].Labels == nil && o.sortBy == nil && !o.showLabels {
		// one walk, filtered as it is printed: nothing is copied
		sel = sels[0]
		entries, err = res.Entries(ctx, &sel, o.revision, o.deleted)
	} else {
		entries, err = o.kept(ctx, res, sels, o.deleted)
	}
	if err != nil {
		return err
	}
	missing, err := notFound(ctx, res, sels, entries, o.revision, o.deleted)
	if err != nil {
		return err
	}
	if o.sortBy != nil {
		if entries, err = res.Sort(ctx, o.sortBy, entries, renderWorkers()); err != nil {
			return err
		}
	}
	var labelCol []string // --show-labels: the objects' labels as kubectl shows them
	if o.showLabels {
		if labelCol, err = showLabels(ctx, res, entries); err != nil {
			return err
		}
	}

	// Rows are made on the fly from the index entries: nothing per row
	// is kept.
	each := func(fn func(inspect.Entry, lsRow) error) error {
		for i, e := range entries {
			if ki, ok := res.Keep(&sel, &entries[i]); ok {
				if err := fn(e, newLsRow(e, ki, ki.Name != "" || ki.Resource.Kind != "")); err != nil {
					return err
				}
			}
		}
		return nil
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	n := 0
	switch o.output.format {
	case "json", "name", "jsonpath", "go-template", "custom-columns":
		p := newObjectOutput(bw, o.output, false)
		err = each(func(e inspect.Entry, r lsRow) error {
			n++
			obj := r.object()
			b, err := p.encode(obj)
			return p.write(e, obj, b, err)
		})
		if err == nil {
			err = p.close()
		}
	case "keys":
		clean := func(k string) string { return k } // raw for scripts
		if isTerminal(out0) {
			clean = termtext.Clean
		}
		for i := range entries {
			if _, ok := res.Keep(&sel, &entries[i]); ok {
				n++
				if _, err = bw.WriteString(clean(entries[i].Key)); err == nil {
					err = bw.WriteByte('\n')
				}
				if err != nil {
					break
				}
			}
		}
	default:
		n, err = writeLsTable(cmd.Context(), bw, res, &sel, entries, o.deleted, o.output.format == "wide", labelCol)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if n == 0 && len(missing) == 0 && (o.output.format == "table" || o.output.format == "wide") {
		fmt.Fprintln(cmd.ErrOrStderr(), emptySelections(ctx, res, sels, o.deleted, o.revision))
	}
	return result(fails, missing)
}

// emptySelection says what matched nothing: the type, the names, the
// namespace, the prefix, the revision ("No deleted configmaps named x in
// namespace payments at revision 39.").
func emptySelection(sel *inspect.Selection, deleted bool, rev int64) string {
	var b strings.Builder
	b.WriteString("No ")
	if deleted {
		b.WriteString("deleted ")
	}
	switch {
	case sel.Resource != nil:
		b.WriteString(sel.Resource.Plural)
		if sel.Resource.Group != "" {
			b.WriteString("." + sel.Resource.Group)
		}
	case sel.RawPrefix != "":
		b.WriteString("keys under " + termtext.Clean(sel.RawPrefix))
	default:
		b.WriteString("keys")
	}
	if len(sel.Names) > 0 {
		b.WriteString(" named " + termtext.Clean(strings.Join(sel.Names, ", ")))
	}
	b.WriteString(selectionLabel(sel))
	if sel.Namespace != "" {
		b.WriteString(" in namespace " + termtext.Clean(sel.Namespace))
	}
	if rev > 0 {
		fmt.Fprintf(&b, " at revision %d", rev)
	}
	b.WriteString(" in this file.")
	return b.String()
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

// lsHeader names the table's columns; DELETED-AT is shown with --deleted,
// lsWide's with -o wide.
var (
	lsHeader = []string{"NAMESPACE", "NAME", "KIND", "APIVERSION", "REVISION", "SIZE", "ENCRYPTION", "DELETED-AT"}
	lsWide   = []string{"CREATED", "VERSION", "LEASE", "KEY"}
)

// writeLsTable prints the entries the selection keeps as a table. Rows
// are made on the fly from the entries, twice (widths, then lines): ls -A
// of a 1M-key file prints 1M lines without keeping anything per row.
func writeLsTable(ctx context.Context, w io.Writer, res *inspect.Selector, sel *inspect.Selection, entries []inspect.Entry, deleted, wide bool, labels []string) (int, error) {
	header := slices.Clone(lsHeader[:7])
	if deleted {
		header = append(header, lsHeader[7])
	}
	if wide {
		header = append(header, lsWide...)
	}
	if labels != nil {
		header = append(header, "LABELS")
	}
	return table.Print(ctx, w, len(entries), table.Options{Header: header, Workers: renderWorkers(),
		Row: func(i int, c []table.Cell) bool {
			e := &entries[i]
			ki, ok := res.Keep(sel, e)
			if !ok {
				return false
			}
			ns, name, kind, api := ki.Namespace, ki.Name, ki.Resource.Kind, table.Text("-")
			if ki.Name == "" && kind == "" {
				ns, name = "", e.Key
			} else if ki.Resource.Version != "" {
				api = table.Join(ki.Resource.Group, '/', ki.Resource.Version)
			}
			if kind == "" {
				name, kind = e.Key, "(key)"
			}
			c[0], c[1], c[2], c[3] = table.Text(orDash(ns)), table.Text(name), table.Text(kind), api
			c[4], c[5], c[6] = table.Int(e.ModRevision), table.Int(int64(e.ValueSize)), table.Text(e.Encryption())
			k := 7
			if deleted {
				c[k] = table.Int(e.DeletedRevision)
				k++
			}
			if wide {
				lease := table.Text("-")
				if e.Lease != 0 {
					lease = table.Text(fmt.Sprintf("%x", e.Lease))
				}
				c[k], c[k+1], c[k+2], c[k+3] = table.Int(e.CreateRevision), table.Int(e.Version), lease, table.Text(e.Key)
				k += 4
			}
			if labels != nil {
				c[k] = table.Text(labels[i])
			}
			return true
		}})
}
