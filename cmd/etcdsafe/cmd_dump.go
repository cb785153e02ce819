package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/dumptree"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/source"
)

type dumpOptions struct {
	listOptions
	render       renderOptions
	out          string
	includeOwned bool
	deleted      bool
}

func newDumpCmd() *cobra.Command {
	o := &dumpOptions{}
	c := &cobra.Command{
		Use:   "dump SOURCE --out DIR [TYPE[/NAME]]",
		Short: "Write every selected object as a create-ready YAML file",
		Long: `Write one YAML file per object, DIR/<namespace or _cluster>/<resource>/<name>.yaml.
The files are written to a temporary directory next to DIR, which is renamed to DIR only
when every object has been written: an interrupted dump leaves no DIR behind. DIR must
not exist. Keys that would escape DIR (.., separators, NUL) are refused and reported.

Objects that a controller owns (a controller ownerReference: Pods of ReplicaSets, ReplicaSets
of Deployments, Jobs of CronJobs, EndpointSlices of Services) and Events are left out by
default: created again from the dump they would be duplicated or run twice, and their
controllers recreate them. --include-owned writes them too.

--deleted writes, instead of the live objects, the objects that were deleted but whose last
value is still in the file's history (deleted after the last compaction), as they were just
before the deletion.

TYPE may name several types (deploy,svc) or all (kubectl's set); -l and --field-selector
select as kubectl's do. A NAME the file does not hold is an error (exit 1) that says when
it was deleted, if the file shows it; the others are written.` + exitStatus(exitRead...),
		Example: `  etcdsafe dump snapshot.db --out ./payments -n payments --decryption-config enc.yaml
  kubectl create -f ./payments/payments/deployments.apps/
  etcdsafe dump snapshot.db --out ./deleted-last-night -A --deleted
  etcdsafe dump snapshot.db --out ./api all -l app=api -n payments`,
		Args: cobra.RangeArgs(1, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			if o.out == "" {
				return usagef("dump needs --out DIR")
			}
			if err := o.render.validateServerVersion(o.render.raw); err != nil {
				return err
			}
			return runDump(cmd, o, args[0], args[1:])
		},
	}
	o.addFlags(c)
	o.render.addFlags(c, true)
	o.render.addServerVersionFlag(c)
	c.Flags().StringVar(&o.out, "out", "", "directory to create (must not exist)")
	c.Flags().BoolVar(&o.deleted, "deleted", false, "write the deleted objects still in the file's history, as they were before the deletion, instead of the live ones")
	c.Flags().BoolVar(&o.includeOwned, "include-owned", false, "also write objects a controller owns (Pods of ReplicaSets, Jobs of CronJobs, ...) and Events")
	completeObjects(c, &o.src, objectArgs{sources: 1, names: -1})
	return c
}

