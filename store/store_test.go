package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// TestLocal: Put publishes only on Commit with the right size, NoReplace
// refuses an existing name, Abort leaves nothing, Delete is durable and
// idempotent, names must be one path element, Lock excludes a second run.
func TestLocal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	l := NewLocal(dir)
	put := func(name string, data string, size int64, noReplace bool) error {
		up, err := l.Put(ctx, name, PutOptions{NoReplace: noReplace})
		if err != nil {
			return err
		}
		defer up.Abort()
		if _, err := up.Write([]byte(data)); err != nil {
			return err
		}
		// Before Commit the bytes are in a temp file that List never shows.
		objs, err := l.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if _, tmp := fsx.TempBase(o.Name); tmp {
				t.Fatalf("List shows the temp file %s", o.Name)
			}
		}
		return up.Commit(size)
	}
	if err := put("a.tar.zst", "abc", 4, true); err == nil {
		t.Fatal("short upload committed")
	}
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("after a failed commit: %v", got)
	}
	if err := put("a.tar.zst", "abc", 3, true); err != nil {
		t.Fatal(err)
	}
	if err := put("a.tar.zst", "xyz", 3, true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("NoReplace: %v", err)
	}
	if err := put("a.tar.zst", "new", 3, false); err != nil {
		t.Fatal(err)
	}
	rc, err := l.Get(ctx, "a.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "new" {
		t.Fatalf("content %q", b)
	}
	if st, err := os.Stat(filepath.Join(dir, "a.tar.zst")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st, err)
	}
	objs, err := l.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Name != "a.tar.zst" || objs[0].Size != 3 {
		t.Fatalf("list %+v %v", objs, err)
	}
	if o, err := l.Stat(ctx, "a.tar.zst"); err != nil || o.Size != 3 {
		t.Fatalf("stat %+v %v", o, err)
	}
	if _, err := l.Stat(ctx, "b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat missing: %v", err)
	}
	for range 2 {
		if err := l.Delete(ctx, "a.tar.zst"); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		if _, err := l.Put(ctx, bad, PutOptions{}); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Put(%q): %v", bad, err)
		}
	}
	unlock, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocal(dir).Lock(ctx); !errors.Is(err, fsx.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

// names returns the names in dir, sorted, the lock file left out.
func names(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range testfix.ListNames(t, dir) {
		if n != fsx.LockName {
			out = append(out, n)
		}
	}
	return out
}
