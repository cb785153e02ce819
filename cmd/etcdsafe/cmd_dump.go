package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/dumptree"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

type dumpOptions struct {
	listOptions
	render       renderOptions
	out          string
	includeOwned bool
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
controllers recreate them. --include-owned writes them too.` + exitStatusHelp,
		Example: `  etcdsafe dump snapshot.db --out ./payments -n payments --decryption-config enc.yaml
  kubectl create -f ./payments/payments/deployments.apps/`,
		Args: cobra.RangeArgs(1, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			if o.out == "" {
				return usagef("dump needs --out DIR")
			}
			return runDump(cmd, o, args[0], args[1:])
		},
	}
	o.addFlags(c)
	o.render.addFlags(c, true)
	c.Flags().StringVar(&o.out, "out", "", "directory to create (must not exist)")
	c.Flags().BoolVar(&o.includeOwned, "include-owned", false, "also write objects a controller owns (Pods of ReplicaSets, Jobs of CronJobs, ...) and Events")
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
	defer func() { err = s.settle(ctx, err) }()
	res := s.selector(cmd, fails)
	sel, entries, err := o.entries(ctx, res, args, false)
	if err != nil {
		return err
	}

	tree, err := dumptree.Create(out)
	if err != nil {
		return err
	}
	defer tree.Close() // removes the tree unless committed
	prog := newProgress(stderr, len(entries))
	written, skipped, owned := 0, 0, 0
	var skipOwned func(*decode.Value) bool
	if !o.includeOwned {
		// called by the workers: it only answers, emit counts
		skipOwned = func(v *decode.Value) bool {
			return v.Object.GetKind() == "Event" || metav1.GetControllerOfNoCopy(v.Object) != nil
		}
	}
	po := o.render.present()
	// Workers decode, present and marshal; emit, in key order, prints what
	// they had to say and writes the files, as a sequential loop would.
	work := func(it dumpItem) *dumpResult {
		r := &dumpResult{dumpItem: it}
		obj, err := s.render(it.e, po, &r.notes, skipOwned)
		if err != nil {
			r.err = err
			return r
		}
		r.yaml, r.marshalErr = marshalYAML(obj.Object)
		return r
	}
	emit := func(r *dumpResult) error {
		if r.notes.Len() > 0 {
			_, _ = stderr.Write(r.notes.Bytes())
		}
		e, ki := r.e, r.ki
		if r.err != nil {
			if errors.Is(r.err, errSkipped) {
				owned++
				return nil
			}
			if errors.Is(r.err, errNotObject) {
				skipped++
				return nil
			}
			fails.add(e.Key, r.err)
			return nil
		}
		if werr := tree.WriteObject(ki.Namespace, ki.Resource.GroupResource(), ki.Name, r.yaml, r.marshalErr); werr != nil {
			if errors.Is(werr, dumptree.ErrUnsafeName) {
				fails.add(e.Key, werr)
				return nil
			}
			return fmt.Errorf("write %s: %w", e.Key, werr)
		}
		written++
		return nil
	}
	pl := par.NewOrdered(ctx, renderWorkers(), work, emit)
	defer pl.Stop()
	for i, e := range entries {
		if i&0xff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		prog.update(i)
		ki, ok := res.Keep(&sel, &entries[i])
		if !ok {
			continue
		}
		if ki.Name == "" || ki.Resource.Internal {
			skipped++ // not an object of a known resource, or apiserver bookkeeping
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
	if err := s.integ.wait(ctx); err != nil {
		return err
	}
	if err := tree.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s to %s", plural(written, "object"), out)
	if skipped > 0 {
		fmt.Fprintf(stderr, " (skipped %s: not objects of a known resource, or kube-apiserver bookkeeping such as ranges and masterleases)", plural(skipped, "key"))
	}
	if owned > 0 {
		fmt.Fprintf(stderr, " (left out %s owned by a controller or Events: --include-owned writes them)", plural(owned, "object"))
	}
	fmt.Fprintln(stderr)
	return fails.err()
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

// progress prints a one-line counter on a terminal, and nothing elsewhere.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w)}
}

func (p *progress) update(i int) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%d/%d objects", i, p.total)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
