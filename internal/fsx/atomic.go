package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrCommitted is returned by [AtomicFile.Write] and [AtomicFile.Commit]
// once the file has been committed or aborted.
var ErrCommitted = errors.New("atomic file already committed or aborted")

// CreateTemp creates a new file in dir with a name built from pattern (as
// [os.CreateTemp]) and mode 0600. The caller closes and removes it.
func CreateTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("create temp file in %q: %w", dir, err)
	}
	// os.CreateTemp already uses 0600 before umask; make it explicit so a
	// future change there cannot widen the mode of secret plaintext.
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("chmod temp file %q: %w", f.Name(), err)
	}
	return f, nil
}

// MkdirPrivate creates a new directory with mode 0700 inside parent (the
// system temp dir when parent is empty), named from pattern as in
// [os.MkdirTemp]. The caller removes it.
func MkdirPrivate(parent, pattern string) (string, error) {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", fmt.Errorf("create private dir in %q: %w", parent, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("chmod private dir %q: %w", dir, err)
	}
	return dir, nil
}

// AtomicFile is a file that becomes visible under its final name only when
// [AtomicFile.Commit] succeeds. It is not safe for concurrent use.
//
// The idiom is:
//
//	f, err := fsx.Create(path, 0o600)
//	if err != nil { ... }
//	defer f.Abort()
//	... write ...
//	return f.Commit()
type AtomicFile struct {
	// ExpectSize, when >= 0, is the byte count Commit requires; a short or
	// long write makes Commit fail. Create sets it to -1 (no check).
	ExpectSize int64
	// NoReplace makes Commit fail with an error wrapping [fs.ErrExist]
	// instead of replacing an existing file at the final name.
	NoReplace bool

	f     *os.File
	final string
	n     int64
	done  bool
}

// Create starts an atomic write of path: it creates a temp file
// ".<base>.tmp-*" in path's directory (so the final rename stays on one
// file system) with mode perm.
func Create(path string, perm fs.FileMode) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	if perm != 0o600 {
		if err := f.Chmod(perm); err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			return nil, fmt.Errorf("chmod temp file for %q: %w", path, err)
		}
	}
	return &AtomicFile{ExpectSize: -1, f: f, final: path}, nil
}

// Name returns the temp file's path (not the final name).
func (a *AtomicFile) Name() string { return a.f.Name() }

// Size returns the number of bytes written so far.
func (a *AtomicFile) Size() int64 { return a.n }

// Write writes p to the temp file.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.done {
		return 0, ErrCommitted
	}
	n, err := a.f.Write(p)
	a.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %q: %w", a.f.Name(), err)
	}
	return n, nil
}

// Commit checks the byte count (see ExpectSize), syncs and closes the temp
// file, renames it to the final name and syncs the directory. On error the
// temp file is removed and the final name is left as it was (except if the
// directory sync fails, when the file is in place but may not survive a
// crash). Commit may not be retried: a second call returns [ErrCommitted].
func (a *AtomicFile) Commit() (err error) {
	if a.done {
		return ErrCommitted
	}
	defer func() {
		if err != nil {
			a.Abort()
		}
	}()
	if a.ExpectSize >= 0 && a.n != a.ExpectSize {
		return fmt.Errorf("commit %q: wrote %d bytes, expected %d", a.final, a.n, a.ExpectSize)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", a.f.Name(), err)
	}
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("close %q: %w", a.f.Name(), err)
	}
	tmp := a.f.Name()
	if a.NoReplace {
		// link fails with EEXIST atomically, unlike a stat-then-rename.
		if err := os.Link(tmp, a.final); err != nil {
			return fmt.Errorf("commit %q: %w", a.final, err)
		}
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("remove temp %q: %w", tmp, err)
		}
	} else if err := os.Rename(tmp, a.final); err != nil {
		return fmt.Errorf("commit %q: %w", a.final, err)
	}
	a.done = true
	if err := SyncDir(filepath.Dir(a.final)); err != nil {
		return err
	}
	return nil
}

// Abort closes and removes the temp file. It is a no-op after a successful
// Commit or a previous Abort, so `defer f.Abort()` is always safe.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	_ = a.f.Close()
	_ = os.Remove(a.f.Name())
}

// SyncDir fsyncs the directory dir so that a rename inside it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %q for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errUnsupportedDirSync) {
		return fmt.Errorf("sync dir %q: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to path through an [AtomicFile] with mode
// perm, replacing any existing file.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	f.ExpectSize = int64(len(data))
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}
