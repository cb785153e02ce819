package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/source"
)

type getOptions struct {
	listOptions
	render  renderOptions
	sortBy  *inspect.SortBy // --sort-by, nil = key order
	output  outputSpec
	key     string
	deleted bool
}

func newGetCmd() *cobra.Command {
	o := &getOptions{}
	c := &cobra.Command{
		Use:   "get SOURCE TYPE[/NAME] | get SOURCE TYPE NAME... | get SOURCE --key KEY",
		Short: "Print objects from a snapshot as create-ready YAML (or as the API serves them)",
		Long: `Decode objects (protobuf, JSON, CBOR; encrypted at rest with aescbc, aesgcm or secretbox given
--decryption-config) and print them.

By default the output is create-ready: 'kubectl create -f' accepts it on a fresh cluster
(server-set fields removed per kind, see docs/CLEANING.md). --raw prints the object as the
API server would serve it, resourceVersion being the record's revision. Objects stored at a
version the API no longer serves (CRDs in apiextensions.k8s.io/v1beta1, ...) are converted
to the served version; --storage-version shows them as stored. --revision R prints the
objects as they were at revision R, if the file still holds that revision.

Without -n, a NAME is looked up in every namespace. Several objects print as a YAML stream
(or a JSON List). --key prints any key, special keys such as compact_rev_key included.

--deleted prints objects that were deleted but whose last value is still in the file's
history (deleted after the last compaction), as they were just before the deletion:
create-ready, to put a deleted object back. Without it, a named object that the file shows
as deleted is an error that says when it was deleted.

-o name, wide, jsonpath=..., go-template=... and custom-columns=... (and their -file=PATH
forms) print as kubectl's do: name as deployment.apps/api; wide as a table per kind (pods:
status, IP, node, images; deployments: replicas, containers, images, selector; see
docs/JSON.md), of the objects as served (--raw); jsonpath and go-template see the object
asked for by name, otherwise a List of all of them. A template that does not parse or run
is a usage error.

TYPE may name several types (deploy,svc) or all (kubectl's set: pods, services, daemonsets,
deployments, replicasets, statefulsets, jobs, cronjobs, replicationcontrollers,
horizontalpodautoscalers). Each NAME the file does not hold is an error (exit 1) that says
when it was deleted, if the file shows it; the others are printed. -l selects by label
(decoding the objects the other parts select), --field-selector by metadata.name and
metadata.namespace, as kubectl's do.` + exitStatus(exitRead...),
		Example: `  etcdsafe get snapshot.db deployment/api -n payments > api.yaml && kubectl create -f api.yaml
  etcdsafe get snapshot.db secrets -n payments --decryption-config /etc/kubernetes/encryption-config.yaml
  etcdsafe get snapshot.db cm -A -l app=api -o json --raw
  etcdsafe get snapshot.db deploy/api --revision 228
  etcdsafe get snapshot.db pods -A -o wide
  etcdsafe get snapshot.db deploy -n payments -o jsonpath='{.items[*].spec.template.spec.containers[*].image}'
  etcdsafe get snapshot.db --key compact_rev_key
  etcdsafe get snapshot.db deploy/api -n payments --deleted | kubectl create -f -`,
		Args: cobra.RangeArgs(1, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			if o.key == "" && o.prefix == "" && len(args) < 2 {
				return usagef("get needs a TYPE, --key KEY or --prefix PREFIX")
			}
			if o.key != "" && (len(args) > 1 || o.prefix != "") {
				return usagef("--key excludes TYPE and --prefix")
			}
			if o.key != "" && (o.sel.labels != "" || o.sel.fields != "" || o.sortBy != nil) {
				return usagef("--key excludes -l, --field-selector and --sort-by: it names one key")
			}
			if err := o.render.validateServerVersion(o.render.raw || o.output.format == "wide"); err != nil {
				return err
			}
			return runGet(cmd, o, args[0], args[1:], cmd.OutOrStdout())
		},
	}
	o.addFlags(c)
	o.render.addFlags(c, true)
	o.render.addServerVersionFlag(c)
	addObjectOutputFlag(c.Flags(), &o.output, "yaml", "json", "name", "wide", "jsonpath", "go-template", "custom-columns")
	c.Flags().StringVar(&o.key, "key", "", "one raw etcd key")
	addSortByFlag(c, &o.sortBy)
	c.Flags().BoolVar(&o.deleted, "deleted", false, "print deleted objects still in the file's history, as they were before the deletion")
	completeObjects(c, &o.src, objectArgs{sources: 1, names: -1})
	return c
}

