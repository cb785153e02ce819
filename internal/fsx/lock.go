package fsx

import (
	"errors"
	"fmt"
)

// LockName is the lock file [Lock] creates inside the locked directory.
const LockName = ".etcdsafe.lock"

// ErrLocked means another process holds the directory lock.
var ErrLocked = errors.New("directory is locked by another etcdsafe run")

// LockedError reports who holds a lock. It wraps [ErrLocked].
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id as it wrote it, or 0 if unknown.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s: held by pid %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s: held by another process", e.Path)
}

// Unwrap returns [ErrLocked].
func (e *LockedError) Unwrap() error { return ErrLocked }
