package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

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

// lsHeader names the table's columns; DELETED-AT is shown with --deleted.
var lsHeader = []string{"NAMESPACE", "NAME", "KIND", "APIVERSION", "REVISION", "SIZE", "ENCRYPTION", "DELETED-AT"}

// writeLsTable prints the entries the selection keeps as a table. Rows
// are made on the fly from the entries, twice (widths, then lines): ls -A
// of a 1M-key file prints 1M lines without keeping anything per row.
func writeLsTable(ctx context.Context, w io.Writer, s *source, sel selector, entries []inspect.Entry, deleted bool) (int, error) {
	header := lsHeader[:7]
	if deleted {
		header = lsHeader
	}
	return table.Print(ctx, w, len(entries), table.Options{Header: header, Workers: renderWorkers(),
		Row: func(i int, c []table.Cell) bool {
			e := &entries[i]
			ki, ok := s.keep(sel, *e)
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
			if deleted {
				c[7] = table.Int(e.DeletedRevision)
			}
			return true
		}})
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
