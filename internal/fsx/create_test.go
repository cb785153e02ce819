package fsx

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type failAfter struct{ n int }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("source failed")
	}
	f.n--
	p[0] = 'x'
	return 1, nil
}

func TestWriteNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exists"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tests := []struct {
		name    string
		file    string
		src     io.Reader
		wantErr bool
		left    bool // the file exists afterwards
	}{
		{name: "new file", file: "new", src: strings.NewReader("content"), left: true},
		{name: "existing file", file: "exists", src: strings.NewReader("x"), wantErr: true, left: true},
		{name: "symlink is not followed", file: "link", src: strings.NewReader("x"), wantErr: true},
		{name: "outside the root", file: "../escape", src: strings.NewReader("x"), wantErr: true},
		{name: "failed source removes the file", file: "partial", src: &failAfter{n: 3}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := WriteNew(root, tc.file, tc.src)
			if (err != nil) != tc.wantErr {
				t.Fatalf("WriteNew: %v, want error %v", err, tc.wantErr)
			}
			st, serr := os.Stat(filepath.Join(dir, tc.file))
			if tc.left != (serr == nil) && tc.file != "link" {
				t.Fatalf("file exists %v, want %v", serr == nil, tc.left)
			}
			if !tc.wantErr && st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
	if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was written through the symlink")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exists")); string(b) != "old" {
		t.Errorf("existing file now %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "new")); string(b) != "content" {
		t.Errorf("new file holds %q", b)
	}
}
