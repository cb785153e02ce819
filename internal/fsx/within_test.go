package fsx

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWithin(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	other := filepath.Join(root, "other")
	for _, d := range []string{filepath.Join(out, "sub"), other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A link outside that points into out, and one inside out pointing out.
	if err := os.Symlink(filepath.Join(out, "sub"), filepath.Join(root, "sneaky")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(out, "away")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{out, true},
		{filepath.Join(out, "sub"), true},
		{filepath.Join(out, "sub", "new", "deeper"), true},
		{filepath.Join(root, "sneaky"), true},
		{filepath.Join(root, "sneaky", "missing"), true},
		{filepath.Join(out, "..", "other"), false},
		{filepath.Join(out, "away"), false},
		{root + "/out-not", false},
		{other, false},
		{root, false},
	}
	for _, tc := range tests {
		got, err := Within(tc.path, out)
		if err != nil || got != tc.want {
			t.Errorf("Within(%q) = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
}