func runGet(cmd *cobra.Command, o *getOptions, path string, args []string, out io.Writer) (err error) {
	ctx := cmd.Context()
	fails := &failures{w: cmd.ErrOrStderr()}
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.Settle(ctx, err) }()
	out = s.Gate(ctx, out)
	res := newSelector(cmd, s, fails)
	var sels []inspect.Selection
	if o.key == "" {
		if sels, err = o.selections(ctx, res, args); err != nil {
			return err
		}
	}
	if o.render.raw || o.output.format == "wide" {
		if err := o.render.resolveServedBy(ctx, s, o.revision); err != nil {
			return err
		}
	}
	ro := o.render.options(nil)
	if len(sels) == 1 && sels[0].Resource != nil {
		ro.Present.AsGroup = sels[0].Resource.Group // events.k8s.io views core Events in its schema
	}
	if o.output.format == "wide" {
		ro.Present.Raw = true // wide shows status, node and IP: the object as served
	}
	single := o.key != "" || len(sels) == 1 && len(sels[0].Names) == 1
	g := &getPrint{s: s, ro: ro, p: newObjectOutput(out, o.output, single), fails: fails, stderr: cmd.ErrOrStderr()}
	if len(sels) > 0 {
		g.labels = sels[0].Labels // the same in each; matched again after decoding
	}
	pl := par.NewOrdered(ctx, renderWorkers(), g.work, g.emit)
	defer pl.Stop()
	// submit renders entries, those sel keeps when sel is set (with -l,
	// only their labels are read first, and only the matching ones
	// decoded). It returns the kept entries of named objects, for notFound.
	submit := func(entries []inspect.Entry, sel *inspect.Selection) ([]inspect.Entry, error) {
		var named []inspect.Entry
		if sel != nil {
			kept, matched, err := selected(ctx, res, sel, entries)
			if err != nil {
				return nil, err
			}
			if len(sel.Names) > 0 {
				named = kept
			}
			entries = matched
		}
		for i, e := range entries {
			if i&0xff == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := pl.Submit(e); err != nil {
				return nil, err
			}
		}
		return named, nil
	}
	var named []inspect.Entry
	if o.key != "" {
		entries, err := res.Index(ctx, inspect.Query{Exact: []byte(o.key), Revision: o.revision, Deleted: o.deleted})
		if err == nil {
			_, err = submit(entries, nil)
		}
		if err != nil {
			return err
		}
	}
	var all []inspect.Entry // with --sort-by: every selection's entries, sorted together
	for i := range sels {
		entries, err := res.Index(ctx, res.Query(&sels[i], o.revision, o.deleted))
		if err != nil {
			return err
		}
		if o.sortBy != nil {
			// sorted after -l: only the matching objects are decoded to sort
			kept, matched, err := selected(ctx, res, &sels[i], entries)
			if err != nil {
				return err
			}
			named = append(named, kept...)
			all = append(all, matched...)
			continue
		}
		n, err := submit(entries, &sels[i])
		if err != nil {
			return err
		}
		named = append(named, n...)
	}
	if o.sortBy != nil {
		sorted, err := res.Sort(ctx, o.sortBy, all, renderWorkers())
		if err == nil {
			_, err = submit(sorted, nil)
		}
		if err != nil {
			return err
		}
	}
	if err := pl.Finish(); err != nil {
		return err
	}
	if err := g.p.close(); err != nil {
		return err
	}
	if o.key != "" {
		if g.found > 0 {
			return fails.err()
		}
		deleted := " among the deleted objects still in the file's history"
		if !o.deleted {
			if deleted, err = deletedNote(ctx, res, &inspect.Selection{}, inspect.Query{Exact: []byte(o.key), Revision: o.revision}); err != nil {
				return err
			}
		}
		return fmt.Errorf("key %q not found (at revision %s)%s", o.key, revLabel(o.revision), deleted)
	}
	missing, err := notFound(ctx, res, sels, named, o.revision, o.deleted)
	if err != nil {
		return err
	}
	if g.found == 0 && len(missing) == 0 && fails.n == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), emptySelections(ctx, res, sels, o.deleted, o.revision))
	}
	return result(fails, missing)
}

