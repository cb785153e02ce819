package fsx

import (
	"fmt"
	"io"
	"os"
)

// copyBuf is the buffer WriteNew streams through.
const copyBuf = 1 << 20

// WriteNew streams r into a new 0600 file name under root and returns the
// bytes written. The file must not exist: O_EXCL refuses an existing name,
// a symlink included (O_EXCL does not follow one), and root keeps name
// from resolving outside it. On error the file is removed. It does not
// sync: it writes plaintext into a staging dir, which a crash leaves for
// [SweepStaging] to remove, never a result to keep.
//
// It is the one writer of untrusted content (an archive's snapshot and
// kube dir files, a snapshot from standard input) to disk.
func WriteNew(root *os.Root, name string, r io.Reader) (int64, error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %q: %w", name, err)
	}
	// struct{ io.Reader } hides r's WriterTo, so the buffer bounds each read.
	n, err := io.CopyBuffer(f, struct{ io.Reader }{r}, make([]byte, copyBuf))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %q: %w", name, cerr)
	}
	if err != nil {
		_ = root.Remove(name)
		return n, err
	}
	return n, nil
}
