package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
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

// errUnsafeName: a key segment that cannot be a file name under the root.
var errUnsafeName = errors.New("unsafe name for a file path")

// safeSegment checks one path segment taken from an etcd key.
func safeSegment(s string) error {
	switch {
	case s == "", s == ".", s == "..":
		return fmt.Errorf("%w: %q", errUnsafeName, s)
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("%w: %q has a separator or NUL", errUnsafeName, s)
	case len(s) > 250:
		return fmt.Errorf("%w: %d bytes is too long", errUnsafeName, len(s))
	}
	return nil
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
	sel, entries, err := s.selectEntries(cmd, &o.listOptions, args, false, fails)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".etcdsafe-tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	tw, err := newTreeWriter(tmp)
	if err != nil {
		return err
	}
	defer tw.Close()
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
		ns := ki.Namespace
		if ns == "" {
			ns = "_cluster"
		}
		res := ki.Resource.Plural
		if ki.Resource.Group != "" {
			res += "." + ki.Resource.Group
		}
		if werr := safeSegment(ki.Name); werr != nil {
			fails.add(e.Key, werr)
			return nil
		}
		if werr := tw.write([]string{ns, res, ki.Name + ".yaml"}, r.yaml, r.marshalErr); werr != nil {
			if errors.Is(werr, errUnsafeName) {
				fails.add(e.Key, werr)
				return nil
			}
			return fmt.Errorf("write %s: %w", e.Key, werr)
		}
		written++
		return nil
	}
	pl := newPipeline(ctx, renderWorkers(), work, emit)
	defer pl.stop()
	for i, e := range entries {
		if i&0xff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		prog.update(i)
		ki, ok := s.keep(sel, e)
		if !ok {
			continue
		}
		if ki.Name == "" || ki.Resource.Internal {
			skipped++ // not an object of a known resource, or apiserver bookkeeping
			continue
		}
		if err := pl.submit(dumpItem{e: e, ki: ki}); err != nil {
			return err
		}
	}
	if err := pl.finish(); err != nil {
		return err
	}
	prog.done()
	// nothing appears under --out before the file is known to be intact
	if err := s.integ.wait(ctx); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, out, err)
	}
	if err := syncDir(filepath.Dir(out)); err != nil {
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

// treeWriter writes object files under a root it cannot leave: every
// path goes through os.Root, which refuses "..", absolute paths and
// symlinks out of the root, and segments from etcd keys are checked before.
//
// Each directory is opened once as its own os.Root, one level at a time,
// so that creating a file is a single openat of a single-component name
// (os.Root resolves a multi-component path again on every call, one openat
// per component). A directory is opened only after Lstat said it is a
// directory, not a symlink, and only if the opened directory is that same
// inode: no symlink is ever followed, not even inside the root.
type treeWriter struct {
	root *os.Root
	open map[string]*os.Root // directories opened, at most maxOpenDirs
}

// maxOpenDirs bounds the directory descriptors a dump keeps open. Keys come
// sorted, so the files of one directory are written together and a small
// cache is enough.
const maxOpenDirs = 64

func newTreeWriter(dir string) (*treeWriter, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &treeWriter{root: r, open: map[string]*os.Root{}}, nil
}

func (w *treeWriter) Close() error {
	err := w.closeDirs()
	if cerr := w.root.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *treeWriter) closeDirs() error {
	var err error
	for p, d := range w.open {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		delete(w.open, p)
	}
	return err
}

// write puts the YAML b at segs (dirs..., file name), 0600, never
// replacing anything. marshalErr, if not nil, is the error of making b:
// it is returned after the checks of segs, as when write marshalled the
// object itself.
func (w *treeWriter) write(segs []string, b []byte, marshalErr error) error {
	for _, s := range segs {
		if err := safeSegment(s); err != nil {
			return err
		}
	}
	d, err := w.dir(segs[:len(segs)-1])
	if err != nil {
		return err
	}
	if marshalErr != nil {
		return marshalErr
	}
	f, err := d.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dir returns the directory segs (already checked), made and opened if
// needed.
func (w *treeWriter) dir(segs []string) (*os.Root, error) {
	p := path.Join(segs...)
	if d := w.open[p]; d != nil {
		return d, nil
	}
	if len(w.open) >= maxOpenDirs {
		if err := w.closeDirs(); err != nil {
			return nil, err
		}
	}
	d, shown := w.root, ""
	for _, s := range segs {
		shown = path.Join(shown, s)
		sub, err := openDir(d, s, shown)
		if d != w.root {
			d.Close()
		}
		if err != nil {
			return nil, err
		}
		d = sub
	}
	w.open[p] = d
	return d, nil
}

// openDir makes (if needed) and opens the directory name in parent; shown
// is its path under the root, for errors.
func openDir(parent *os.Root, name, shown string) (*os.Root, error) {
	if err := parent.Mkdir(name, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	fi, err := parent.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", errUnsafeName, shown)
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if st, err := d.Stat("."); err != nil || !os.SameFile(fi, st) {
		d.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", errUnsafeName, shown)
	}
	return d, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
