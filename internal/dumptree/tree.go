package dumptree

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// ErrUnsafeName is a segment that cannot be a file name under the root
// (the caller reports it and goes on with the other files).
var ErrUnsafeName = errors.New("unsafe name for a file path")

// CheckSegment checks one path segment taken from an etcd key.
func CheckSegment(s string) error {
	switch {
	case s == "", s == ".", s == "..":
		return fmt.Errorf("%w: %q", ErrUnsafeName, s)
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("%w: %q has a separator or NUL", ErrUnsafeName, s)
	case len(s) > 250:
		return fmt.Errorf("%w: %d bytes is too long", ErrUnsafeName, len(s))
	}
	return nil
}

// Tree is a [Writer] over a temporary directory that becomes dir at
// [Tree.Commit].
type Tree struct {
	*Writer
	tmp, dir  string
	committed bool
}

// Create makes the parent of dir if needed (0700) and a temporary
// directory next to dir, ".<base of dir>.etcdsafe-tmp-*", for the tree.
// The caller checks that dir does not exist, and calls Close in any case.
func Create(dir string) (*Tree, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".etcdsafe-tmp-")
	if err != nil {
		return nil, err
	}
	w, err := NewWriter(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Tree{Writer: w, tmp: tmp, dir: dir}, nil
}

// Commit syncs the temporary directory, renames it to dir and syncs
// dir's parent. On error the temporary directory is left for Close to
// remove.
func (t *Tree) Commit() error {
	if err := fsx.SyncDir(t.tmp); err != nil {
		return err
	}
	if err := os.Rename(t.tmp, t.dir); err != nil {
		return fmt.Errorf("rename %s to %s: %w", t.tmp, t.dir, err)
	}
	t.committed = true
	return fsx.SyncDir(filepath.Dir(t.dir))
}

// Close closes the directories still open and, unless Commit renamed
// it, removes the temporary directory with what was written in it.
func (t *Tree) Close() error {
	err := t.Writer.Close()
	if !t.committed {
		if rerr := os.RemoveAll(t.tmp); err == nil {
			err = rerr
		}
	}
	return err
}

// Writer writes files under a root it cannot leave: every path goes
// through os.Root, which refuses "..", absolute paths and symlinks out of
// the root, and segments are checked before.
//
// Each directory is opened once as its own os.Root, one level at a time,
// so that creating a file is a single openat of a single-component name
// (os.Root resolves a multi-component path again on every call, one openat
// per component). A directory is opened only after Lstat said it is a
// directory, not a symlink, and only if the opened directory is that same
// inode: no symlink is ever followed, not even inside the root.
type Writer struct {
	root *os.Root
	open map[string]*os.Root // directories opened, at most maxOpenDirs
}

// maxOpenDirs bounds the directory descriptors a writer keeps open. Keys
// come sorted, so the files of one directory are written together and a
// small cache is enough.
const maxOpenDirs = 64

// NewWriter opens dir as the root of the files to write.
func NewWriter(dir string) (*Writer, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Writer{root: r, open: map[string]*os.Root{}}, nil
}

// Close closes the root and every directory still open.
func (w *Writer) Close() error {
	err := w.closeDirs()
	if cerr := w.root.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *Writer) closeDirs() error {
	var err error
	for p, d := range w.open {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		delete(w.open, p)
	}
	return err
}

// WriteObject writes the object file b of the dump layout,
// <namespace or _cluster>/<resource>/<name>.yaml. name is checked first,
// then every segment (see [Writer.Write]).
func (w *Writer) WriteObject(namespace, resource, name string, b []byte, makeErr error) error {
	if err := CheckSegment(name); err != nil {
		return err
	}
	if namespace == "" {
		namespace = "_cluster"
	}
	return w.Write([]string{namespace, resource, name + ".yaml"}, b, makeErr)
}

// Write puts b at segs (dirs..., file name), 0600, never replacing
// anything. makeErr, if not nil, is the error of making b: it is returned
// after the checks of segs and the directories are made, as if Write had
// made b itself. A refused segment or a symlink on the way is an
// [ErrUnsafeName].
func (w *Writer) Write(segs []string, b []byte, makeErr error) error {
	for _, s := range segs {
		if err := CheckSegment(s); err != nil {
			return err
		}
	}
	d, err := w.dir(segs[:len(segs)-1])
	if err != nil {
		return err
	}
	if makeErr != nil {
		return makeErr
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
func (w *Writer) dir(segs []string) (*os.Root, error) {
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
		return nil, fmt.Errorf("%w: %s is not a directory", ErrUnsafeName, shown)
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if st, err := d.Stat("."); err != nil || !os.SameFile(fi, st) {
		d.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", ErrUnsafeName, shown)
	}
	return d, nil
}
