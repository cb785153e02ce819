package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
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

func runLs(cmd *cobra.Command, o *lsOptions, path string, args []string, out io.Writer) error {
	ctx := cmd.Context()
	fails := &failures{w: cmd.ErrOrStderr()}
	s, err := openSource(path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	sel, err := s.selection(cmd, &o.listOptions, args, fails)
	if err != nil {
		return err
	}
	if sel.resource == nil {
		// keys of custom resources are named after their CRDs
		if err := s.loadCRDs(ctx, o.revision, fails); err != nil {
			return err
		}
	}
	entries, problems, err := s.snap.Index(ctx, s.query(sel, o.revision, o.deleted))
	if err != nil {
		return err
	}
	fails.addProblems(problems)
	var rows []lsRow
	for _, e := range entries {
		ki, ok := s.keep(sel, e)
		if !ok {
			continue
		}
		rows = append(rows, newLsRow(e, ki, ok))
	}
	switch o.output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []lsRow{}
		}
		if err := enc.Encode(rows); err != nil {
			return err
		}
	case "keys":
		for _, r := range rows {
			fmt.Fprintln(out, r.Key)
		}
	default:
		printLsTable(out, rows, o.deleted)
		if len(rows) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "No matching keys found.")
		}
	}
	return fails.err()
}

func newLsRow(e inspect.Entry, ki decode.KeyInfo, known bool) lsRow {
	r := lsRow{Key: e.Key, CreateRevision: e.CreateRevision, ModRevision: e.ModRevision, Version: e.Version,
		Size: e.ValueSize, Encryption: e.Encryption, Lease: e.Lease, DeletedRevision: e.DeletedRevision}
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

func printLsTable(out io.Writer, rows []lsRow, deleted bool) {
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	hdr := "NAMESPACE\tNAME\tKIND\tAPIVERSION\tREVISION\tSIZE\tENCRYPTION"
	if deleted {
		hdr += "\tDELETED-AT"
	}
	fmt.Fprintln(tw, hdr)
	for _, r := range rows {
		name, kind := r.Name, r.Kind
		if kind == "" {
			name, kind = r.Key, "(key)"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%d\t%s", orDash(r.Namespace), name, kind, orDash(r.APIVersion), r.ModRevision, r.Size, r.Encryption)
		if deleted {
			line += fmt.Sprintf("\t%d", r.DeletedRevision)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
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
