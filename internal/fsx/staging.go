package fsx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ReadStagingPrefix names the staging dirs an archive's (or standard
// input's) snapshot is extracted into to be read: by the read commands and
// by verify alike, so that each sweeps what the other's killed runs left.
const ReadStagingPrefix = "etcdsafe-read-"

// StagingLockName is the file inside a staging directory whose flock says
// that the directory is in use.
const StagingLockName = ".etcdsafe-staging.lock"

// staleUnlocked is how old a directory that matches a staging prefix but
// holds no lock file must be before [SweepStaging] removes it: such a
// directory was left by an etcdsafe older than the lock (or by a run killed
// between mkdir and lock, a window of microseconds).
const staleUnlocked = time.Hour

// staleEmpty is the same for an empty such directory: what a run killed
// between mkdir and lock leaves, with nothing in it to protect.
const staleEmpty = time.Minute

// Staging is a private (0700) work directory that holds plaintext for the
// length of one run: an extracted snapshot, a restore being built. It
// marks itself as in use with a flock held for as long as the process
// lives, so that a later run can tell the leftover of a killed run from one
// still in use, and remove it ([SweepStaging]).
type Staging struct {
	// Path is the directory.
	Path string
	lock *os.File
}

// NewStaging creates parent/<prefix><random> with mode 0700 and locks it.
// An empty parent is the system temp dir. The caller calls
// [Staging.Remove].
func NewStaging(parent, prefix string) (*Staging, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := MkdirPrivate(parent, prefix+"*")
	if err != nil {
		return nil, err
	}
	f, err := lockStaging(dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Staging{Path: dir, lock: f}, nil
}

// WriteNew writes r to the new file name in the staging dir (see the
// package's [WriteNew]: 0600, O_EXCL, no path outside the dir) and
// returns its path.
func (s *Staging) WriteNew(name string, r io.Reader) (string, error) {
	root, err := os.OpenRoot(s.Path)
	if err != nil {
		return "", fmt.Errorf("open staging dir: %w", err)
	}
	defer root.Close()
	if _, err := WriteNew(root, name, r); err != nil {
		return "", err
	}
	return filepath.Join(s.Path, name), nil
}

// Remove deletes the directory and everything in it, then releases the
// lock. It may be called more than once.
func (s *Staging) Remove() error {
	if s == nil || s.Path == "" {
		return nil
	}
	// Everything but the lock file first: a process killed half way
	// through leaves a dir that is still marked as its own (and is swept
	// at once by the next run), not plaintext in an unmarked one.
	var err error
	if des, rerr := os.ReadDir(s.Path); rerr == nil {
		for _, de := range des {
			if de.Name() != StagingLockName {
				err = errors.Join(err, os.RemoveAll(filepath.Join(s.Path, de.Name())))
			}
		}
	}
	err = errors.Join(err, os.RemoveAll(s.Path))
	if s.lock != nil {
		_ = s.lock.Close()
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("remove staging dir %q: %w", s.Path, err)
	}
	s.Path = ""
	return nil
}

// SweepStaging removes the staging directories in parent (the system temp
// dir when empty) whose names start with prefix and that no live process
// holds: what runs killed before their cleanup left behind. Only
// directories owned by the current user are considered. It returns what it
// removed; a directory that cannot be removed is reported in err and the
// sweep goes on.
func SweepStaging(parent, prefix string) (removed []string, err error) {
	if parent == "" {
		parent = os.TempDir()
	}
	des, rerr := os.ReadDir(parent)
	if rerr != nil {
		if errors.Is(rerr, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("sweep %q: %w", parent, rerr)
	}
	var errs []error
	for _, de := range des {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), prefix) {
			continue
		}
		dir := filepath.Join(parent, de.Name())
		if !ownedByMe(dir) {
			continue
		}
		f, lerr := lockStaging(dir, false)
		switch {
		case errors.Is(lerr, ErrLocked):
			continue // in use
		case errors.Is(lerr, os.ErrNotExist):
			// no lock file: an older etcdsafe's leftover, or a run that
			// is between mkdir and lock right now
			st, serr := os.Lstat(dir)
			if serr != nil {
				continue
			}
			age := time.Since(st.ModTime())
			if empty, _ := isEmptyDir(dir); !(empty && age > staleEmpty) && age < staleUnlocked {
				continue
			}
		case lerr != nil:
			errs = append(errs, lerr)
			continue
		}
		rmErr := os.RemoveAll(dir)
		if f != nil {
			_ = f.Close()
		}
		if rmErr != nil {
			errs = append(errs, fmt.Errorf("remove stale staging dir %q: %w", dir, rmErr))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF), nil
}