func runDump(cmd *cobra.Command, o *dumpOptions, path string, args []string) (err error) {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	fails := &failures{w: stderr}
	out := filepath.Clean(o.out)
	if _, err := os.Lstat(out); err == nil {
		return usagef("--out %s already exists; dump writes a new directory", out)
	}
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.Settle(ctx, err) }()
	res := newSelector(cmd, s, fails)
	sels, err := o.selections(ctx, res, args)
	if err != nil {
		return err
	}
	entries, err := o.kept(ctx, res, sels, o.deleted)
	if err != nil {
		return err
	}
	missing, err := notFound(ctx, res, sels, entries, o.revision, o.deleted)
	if err != nil {
		return err
	}

	tree, err := dumptree.Create(out)
	if err != nil {
		return err
	}
	defer tree.Close() // removes the tree unless committed
	prog := newProgress(stderr, len(entries))
	var skip func(*decode.Value) bool
	if !o.includeOwned {
		skip = ownedOrEvent
	}
	if o.render.raw {
		if err := o.render.resolveServedBy(ctx, s, o.revision); err != nil {
			return err
		}
	}
	d := &dumpWrite{s: s, ro: o.render.options(skip), tree: tree, fails: fails, stderr: stderr}
	pl := par.NewOrdered(ctx, renderWorkers(), d.work, d.emit)
	defer pl.Stop()
	for i, e := range entries {
		if i&0xff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		prog.update(i)
		ki, ok := res.KeyInfo(&entries[i])
		if !ok || ki.Name == "" || ki.Resource.Internal {
			d.skipped++ // not an object of a known resource, or apiserver bookkeeping
			continue
		}
		if err := pl.Submit(dumpItem{e: e, ki: ki}); err != nil {
			return err
		}
	}
	if err := pl.Finish(); err != nil {
		return err
	}
	prog.done()
	// nothing appears under --out before the file is known to be intact
	if err := s.Verdict(ctx); err != nil {
		return err
	}
	if err := tree.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s to %s", plural(d.written, "object"), out)
	if d.skipped > 0 {
		fmt.Fprintf(stderr, " (skipped %s: not objects of a known resource, or kube-apiserver bookkeeping such as ranges and masterleases)", plural(d.skipped, "key"))
	}
	if d.owned > 0 {
		fmt.Fprintf(stderr, " (left out %s owned by a controller or Events: --include-owned writes them)", plural(d.owned, "object"))
	}
	fmt.Fprintln(stderr)
	if len(entries) == 0 && len(missing) == 0 {
		fmt.Fprintln(stderr, emptySelections(ctx, res, sels, o.deleted, o.revision))
	}
	return result(fails, missing)
}

// ownedOrEvent says which objects dump leaves out without --include-owned.
// The workers call it: it only answers, emit counts.
func ownedOrEvent(v *decode.Value) bool {
	return v.Object.GetKind() == "Event" || metav1.GetControllerOfNoCopy(v.Object) != nil
}

// dumpWrite renders dump's objects on the render workers and writes them
// to the tree in key order.
type dumpWrite struct {
	s                       *source.Source
	ro                      source.RenderOptions // Skip is nil with --include-owned
	tree                    *dumptree.Tree
	fails                   *failures
	stderr                  io.Writer
	written, skipped, owned int
}

// work decodes, presents and marshals one object. It runs on the workers:
// it writes nothing shared, what it has to say goes into its result.
func (d *dumpWrite) work(it dumpItem) *dumpResult {
	r := &dumpResult{dumpItem: it}
	obj, notes, err := d.s.Render(it.e, d.ro)
	printNotes(&r.notes, it.e.Key, notes)
	if err != nil {
		r.err = err
		return r
	}
	r.yaml, r.marshalErr = marshalYAML(obj.Object)
	return r
}

// emit prints, in key order, what work had to say and writes the file, as
// a sequential loop would.
func (d *dumpWrite) emit(r *dumpResult) error {
	if r.notes.Len() > 0 {
		_, _ = d.stderr.Write(r.notes.Bytes())
	}
	e, ki := r.e, r.ki
	switch {
	case errors.Is(r.err, source.ErrSkipped):
		d.owned++
		return nil
	case errors.Is(r.err, source.ErrNotObject):
		d.skipped++
		return nil
	case r.err != nil:
		d.fails.add(e.Key, r.err)
		return nil
	}
	if err := d.tree.WriteObject(ki.Namespace, ki.Resource.GroupResource(), ki.Name, r.yaml, r.marshalErr); err != nil {
		if errors.Is(err, dumptree.ErrUnsafeName) {
			d.fails.add(e.Key, err)
			return nil
		}
		return fmt.Errorf("write %s: %w", e.Key, err)
	}
	d.written++
	return nil
}

// dumpItem is one object to dump, dumpResult what the workers made of it.
type dumpItem struct {
	e  inspect.Entry
	ki decode.KeyInfo
}

type dumpResult struct {
	dumpItem
	yaml       []byte
	err        error // of render
	marshalErr error
	notes      bytes.Buffer // render's notes, for stderr
}
