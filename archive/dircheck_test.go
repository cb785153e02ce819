package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// TestCheckDirEstimate: for a directory that fits, the estimate covers the
// manifest the Writer really writes, within the allowance for the rest.
func TestCheckDirEstimate(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for i := range 200 {
		// Names JSON escapes (<, &, a control byte, non-ASCII) and sizes of
		// several digit counts.
		d := filepath.Join(root, fmt.Sprintf("d<%d>", i%7), "sub&ü")
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f\x01%03d", i)), make([]byte, i*37), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(strings.Repeat("../", 20)+"target<>", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "skip.tmp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	excludes := []string{"*.tmp"}
	st, err := CheckDir(root, excludes)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(io.Discard, WriterOptions{Insecure: true, Manifest: Manifest{Tool: "etcdsafe", Host: "m1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(root, excludes); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := w.Manifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != len(m.Entries) || st.Files != 200 {
		t.Fatalf("counted %d entries (%d files), the writer archived %d", st.Entries, st.Files, len(m.Entries))
	}
	if st.ManifestBytes < int64(len(b)) || st.ManifestBytes > int64(len(b))+manifestHeadroom {
		t.Fatalf("estimate %d bytes, real manifest %d", st.ManifestBytes, len(b))
	}
	// Without the allowance the entries alone are exact: the real manifest
	// minus its fixed part.
	empty, err := (&Manifest{FormatVersion: FormatVersion, Tool: "etcdsafe", Host: "m1", Created: m.Created, Entries: []EntryInfo{}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// "[]" becomes "[" + entries + "\n  ]"; each entry is counted with a
	// comma, which the last one does not have.
	if got, want := st.ManifestBytes-manifestHeadroom, int64(len(b)-len(empty)-len("\n  ")+1); got != want {
		t.Errorf("entries take %d bytes, estimated %d", want, got)
	}
}

// TestCheckDirTooLarge: a directory whose manifest would pass the 16 MiB
// bound is refused with the counts and the limit. Long names that JSON
// escapes 6-fold keep the directory small (a few hundred files).
func TestCheckDirTooLarge(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	seg := testfix.BigKubeDirSegment
	deep := testfix.DeepDir(t, root)
	n := 0
	for st, err := CheckDir(root, nil); err == nil; st, err = CheckDir(root, nil) {
		if n > 2000 {
			t.Fatalf("still fits after %d files: %+v", n, st)
		}
		for range 100 {
			if err := os.WriteFile(filepath.Join(deep, fmt.Sprintf("%s%04d", seg[:200], n)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	_, err := CheckDir(root, nil)
	var te *DirTooLargeError
	if !errors.As(err, &te) || !errors.Is(err, ErrDirTooLarge) {
		t.Fatalf("err = %v, want a DirTooLargeError", err)
	}
	if te.Files != n || te.Entries != n+14 || te.Limit != MaxManifestSize || te.ManifestBytes <= MaxManifestSize {
		t.Fatalf("%+v (files written %d)", te, n)
	}
	for _, s := range []string{fmt.Sprint(te.Entries), fmt.Sprint(MaxManifestSize), "limit"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	// Excluding the deep directory makes it fit.
	if _, err := CheckDir(root, []string{"<*"}); err != nil {
		t.Fatalf("with the exclude: %v", err)
	}
	// And the Writer agrees: this directory cannot be archived.
	w, err := NewWriter(io.Discard, WriterOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(root, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("the writer archived what CheckDir refused")
	}
}
