//go:build unix

package fsx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var errUnsupportedDirSync = syscall.EINVAL

// Lock takes an exclusive, non-blocking flock on dir/.etcdsafe.lock and
// writes the current pid into it. If another process (or another Lock call
// in this process) holds it, Lock fails with a [*LockedError] wrapping
// [ErrLocked]: at once when the holder's pid is in the file, after up to
// 200 ms when it is not (see flockSettled). unlock releases the lock; the file is left in place
// because removing a lock file races with the next locker.
func Lock(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %q: %w", path, err)
	}
	if err := flockSettled(f); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = f.Close() // closing the descriptor releases the flock
	}, nil
}

// flockSettled takes the flock without blocking. A holder that recorded
// no pid is either between its flock and its pid write, or releasing:
// its truncate done, or its descriptor still open in a child between fork
// and exec (the flock belongs to the open file, which a fork shares until
// the child's exec closes it). Such a lock is tried again for up to
// 200 ms before it counts as held; one with a pid fails at once.
func flockSettled(f *os.File) error {
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		if st, serr := f.Stat(); serr == nil && st.Size() > 0 {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
