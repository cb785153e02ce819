package backup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenLocal: --out as a directory, a new archive file, or refused.
func TestOpenLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "x.tar.zst")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var oe *OptionsError
	tests := []struct {
		out, dir, name string
		err            func(error) bool
	}{
		{dir, dir, "", nil},
		{filepath.Join(dir, "m1.tar.zst.age"), dir, "m1.tar.zst.age", nil},
		{filepath.Join(dir, "backups"), "", "", func(err error) bool { return errors.As(err, &oe) }},
		{existing, "", "", func(err error) bool { return errors.Is(err, fs.ErrExist) }},
		{filepath.Join(dir, "nope", "m1.tar.zst"), "", "", func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
	}
	for _, tc := range tests {
		l, name, err := OpenLocal(tc.out)
		if tc.err != nil {
			if err == nil || !tc.err(err) {
				t.Errorf("%s: err = %v", tc.out, err)
			}
			continue
		}
		if err != nil || l.Dir() != tc.dir || name != tc.name {
			t.Errorf("%s: %v %q %v", tc.out, l, name, err)
		}
	}
}
