package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// noDefaultManifest returns a path, for Options.testDefaultManifest, that
// makes the host's /etc/kubernetes/manifests/etcd.yaml absent for a call,
// whatever the machine has.
func noDefaultManifest(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "no-such-etcd.yaml")
}

// TestDataDirTargets: the restore creates a missing data dir, replaces an
// empty one, moves an etcd data dir aside, and refuses anything else
// (ErrNotDataDir) without moving or writing anything.
func TestDataDirTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cases := []struct {
		name      string
		setup     func(t *testing.T, dir string) // dir is the data dir path
		wantErr   error
		wantState string
		wantFound string // what the error says was found
	}{
		{"absent", func(*testing.T, string) {}, nil, DataDirAbsent, ""},
		{"empty dir", func(t *testing.T, dir string) { mkdir(t, dir) }, nil, DataDirEmpty, ""},
		{"etcd data dir", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "member", "snap"))
			copyFile(t, f.raw, filepath.Join(dir, "member", "snap", "db"))
		}, nil, DataDirEtcd, ""},
		{"typo names a home dir", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, ".ssh"))
			writeFile(t, filepath.Join(dir, "notes.txt"), "mine")
		}, ErrNotDataDir, "", `holds ".ssh", "notes.txt"`},
		{"member/snap/db is a dir", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "member", "snap", "db"))
		}, ErrNotDataDir, "", `holds "member"`},
		{"a file", func(t *testing.T, dir string) { writeFile(t, dir, "not a dir") }, ErrNotDataDir, "", "is a file"},
		{"a symlink to an etcd data dir", func(t *testing.T, dir string) {
			realDir := filepath.Join(t.TempDir(), "real")
			mkdir(t, filepath.Join(realDir, "member", "snap"))
			copyFile(t, f.raw, filepath.Join(realDir, "member", "snap", "db"))
			if err := os.Symlink(realDir, dir); err != nil {
				t.Fatal(err)
			}
		}, ErrNotDataDir, "", "is a symbolic link"},
		{"a dangling symlink", func(t *testing.T, dir string) {
			if err := os.Symlink("/nonexistent/etcd", dir); err != nil {
				t.Fatal(err)
			}
		}, ErrNotDataDir, "", "is a symbolic link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dataDir := filepath.Join(parent, "etcd")
			tc.setup(t, dataDir)
			before := testfix.ListNames(t, parent)
			st0, _ := os.Lstat(dataDir)
			p, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: dataDir})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantFound) {
					t.Fatalf("want %v saying %q, got %v", tc.wantErr, tc.wantFound, err)
				}
				if after := testfix.ListNames(t, parent); !slices.Equal(before, after) {
					t.Fatalf("parent changed: %v -> %v", before, after)
				}
				if st1, err := os.Lstat(dataDir); err != nil || !os.SameFile(st0, st1) {
					t.Fatalf("data dir moved or replaced: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.DataDirState != tc.wantState || (p.Backup != "") != (tc.wantState == DataDirEtcd) {
				t.Fatalf("state %q backup %q", p.DataDirState, p.Backup)
			}
			res, err := p.Execute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "member", "wal")); err != nil {
				t.Fatalf("no new data dir: %v", err)
			}
			steps := strings.Join(p.NextSteps(), "\n")
			if tc.wantState == DataDirEtcd {
				if _, err := os.Stat(filepath.Join(res.Backup, "member", "snap", "db")); err != nil {
					t.Fatalf("old data dir not kept: %v", err)
				}
				if !strings.Contains(steps, "remove the old data dir "+res.Backup) {
					t.Errorf("next steps do not name the old data dir:\n%s", steps)
				}
			} else if strings.Contains(steps, "old data dir") || res.Backup != "" {
				t.Errorf("no old data dir, yet backup %q and next steps:\n%s", res.Backup, steps)
			}
			if left, _ := filepath.Glob(filepath.Join(parent, stagingPrefix+"*")); len(left) != 0 {
				t.Errorf("staging left: %v", left)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDataDirFromManifestNeedsConfirmation: a data dir named only by a
// manifest (the archive's, or this host's) is a candidate: a dry run shows
// it and where it came from, a realDir run refuses naming it, and nothing is
// moved either way.
func TestDataDirFromManifestNeedsConfirmation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	none := noDefaultManifest(t)
	work := t.TempDir()
	// What the archive's manifest names: someone else's directory.
	victim := filepath.Join(work, "srv-data")
	writeFile(t, filepath.Join(mkdirp(t, victim), "precious"), "x")
	// An absent one, to see the dry run's plan.
	fresh := filepath.Join(work, "fresh-etcd")
	manifest := func(dataDir string) string {
		return strings.ReplaceAll(string(readTestdata(t, "etcd-kubeadm-single.yaml")), "--data-dir=/var/lib/etcd", "--data-dir="+dataDir)
	}
	archWith := func(dataDir string) string {
		return craftArchive(t, f.snap, []craftEntry{
			{path: "kubernetes/manifests", typ: archive.TypeDir},
			{path: "kubernetes/manifests/etcd.yaml", typ: archive.TypeFile, content: manifest(dataDir)},
		})
	}
	hostManifest := filepath.Join(work, "host-etcd.yaml")
	writeFile(t, hostManifest, manifest(victim))

	cases := []struct {
		name     string
		o        Options
		wantErr  error
		wantText []string
	}{
		{"archive's manifest, realDir run", Options{Source: archWith(victim)}, ErrDataDirNotConfirmed,
			[]string{"the archive's kubernetes/manifests/etcd.yaml names " + victim, "pass --data-dir " + victim + " to confirm"}},
		{"archive's manifest restored to the kube dir, realDir run", Options{Source: archWith(victim), KubeDir: filepath.Join(work, "k")}, ErrDataDirNotConfirmed,
			[]string{"pass --data-dir " + victim + " to confirm"}},
		{"--manifest, realDir run", Options{Source: f.snap, Manifest: hostManifest}, ErrDataDirNotConfirmed,
			[]string{"the manifest " + hostManifest + " names " + victim}},
		{"archive's manifest names a foreign dir, dry run", Options{Source: archWith(victim), DryRun: true}, ErrNotDataDir,
			[]string{victim, `"precious"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.AllowUnencrypted = true
			tc.o.testDefaultManifest = none
			_, err := Prepare(context.Background(), tc.o)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("want %v, got %v", tc.wantErr, err)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
			if got := testfix.ListNames(t, work); !slices.Equal(got, []string{"host-etcd.yaml", "srv-data"}) {
				t.Fatalf("work dir now holds %v", got)
			}
			if got := testfix.ListNames(t, victim); !slices.Equal(got, []string{"precious"}) {
				t.Fatalf("victim dir now holds %v", got)
			}
		})
	}

	t.Run("this host's manifest, realDir run", func(t *testing.T) {
		_, err := Prepare(context.Background(), Options{Source: f.snap, testDefaultManifest: hostManifest})
		if !errors.Is(err, ErrDataDirNotConfirmed) || !strings.Contains(err.Error(), "pass --data-dir "+victim+" to confirm") {
			t.Fatalf("want ErrDataDirNotConfirmed naming %s, got %v", victim, err)
		}
		if got := testfix.ListNames(t, victim); !slices.Equal(got, []string{"precious"}) {
			t.Fatalf("victim dir now holds %v", got)
		}
	})
	t.Run("dry run shows the candidate", func(t *testing.T) {
		p, err := Prepare(context.Background(), Options{Source: archWith(fresh), AllowUnencrypted: true, DryRun: true, testDefaultManifest: none})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.DataDir != fresh || p.DataDirConfirmed || !strings.Contains(p.DataDirFrom, "archive") || p.Backup != "" {
			t.Fatalf("data dir %q confirmed %v from %q backup %q", p.DataDir, p.DataDirConfirmed, p.DataDirFrom, p.Backup)
		}
		if _, err := p.Execute(context.Background()); err == nil {
			t.Fatal("a dry-run plan executed")
		}
		if _, err := os.Lstat(fresh); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("dry run created the data dir")
		}
	})
	t.Run("confirmed", func(t *testing.T) {
		_, res := mustPrepareExecute(t, Options{Source: archWith(fresh), AllowUnencrypted: true, DataDir: fresh, testDefaultManifest: none})
		if res.DataDir != fresh {
			t.Fatalf("restored %s", res.DataDir)
		}
	})
}

func mkdirp(t *testing.T, dir string) string {
	t.Helper()
	mkdir(t, dir)
	return dir
}

// TestUnencryptedArchive: a plain .tar.zst (what anyone with write access
// to the backup store can make) is refused without AllowUnencrypted, with
// nothing moved, staged or left; with it, the restore works.
func TestUnencryptedArchive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	kube := t.TempDir()
	writeFile(t, filepath.Join(kube, "admin.conf"), "admin")
	arch := writeArchive(t, f.snap, kube)
	dataDir := oldDataDir(t, f)
	parent := filepath.Dir(dataDir)
	kubeDst := filepath.Join(t.TempDir(), "k")
	before := testfix.ListNames(t, parent)
	for _, dry := range []bool{false, true} {
		_, err := Prepare(context.Background(), Options{Source: arch, DataDir: dataDir, KubeDir: kubeDst, DryRun: dry})
		if !errors.Is(err, archive.ErrUnencrypted) || !strings.Contains(err.Error(), arch) {
			t.Fatalf("dry run %v: want ErrUnencrypted naming the archive, got %v", dry, err)
		}
	}
	if after := testfix.ListNames(t, parent); !slices.Equal(before, after) {
		t.Fatalf("refused restore changed %v -> %v", before, after)
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "marker")); err != nil || string(b) != marker {
		t.Fatalf("old data dir touched: %v", err)
	}
	if _, err := os.Lstat(kubeDst); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("kube dir written")
	}
	_, res := mustPrepareExecute(t, Options{Source: arch, AllowUnencrypted: true, DataDir: dataDir, KubeDir: kubeDst})
	if res.Backup == "" || res.KubeCreated == 0 {
		t.Fatalf("result %+v", res)
	}
	if b, err := os.ReadFile(filepath.Join(kubeDst, "admin.conf")); err != nil || string(b) != "admin" {
		t.Fatalf("kube dir: %q %v", b, err)
	}
}

// TestKubeDirNamesLikeTempFiles: entries named like restore's own temp
// and backup files are restored, and a replaced file's backup never takes
// the name of a file the archive restores.
func TestKubeDirNamesLikeTempFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := stamp(now)
	files := []craftEntry{
		{path: "kubernetes/pki/.ca.crt.etcdsafe-tmp", typ: archive.TypeFile, content: "old-style temp name"},
		{path: "kubernetes/pki/.ca.crt.etcdsafe-tmp-0011223344556677", typ: archive.TypeFile, content: "new-style temp name"},
		{path: "kubernetes/pki/.ca.crt.etcdsafe-" + st, typ: archive.TypeFile, content: "backup name of this run"},
		{path: "kubernetes/pki/ca.crt", typ: archive.TypeFile, content: "ca"},
		{path: "kubernetes/.etcdsafe-restore-x", typ: archive.TypeFile, content: "staging-like name"},
		{path: "kubernetes/.etcdsafe.lock", typ: archive.TypeFile, content: "lock-like name"},
	}
	arch := craftArchive(t, f.snap, append([]craftEntry{{path: "kubernetes/pki", typ: archive.TypeDir}}, files...))
	kube := t.TempDir()
	mkdir(t, filepath.Join(kube, "pki"))
	writeFile(t, filepath.Join(kube, "pki", "ca.crt"), "the host's own ca")
	p, _ := mustPrepareExecute(t, Options{Source: arch, AllowUnencrypted: true, DataDir: filepath.Join(t.TempDir(), "etcd"), KubeDir: kube, Force: true, Now: func() time.Time { return now }})
	for _, e := range files {
		rel := strings.TrimPrefix(e.path, "kubernetes/")
		if b, err := os.ReadFile(filepath.Join(kube, rel)); err != nil || string(b) != e.content {
			t.Errorf("%s: %q %v, want %q", rel, b, err, e.content)
		}
	}
	var backup string
	for _, c := range p.KubeChanges {
		if c.Path == "pki/ca.crt" {
			backup = c.Backup
		}
	}
	if backup == "" || backup == "pki/.ca.crt.etcdsafe-"+st {
		t.Fatalf("backup name %q", backup)
	}
	if b, err := os.ReadFile(filepath.Join(kube, backup)); err != nil || string(b) != "the host's own ca" {
		t.Errorf("the host's ca.crt not kept as %s: %q %v", backup, b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(kube, "pki"))
	if len(ents) != 5 { // four files of the archive, one backup: no temp left
		t.Errorf("pki holds %d entries: %v", len(ents), ents)
	}
}

// TestErrorsNameTheUsersFile: an archive whose snapshot is damaged fails
// with a message naming the archive, never the staging path, and holding
// none of the snapshot's bytes.
func TestErrorsNameTheUsersFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	snap, err := os.ReadFile(f.snap)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), snap...)
	flipped[5000] ^= 0xff
	garbage := []byte(strings.Repeat("SECRET-VALUE-", 1000))
	cases := []struct {
		name    string
		content []byte
	}{
		{"trailer mismatch", flipped},
		{"not a db", garbage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "snap")
			writeFile(t, src, string(tc.content))
			arch := craftArchive(t, src, nil)
			dataDir := filepath.Join(t.TempDir(), "etcd")
			for _, tmp := range []string{"", t.TempDir()} {
				_, err := Prepare(context.Background(), Options{Source: arch, AllowUnencrypted: true, DataDir: dataDir, TmpDir: tmp})
				if err == nil {
					t.Fatal("a damaged snapshot was accepted")
				}
				msg := err.Error()
				if !strings.Contains(msg, arch) || strings.Contains(msg, stagingPrefix) || strings.Contains(msg, "SECRET-VALUE") {
					t.Errorf("message %q: want the archive %s, no staging path, no content", msg, arch)
				}
			}
		})
	}
}

// TestNoStagingInBackupDir: plaintext is never staged in a backup
// directory (one holding etcdsafe backup's lock file), whether it is the
// data dir's parent or TmpDir.
func TestNoStagingInBackupDir(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	kube := t.TempDir()
	writeFile(t, filepath.Join(kube, "admin.conf"), "admin")
	arch := writeArchive(t, f.snap, kube)
	backups := t.TempDir()
	writeFile(t, filepath.Join(backups, fsx.LockName), "")
	cases := []struct {
		name string
		o    Options
	}{
		{"data dir in the backup dir", Options{DataDir: filepath.Join(backups, "etcd")}},
		{"tmp dir is the backup dir", Options{DataDir: filepath.Join(t.TempDir(), "etcd"), TmpDir: backups}},
		{"dry run, tmp dir is the backup dir", Options{DataDir: filepath.Join(t.TempDir(), "etcd"), TmpDir: backups, DryRun: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Source, tc.o.AllowUnencrypted = arch, true
			_, err := Prepare(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), "is a backup directory") {
				t.Fatalf("want a refusal, got %v", err)
			}
			if got := testfix.ListNames(t, backups); !slices.Equal(got, []string{fsx.LockName}) {
				t.Fatalf("backup dir now holds %v", got)
			}
		})
	}
}
