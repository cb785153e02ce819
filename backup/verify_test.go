package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/store"
)

// backupOf runs a backup of realDB into a new dir, encrypted to id (or
// unencrypted when id is nil), and returns the archive's path.
func backupOf(t *testing.T, id *age.X25519Identity) string {
	t.Helper()
	dir := t.TempDir()
	o := Options{DB: realDB, Outputs: []Output{{Target: store.NewLocal(dir)}}, Insecure: true, Cluster: "c", Host: "h"}
	if id != nil {
		o = fileOptions(dir, id)
	}
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Where
}

// copyBackup copies the archive at p and its sidecar into a new dir,
// changing the archive's bytes with mutate (if set), and returns the copy.
func copyBackup(t *testing.T, p string, mutate func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		b = mutate(append([]byte(nil), b...))
	}
	q := filepath.Join(t.TempDir(), filepath.Base(p))
	if err := os.WriteFile(q, b, 0o600); err != nil {
		t.Fatal(err)
	}
	side, err := os.ReadFile(archive.SidecarPath(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive.SidecarPath(q), side, 0o600); err != nil {
		t.Fatal(err)
	}
	return q
}

// requireEmpty fails unless dir holds nothing: no plaintext left behind.
func requireEmpty(t *testing.T, dir string) {
	t.Helper()
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Fatalf("staging parent holds %v (%v)", left, err)
	}
}

// TestVerify: a good archive verifies with its sidecar; damage, a wrong or
// missing key and an unencrypted archive fail with the archive package's
// sentinels and no report; sidecar trouble fails after a full report. The
// staging parent is empty afterwards in every case.
func TestVerify(t *testing.T) {
	t.Parallel()
	id, other := identity(t), identity(t)
	enc, plain := backupOf(t, id), backupOf(t, nil)
	tests := []struct {
		name    string
		archive func(t *testing.T) string
		opts    VerifyOptions
		wantErr error  // nil: success
		report  bool   // a report comes back
		sidecar string // the report's Sidecar
	}{
		{name: "good", archive: func(*testing.T) string { return enc }, opts: VerifyOptions{Identities: []age.Identity{id}},
			report: true, sidecar: "matches"},
		{name: "bit flip", archive: func(t *testing.T) string {
			return copyBackup(t, enc, func(b []byte) []byte { b[len(b)/3] ^= 0x10; return b })
		}, opts: VerifyOptions{Identities: []age.Identity{id}}, wantErr: archive.ErrTampered},
		{name: "truncated", archive: func(t *testing.T) string {
			return copyBackup(t, enc, func(b []byte) []byte { return b[:len(b)/2] })
		}, opts: VerifyOptions{Identities: []age.Identity{id}}, wantErr: archive.ErrTruncated},
		{name: "wrong key", archive: func(*testing.T) string { return enc }, opts: VerifyOptions{Identities: []age.Identity{other}},
			wantErr: archive.ErrWrongKey},
		{name: "no key", archive: func(*testing.T) string { return enc }, wantErr: archive.ErrWrongKey},
		{name: "unencrypted refused", archive: func(*testing.T) string { return plain }, wantErr: archive.ErrUnencrypted},
		{name: "unencrypted allowed", archive: func(*testing.T) string { return plain }, opts: VerifyOptions{AllowUnencrypted: true},
			report: true, sidecar: "matches"},
		{name: "no sidecar", archive: func(t *testing.T) string {
			q := copyBackup(t, enc, nil)
			if err := os.Remove(archive.SidecarPath(q)); err != nil {
				t.Fatal(err)
			}
			return q
		}, opts: VerifyOptions{Identities: []age.Identity{id}}, report: true, sidecar: "none"},
		{name: "sidecar of another file", archive: func(t *testing.T) string {
			q := copyBackup(t, enc, nil)
			editSidecar(t, q, func(sc *archive.Sidecar) { sc.ArchiveSize++ })
			return q
		}, opts: VerifyOptions{Identities: []age.Identity{id}}, wantErr: archive.ErrTampered, report: true, sidecar: "MISMATCH"},
		{name: "unreadable sidecar", archive: func(t *testing.T) string {
			q := copyBackup(t, enc, nil)
			if err := os.WriteFile(archive.SidecarPath(q), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
			return q
		}, opts: VerifyOptions{Identities: []age.Identity{id}}, wantErr: archive.ErrNotArchive, report: true, sidecar: "unreadable"},
		{name: "missing archive", archive: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.tar.zst.age") },
			opts: VerifyOptions{Identities: []age.Identity{id}}, wantErr: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.archive(t)
			o := tc.opts
			o.TmpDir = t.TempDir()
			rep, err := Verify(t.Context(), p, o)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
			}
			requireEmpty(t, o.TmpDir)
			if (rep != nil) != tc.report {
				t.Fatalf("report %+v, want one: %v", rep, tc.report)
			}
			if rep == nil {
				return
			}
			if rep.Sidecar != tc.sidecar || rep.Archive != p || rep.Encrypted != (p == enc || strings.HasSuffix(p, ".age")) {
				t.Errorf("report %+v", rep)
			}
			if rep.Trailer != "verified" || rep.Status == nil || !rep.Status.CheckRun || len(rep.Status.CheckErrors) != 0 ||
				rep.Status.Revision != 231 || rep.Manifest == nil || rep.Manifest.DBSize != 303136 {
				t.Errorf("snapshot %q %+v, manifest %+v", rep.Trailer, rep.Status, rep.Manifest)
			}
			if b, err := os.ReadFile(p); err != nil || rep.ArchiveBytes != int64(len(b)) || rep.SHA256 != fileSHA(t, p) {
				t.Errorf("archive %d bytes sha256 %s (%v)", rep.ArchiveBytes, rep.SHA256, err)
			}
		})
	}
}

