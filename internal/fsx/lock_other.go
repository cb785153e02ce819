//go:build !unix

package fsx

import (
	"errors"
	"syscall"
)

var errUnsupportedDirSync = syscall.EINVAL

// Lock is not implemented on this platform.
func Lock(dir string) (unlock func(), err error) {
	return nil, errors.New("directory locks are not supported on this platform")
}
