package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestTreeWriter: files and directories get their modes, more directories
// than the writer keeps open work, and nothing is written through a symlink
// or over an existing file.
func TestTreeWriter(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	tw, err := newTreeWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()

	// more directories than maxOpenDirs, visited twice
	for pass := range 2 {
		for i := range 2*maxOpenDirs + 3 {
			segs := []string{fmt.Sprintf("ns%03d", i), "configmaps", fmt.Sprintf("cm%d.yaml", pass)}
			if err := tw.write(segs, []byte(segs[0]+"\n"), nil); err != nil {
				t.Fatalf("%v: %v", segs, err)
			}
		}
	}
	if len(tw.open) > maxOpenDirs {
		t.Errorf("%d directories open, at most %d wanted", len(tw.open), maxOpenDirs)
	}
	fi, err := os.Lstat(filepath.Join(root, "ns130", "configmaps", "cm1.yaml"))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("file: %v %v", fi.Mode(), err)
	}
	for _, d := range []string{"ns130", "ns130/configmaps"} {
		if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || fi.Mode() != os.ModeDir|0o700 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "ns007", "configmaps", "cm0.yaml")); err != nil || string(b) != "ns007\n" {
		t.Errorf("content %q %v", b, err)
	}

	// symlinks planted where a directory or a file goes
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "ns000", "link")); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(root, "ns001", "configmaps", "planted.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		segs   []string
		unsafe bool // refused as errUnsafeName (reported, the dump goes on)
	}{
		{"symlink namespace", []string{"evil", "configmaps", "x.yaml"}, true},
		{"symlink resource", []string{"ns000", "link", "x.yaml"}, true},
		{"symlink file", []string{"ns001", "configmaps", "planted.yaml"}, false},
		{"existing file", []string{"ns001", "configmaps", "cm0.yaml"}, false},
		{"dot dot", []string{"ns001", "..", "x.yaml"}, true},
		{"separator", []string{"ns001", "a/b", "x.yaml"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tw.write(tc.segs, []byte("bad\n"), nil)
			if err == nil {
				t.Fatal("written")
			}
			if errors.Is(err, errUnsafeName) != tc.unsafe {
				t.Errorf("error %v: unsafe name %v, want %v", err, !tc.unsafe, tc.unsafe)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("written outside the root: %v", entries)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("symlink target overwritten: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "ns001", "configmaps", "cm0.yaml")); string(b) != "ns001\n" {
		t.Errorf("existing file overwritten: %q", b)
	}
	if err := tw.write([]string{"ns002", "configmaps", "m.yaml"}, nil, errors.New("marshal failed")); err == nil || err.Error() != "marshal failed" {
		t.Errorf("marshal error: %v", err)
	}
}
