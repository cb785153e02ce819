//go:build !unix

package fsx

import (
	"errors"
	"os"
	"syscall"
)

var errUnsupportedDirSync = syscall.EINVAL

// Lock is not implemented on this platform.
func Lock(dir string) (unlock func(), err error) {
	return nil, errors.New("directory locks are not supported on this platform")
}

func lockStaging(dir string, create bool) (*os.File, error) {
	p := dir + string(os.PathSeparator) + StagingLockName
	if create {
		return os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	return nil, &LockedError{Path: p} // no flock: never sweep
}

func ownedByMe(string) bool { return false }
