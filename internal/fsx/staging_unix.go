//go:build unix

package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStaging takes the staging lock of dir without waiting: create makes
// the lock file (it must not exist); otherwise it must exist, and a missing
// one is reported as os.ErrNotExist. A lock held elsewhere is ErrLocked.
func lockStaging(dir string, create bool) (*os.File, error) {
	p := filepath.Join(dir, StagingLockName)
	flags := os.O_RDONLY | syscall.O_NOFOLLOW
	if create {
		flags = os.O_RDWR | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open staging lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: p}
		}
		return nil, fmt.Errorf("lock staging dir %q: %w", dir, err)
	}
	return f, nil
}

// ownedByMe reports whether dir (not followed) is a directory owned by the
// effective user.
func ownedByMe(dir string) bool {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid()
}
