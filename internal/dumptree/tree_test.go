package dumptree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestWriter: files and directories get their modes, more directories
// than the writer keeps open work, and nothing is written through a symlink
// or over an existing file.
func TestWriter(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	tw, err := NewWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()

	// more directories than maxOpenDirs, visited twice
	for pass := range 2 {
		for i := range 2*maxOpenDirs + 3 {
			segs := []string{fmt.Sprintf("ns%03d", i), "configmaps", fmt.Sprintf("cm%d.yaml", pass)}
			if err := tw.Write(segs, []byte(segs[0]+"\n"), nil); err != nil {
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
		unsafe bool // refused as ErrUnsafeName (reported, the dump goes on)
	}{
		{"symlink namespace", []string{"evil", "configmaps", "x.yaml"}, true},
		{"symlink resource", []string{"ns000", "link", "x.yaml"}, true},
		{"symlink file", []string{"ns001", "configmaps", "planted.yaml"}, false},
		{"existing file", []string{"ns001", "configmaps", "cm0.yaml"}, false},
		{"dot dot", []string{"ns001", "..", "x.yaml"}, true},
		{"separator", []string{"ns001", "a/b", "x.yaml"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tw.Write(tc.segs, []byte("bad\n"), nil)
			if err == nil {
				t.Fatal("written")
			}
			if errors.Is(err, ErrUnsafeName) != tc.unsafe {
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
	if err := tw.Write([]string{"ns002", "configmaps", "m.yaml"}, nil, errors.New("marshal failed")); err == nil || err.Error() != "marshal failed" {
		t.Errorf("marshal error: %v", err)
	}
}

func TestCheckSegment(t *testing.T) {
	for _, tc := range []struct {
		seg, err string // err: "" = accepted
	}{
		{"api", ""},
		{"a.b-c_d", ""},
		{"...", ""},
		{".hidden", ""},
		{strings.Repeat("x", 250), ""},
		{strings.Repeat("x", 251), "unsafe name for a file path: 251 bytes is too long"},
		{"", `unsafe name for a file path: ""`},
		{".", `unsafe name for a file path: "."`},
		{"..", `unsafe name for a file path: ".."`},
		{"a/b", `unsafe name for a file path: "a/b" has a separator or NUL`},
		{`a\b`, `unsafe name for a file path: "a\\b" has a separator or NUL`},
		{"a\x00b", `unsafe name for a file path: "a\x00b" has a separator or NUL`},
	} {
		err := CheckSegment(tc.seg)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q refused: %v", tc.seg, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err || !errors.Is(err, ErrUnsafeName)):
			t.Errorf("%q: error %v, want %s", tc.seg, err, tc.err)
		}
	}
}

// TestWriteObject: the dump layout, and the name checked before the other
// segments (a name "." or ".." would otherwise pass as "..yaml").
func TestWriteObject(t *testing.T) {
	root := t.TempDir()
	w, err := NewWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, tc := range []struct {
		ns, res, name string
		err           string // "" = written
	}{
		{"payments", "deployments.apps", "api", ""},
		{"", "namespaces", "payments", ""},
		{"payments", "configmaps", "..", `unsafe name for a file path: ".."`},
		{"..", "configmaps", ".", `unsafe name for a file path: "."`},
		{"..", "configmaps", "x", `unsafe name for a file path: ".."`},
		{"payments", "a/b", "x", `unsafe name for a file path: "a/b" has a separator or NUL`},
	} {
		err := w.WriteObject(tc.ns, tc.res, tc.name, []byte("kind: X\n"), nil)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("%s/%s/%s: error %v, want %q", tc.ns, tc.res, tc.name, err, tc.err)
		}
	}
	if got, want := files(t, root), []string{"_cluster/namespaces/payments.yaml", "payments/deployments.apps/api.yaml"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", got, want)
	}
}

// TestTree: nothing appears at the destination before Commit; Close
// without Commit leaves nothing at all; after Commit the tree is there
// and the temporary directory is gone.
func TestTree(t *testing.T) {
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprint("commit=", commit), func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "made")
			dir := filepath.Join(parent, "dump")
			tr, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(parent); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("parent: %v %v", fi, err)
			}
			if err := tr.WriteObject("ns", "configmaps", "a", []byte("a\n"), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists before Commit: %v", dir, err)
			}
			tmps, _ := filepath.Glob(filepath.Join(parent, ".dump.etcdsafe-tmp-*"))
			if len(tmps) != 1 {
				t.Fatalf("temporary dirs: %v", tmps)
			}
			if commit {
				if err := tr.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			want := []string{}
			if commit {
				want = []string{"dump"}
				if got := files(t, dir); len(got) != 1 || got[0] != "ns/configmaps/a.yaml" {
					t.Errorf("committed tree: %v", got)
				}
			}
			entries, _ := os.ReadDir(parent)
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("in the parent: %v, want %v", got, want)
			}
		})
	}
}

func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
