package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// Target is where archives and their sidecars are kept: a directory
// ([Local]) or an object store (package s3store). Objects are named by
// base names without separators. Like restic's backend.Backend, it only
// stores bytes: naming, sidecars and retention policies are package
// backup's.
//
// A Target must publish atomically: nothing is visible under a name (in
// List, Stat or Get) until [Upload.Commit] has returned nil, and a run
// killed at any point leaves at most a partial upload that
// [Target.SweepPartials] finds.
type Target interface {
	// String names the target in messages and logs, e.g. the directory.
	String() string
	// Where names one object in messages and logs (a path, a URL).
	Where(name string) string
	// Lock takes the target's exclusive lock, or fails at once with an
	// error wrapping fsx.ErrLocked. Only one backup or prune runs on a
	// target at a time. unlock releases it.
	Lock(ctx context.Context) (unlock func(), err error)
	// List returns the published objects, in no particular order.
	List(ctx context.Context) ([]Object, error)
	// Stat returns one published object; a missing one is an error
	// wrapping fs.ErrNotExist.
	Stat(ctx context.Context, name string) (Object, error)
	// Put starts writing the object name. Nothing appears under name
	// before [Upload.Commit] returns nil.
	Put(ctx context.Context, name string, opts PutOptions) (Upload, error)
	// Get opens a published object; the caller closes it.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Delete removes an object durably; a missing one is not an error.
	Delete(ctx context.Context, name string) error
	// SweepPartials removes (with dryRun only lists) the partial uploads
	// of killed runs whose final name satisfies match, and returns where
	// each was. Call it only while holding the lock, so that no live
	// upload is taken. A partial that cannot be removed is reported in
	// err while the sweep goes on.
	SweepPartials(ctx context.Context, match func(name string) bool, dryRun bool) ([]string, error)
}

// Object is one published object of a [Target].
type Object struct {
	Name    string
	Size    int64
	ModTime time.Time
	// Retention is the object's lock, when the target keeps one and Stat
	// read it (List does not); nil for none.
	Retention *Retention
}

// PutOptions configures [Target.Put].
type PutOptions struct {
	// NoReplace makes Commit fail with an error wrapping fs.ErrExist
	// when an object of that name exists, instead of replacing it.
	NoReplace bool
	// Retention, if set, locks the object until its time: only a
	// [Retainer] takes it; other targets fail the Put with
	// [ErrNoRetention].
	Retention *Retention
	// Meta is metadata stored with the object where the target keeps any
	// (S3 user metadata); a directory ignores it.
	Meta map[string]string
}

// Retention modes, as S3 Object Lock names them.
const (
	// Governance: users with a special permission may still delete.
	Governance = "GOVERNANCE"
	// Compliance: nobody, the account root included, can delete before
	// the date.
	Compliance = "COMPLIANCE"
)

// Retention keeps an object from being deleted or overwritten until a
// time (S3 Object Lock).
type Retention struct {
	Mode  string
	Until time.Time
}

// Active reports whether r still protects its object at now.
func (r *Retention) Active(now time.Time) bool { return r != nil && r.Until.After(now) }

// ErrNoRetention is returned when a retention is asked of a target that
// cannot keep one (a directory, a bucket without Object Lock).
var ErrNoRetention = errors.New("object lock is not available")

// ErrRetained is wrapped by a Delete the target refused because the
// object is locked.
var ErrRetained = errors.New("object is locked")

// RetainedError is a Delete of an object under an active retention.
type RetainedError struct {
	Where     string
	Retention Retention
}

func (e *RetainedError) Error() string {
	return fmt.Sprintf("%s is locked (%s) until %s", e.Where, strings.ToLower(e.Retention.Mode), e.Retention.Until.UTC().Format(time.RFC3339))
}

func (e *RetainedError) Unwrap() error { return ErrRetained }

// Retainer is a [Target] that can lock objects (S3 with Object Lock).
type Retainer interface {
	Target
	// CheckRetention fails, wrapping [ErrNoRetention], when objects put
	// with a retention would not be locked.
	CheckRetention(ctx context.Context) error
}

// Upload is an object being written by [Target.Put].
type Upload interface {
	io.Writer
	// Commit checks that exactly size bytes were written, makes them
	// durable and publishes them under the name. On error nothing new is
	// published and the partial upload is discarded. It may not be
	// retried.
	Commit(size int64) error
	// Abort discards the upload. It is a no-op after Commit, so a
	// deferred Abort is always safe.
	Abort()
}

// Local is a [Target] in a local directory. Put writes a 0600 temp file
// ".NAME.tmp-*" beside the final name, and Commit checks the byte count,
// fsyncs it, renames (or, with NoReplace, links) it into place and fsyncs
// the directory. Lock is an flock on DIR/.etcdsafe.lock holding the pid.
type Local struct {
	dir string
}

// NewLocal returns the [Local] target of dir, which must exist.
func NewLocal(dir string) *Local { return &Local{dir: dir} }

// Dir returns the directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) String() string { return l.dir }

// Where returns the path of name.
func (l *Local) Where(name string) string { return filepath.Join(l.dir, name) }

// Lock takes the directory's flock.
func (l *Local) Lock(context.Context) (func(), error) {
	unlock, err := fsx.Lock(l.dir)
	if err != nil {
		return nil, fmt.Errorf("%s is locked: %w", l.dir, err)
	}
	return unlock, nil
}

// List returns the regular files of the directory, except temp files and
// the lock file.
func (l *Local) List(context.Context) ([]Object, error) {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read backup directory: %w", err)
	}
	var out []Object
	for _, de := range des {
		if _, tmp := fsx.TempBase(de.Name()); tmp || !de.Type().IsRegular() || de.Name() == fsx.LockName {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Object{Name: de.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// Stat returns name's size and time; anything at that name (a directory,
// a symbolic link) counts as existing.
func (l *Local) Stat(_ context.Context, name string) (Object, error) {
	fi, err := os.Lstat(l.Where(name))
	if err != nil {
		return Object{}, err
	}
	return Object{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Put creates the temp file of name; a retention is refused.
func (l *Local) Put(_ context.Context, name string, opts PutOptions) (Upload, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if opts.Retention != nil {
		return nil, fmt.Errorf("%s is a directory: %w", l.dir, ErrNoRetention)
	}
	f, err := fsx.Create(l.Where(name), 0o600)
	if err != nil {
		return nil, err
	}
	f.NoReplace = opts.NoReplace
	return localUpload{f}, nil
}

type localUpload struct{ *fsx.AtomicFile }

func (u localUpload) Commit(size int64) error {
	u.ExpectSize = size
	return u.AtomicFile.Commit()
}

// Get opens name.
func (l *Local) Get(_ context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return os.Open(l.Where(name))
}

// Delete removes name and fsyncs the directory.
func (l *Local) Delete(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := l.Where(name)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return fsx.SyncDir(l.dir)
}

// SweepPartials removes the temp files of killed runs' Puts.
func (l *Local) SweepPartials(_ context.Context, match func(string) bool, dryRun bool) ([]string, error) {
	if !dryRun {
		return fsx.SweepTemps(l.dir, match)
	}
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read backup directory: %w", err)
	}
	var out []string
	for _, de := range des {
		if base, ok := fsx.TempBase(de.Name()); ok && de.Type().IsRegular() && match(base) {
			out = append(out, l.Where(de.Name()))
		}
	}
	return out, nil
}

// checkName refuses names that are not a single path element.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("object name %q: %w", name, fs.ErrInvalid)
	}
	return nil
}
