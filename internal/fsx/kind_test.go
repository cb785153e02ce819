package fsx

import (
	"io/fs"
	"testing"
)

func TestKindName(t *testing.T) {
	t.Parallel()
	for m, want := range map[fs.FileMode]string{
		0o644:                             "file",
		fs.ModeDir | 0o755:                "directory",
		fs.ModeSymlink:                    "symlink",
		fs.ModeNamedPipe:                  "named pipe (fifo)",
		fs.ModeSocket:                     "socket",
		fs.ModeDevice | fs.ModeCharDevice: "character device",
		fs.ModeDevice:                     "block device",
		fs.ModeIrregular:                  "special file",
	} {
		if got := KindName(m); got != want {
			t.Errorf("KindName(%v) = %q, want %q", m, got, want)
		}
	}
}
