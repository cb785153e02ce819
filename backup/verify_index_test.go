package backup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/store"
)

// TestVerifyIndex: verify checks the key index beside the archive: a good
// one matches; a flipped byte, a cut, another archive's index, another
// key's index fail verify with the integrity (or key) sentinel; an
// archive without one says "none"; NoIndex writes none.
func TestVerifyIndex(t *testing.T) {
	t.Parallel()
	id := identity(t)
	p := backupOf(t, id)
	ids := []age.Identity{id}
	rep, err := Verify(t.Context(), p, VerifyOptions{Identities: ids, TmpDir: t.TempDir()})
	if err != nil || rep.Index != IndexMatches {
		t.Fatalf("Verify: %v, index %q", err, rep.Index)
	}
	good, err := os.ReadFile(p + keyindex.Suffix)
	if err != nil {
		t.Fatal(err)
	}
	// another backup of the same db a second later: same snapshot,
	// another archive
	o := fileOptions(filepath.Dir(p), id)
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	otherArchive, err := os.ReadFile(res.Where + keyindex.Suffix)
	if err != nil {
		t.Fatal(err)
	}
	id2 := identity(t)
	o2 := fileOptions(t.TempDir(), id2)
	res2, err := Run(t.Context(), o2)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(res2.Where + keyindex.Suffix)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(at int) []byte {
		b := append([]byte(nil), good...)
		b[at] ^= 1
		return b
	}
	cases := []struct {
		name  string
		index []byte
		want  []error
	}{
		{"flipped", flip(len(good) / 2), []error{keyindex.ErrTruncated, archive.ErrTruncated}}, // one age chunk: its last
		{"header MAC flipped", flip(bytes.Index(good, []byte("\n--- ")) + 6), []error{keyindex.ErrCorrupt, archive.ErrTampered}},
		{"cut", good[:len(good)-20], []error{keyindex.ErrTruncated, archive.ErrTruncated}},
		{"another archive's", otherArchive, []error{keyindex.ErrMismatch, archive.ErrTampered}},
		{"another key's", otherKey, []error{keyindex.ErrWrongKey, archive.ErrWrongKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := copyBackup(t, p, nil)
			if err := os.WriteFile(q+keyindex.Suffix, tc.index, 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(t.Context(), q, VerifyOptions{Identities: ids, TmpDir: t.TempDir()})
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Verify error %v, want %v", err, w)
				}
			}
			if rep == nil || rep.Index != IndexBad {
				t.Errorf("report %+v", rep)
			}
		})
	}
	// prune drops the older archive with its index and sidecar
	dir := filepath.Dir(p)
	pr, err := Prune(t.Context(), store.NewLocal(dir), PruneOptions{Policy: archive.RetentionPolicy{Last: 1}})
	if err != nil || len(pr.Removed) != 1 || pr.Removed[0] != filepath.Base(p) {
		t.Fatalf("Prune: %v, %+v", err, pr)
	}
	if got := names(t, dir); len(got) != 3 || got[1] != res.Archive+keyindex.Suffix {
		t.Fatalf("after prune: %v", got)
	}
	q := copyBackup(t, res.Where, nil)
	if rep, err := Verify(t.Context(), q, VerifyOptions{Identities: ids, TmpDir: t.TempDir()}); err != nil || rep.Index != IndexNone {
		t.Fatalf("without index: %v, %+v", err, rep)
	}
	o = fileOptions(t.TempDir(), id)
	o.NoIndex = true
	if res, err := Run(t.Context(), o); err != nil || res.Index != nil {
		t.Fatalf("NoIndex: %v, %+v", err, res)
	} else if _, err := os.Stat(res.Where + keyindex.Suffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NoIndex wrote an index: %v", err)
	}
}