// editSidecar rewrites the sidecar of the archive at p.
func editSidecar(t *testing.T, p string, edit func(*archive.Sidecar)) {
	t.Helper()
	sc, err := archive.ReadSidecar(archive.SidecarPath(p))
	if err != nil {
		t.Fatal(err)
	}
	edit(sc)
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive.SidecarPath(p), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifySweep: Verify removes the staging dirs killed runs left under
// its prefix (and reports each), not others, and leaves none of its own.
func TestVerifySweep(t *testing.T) {
	t.Parallel()
	id := identity(t)
	p := backupOf(t, id)
	tmp := t.TempDir()
	stale := filepath.Join(tmp, VerifyStagingPrefix+"killed")
	other := filepath.Join(tmp, "etcdsafe-restore-other")
	for _, d := range []string{stale, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		// a lock file nobody holds: a killed run's dir
		if err := os.WriteFile(filepath.Join(d, fsx.StagingLockName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var swept []string
	_, err := Verify(t.Context(), p, VerifyOptions{Identities: []age.Identity{id}, TmpDir: tmp,
		OnSwept:      func(d string) { swept = append(swept, d) },
		OnSweepError: func(err error) { t.Errorf("sweep: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0] != stale {
		t.Errorf("swept %v, want %s", swept, stale)
	}
	if got := names(t, tmp); len(got) != 1 || got[0] != filepath.Base(other) {
		t.Errorf("left %v, want only %s", got, other)
	}
}

// TestVerifySnapshotDamage: an archive that verifies but holds a damaged
// snapshot fails: a mismatching trailer without a report, a page bbolt's
// check refuses (in a db without trailer) with the report.
func TestVerifySnapshotDamage(t *testing.T) {
	t.Parallel()
	db, err := os.ReadFile(realDB)
	if err != nil {
		t.Fatal(err)
	}
	id := identity(t)
	t.Run("trailer mismatch", func(t *testing.T) {
		t.Parallel()
		b := append([]byte(nil), db...)
		b[len(b)-snapshot.TrailerSize-1] ^= 1
		tmp := t.TempDir()
		rep, err := Verify(t.Context(), archiveOf(t, b, id), VerifyOptions{Identities: []age.Identity{id}, TmpDir: tmp})
		if !errors.Is(err, snapshot.ErrTrailerMismatch) || rep != nil {
			t.Fatalf("Verify: %+v, %v", rep, err)
		}
		if strings.Contains(err.Error(), tmp) {
			t.Errorf("the message names the staged copy, not the archive: %v", err)
		}
		requireEmpty(t, tmp)
	})
	t.Run("bbolt check", func(t *testing.T) {
		t.Parallel()
		b := checkFailing(t, db[:len(db)-snapshot.TrailerSize])
		tmp := t.TempDir()
		rep, err := Verify(t.Context(), archiveOf(t, b, id), VerifyOptions{Identities: []age.Identity{id}, TmpDir: tmp})
		if !errors.Is(err, inspect.ErrCorrupt) || rep == nil {
			t.Fatalf("Verify: %+v, %v", rep, err)
		}
		if len(rep.Status.CheckErrors) == 0 || !strings.HasPrefix(rep.Trailer, "absent") || rep.Sidecar != "none" {
			t.Errorf("report %q %q %+v", rep.Trailer, rep.Sidecar, rep.Status)
		}
		requireEmpty(t, tmp)
	})
}

// archiveOf writes an archive holding db as its snapshot, encrypted to
// id, without a sidecar.
func archiveOf(t *testing.T, db []byte, id *age.X25519Identity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, archive.WriterOptions{Recipients: []age.Recipient{id.Recipient()},
		Manifest: archive.Manifest{Tool: "etcdsafe", Host: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(db)
	if err := w.AddSnapshot(bytes.NewReader(db), int64(len(db)), hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "damaged.tar.zst.age")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkFailing returns db with one page zeroed that inspect.Open and the
// status pass accept and bbolt's consistency check refuses.
func checkFailing(t *testing.T, db []byte) []byte {
	t.Helper()
	const pageSize = 4096
	p := filepath.Join(t.TempDir(), "db")
	for pg := 2; pg < len(db)/pageSize; pg++ {
		b := append([]byte(nil), db...)
		clear(b[pg*pageSize : (pg+1)*pageSize])
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := inspect.Open(p, inspect.OpenOptions{})
		if err != nil {
			continue
		}
		st, err := s.Status(context.Background(), true)
		s.Close()
		if err == nil && len(st.CheckErrors) > 0 {
			return b
		}
	}
	t.Fatal("no page whose damage only the check finds")
	return nil
}

// TestVerifyQuick: the archive against its sidecar, without a key.
func TestVerifyQuick(t *testing.T) {
	t.Parallel()
	p := backupOf(t, identity(t))
	tests := []struct {
		name    string
		archive func(t *testing.T) string
		wantErr error
	}{
		{name: "ok", archive: func(*testing.T) string { return p }},
		{name: "bit flip", archive: func(t *testing.T) string {
			return copyBackup(t, p, func(b []byte) []byte { b[len(b)/3] ^= 0x10; return b })
		}, wantErr: archive.ErrTampered},
		{name: "truncated", archive: func(t *testing.T) string {
			return copyBackup(t, p, func(b []byte) []byte { return b[:len(b)-100] })
		}, wantErr: archive.ErrTruncated},
		{name: "sidecar names another archive", archive: func(t *testing.T) string {
			q := copyBackup(t, p, nil)
			editSidecar(t, q, func(sc *archive.Sidecar) { sc.Archive = "other.tar.zst.age" })
			return q
		}, wantErr: archive.ErrTampered},
		{name: "no sidecar", archive: func(t *testing.T) string {
			q := copyBackup(t, p, nil)
			if err := os.Remove(archive.SidecarPath(q)); err != nil {
				t.Fatal(err)
			}
			return q
		}, wantErr: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := tc.archive(t)
			rep, err := VerifyQuick(t.Context(), q)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || rep != nil {
					t.Fatalf("VerifyQuick: %+v, %v, want %v", rep, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Archive != q || rep.Sidecar == nil || rep.Sidecar.Archive != filepath.Base(q) || rep.Sidecar.Revision != 231 {
				t.Errorf("report %+v", rep)
			}
		})
	}
}