// deletedNote tells, for a selection that found no live object, when the
// file shows it was deleted: ": deleted at revision N; --deleted gets its
// last state", or "" when it does not.
func deletedNote(ctx context.Context, res *inspect.Selector, what *inspect.Selection, q inspect.Query) (string, error) {
	q.Deleted = true
	entries, err := res.Index(ctx, q)
	if err != nil {
		return "", err
	}
	var revs []string
	for i := range entries {
		if q.Exact == nil {
			if _, ok := res.Keep(what, &entries[i]); !ok {
				continue
			}
		}
		if entries[i].Deleted {
			revs = append(revs, strconv.FormatInt(entries[i].DeletedRevision, 10))
		}
	}
	if len(revs) == 0 {
		return "", nil
	}
	return fmt.Sprintf(": deleted at revision %s; --deleted gets its last state", strings.Join(revs, ", ")), nil
}

// getPrint renders get's objects on the render workers and prints them
// in key order.
type getPrint struct {
	s      *source.Source
	ro     source.RenderOptions
	labels labels.Selector // -l, nil = every object
	found  int             // objects printed
	p      objectOutput
	fails  *failures
	stderr io.Writer
}

// work decodes, presents, filters and encodes one entry. It runs on the
// workers: it writes nothing shared, what it has to say goes into its
// result.
func (g *getPrint) work(e inspect.Entry) *getResult {
	r := &getResult{e: e}
	obj, notes, err := g.s.Render(e, g.ro)
	printNotes(&r.notes, e.Key, notes)
	if err != nil {
		r.err = err
		return r
	}
	if g.labels != nil && !g.labels.Matches(labels.Set(obj.GetLabels())) {
		r.unselected = true
		return r
	}
	r.obj = obj
	r.b, r.encErr = g.p.encode(obj)
	return r
}

// emit prints, in key order, what work had to say and the object, as a
// sequential loop would.
func (g *getPrint) emit(r *getResult) error {
	if r.notes.Len() > 0 {
		_, _ = g.stderr.Write(r.notes.Bytes())
	}
	switch {
	case errors.Is(r.err, source.ErrNotObject):
		g.found++
		return g.p.printKey(r.e, g.s)
	case r.err != nil:
		g.fails.add(r.e.Key, r.err)
		return nil
	case r.unselected:
		return nil
	}
	g.found++
	return g.p.write(r.e, r.obj, r.b, r.encErr)
}

func revLabel(rev int64) string {
	if rev == 0 {
		return "newest"
	}
	return fmt.Sprint(rev)
}

func nsLabel(ns string) string {
	if ns == "" {
		return " in any namespace"
	}
	return " in namespace " + ns
}

// getResult is what the workers made of one entry.
type getResult struct {
	e          inspect.Entry
	obj        *unstructured.Unstructured
	b          []byte // obj encoded by printer.encode
	encErr     error
	err        error        // of render
	unselected bool         // -l does not match
	notes      bytes.Buffer // render's notes, for stderr
}
