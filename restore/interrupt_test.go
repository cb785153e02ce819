package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/crashtest"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// TestMain lets the test binary act as a restore (crashtest mode
// "restore") that is SIGKILLed at a step (RESTORE_TEST_KILL_AT), as the OOM
// killer or a power cut would; with a step that does not exist the restore
// runs to its end, unless the parent kills it first.
func TestMain(m *testing.M) {
	crashtest.RunChildIfAsked(map[string]func() int{"restore": restoreChild})
	code := m.Run()
	cleanupSharedFixture()
	os.Exit(code)
}

// restoreChild restores RESTORE_TEST_SRC into RESTORE_TEST_DATADIR (and
// RESTORE_TEST_KUBEDIR), killing itself at the step RESTORE_TEST_KILL_AT.
func restoreChild() int {
	step := os.Getenv("RESTORE_TEST_KILL_AT")
	p, err := Prepare(context.Background(), Options{
		Source: os.Getenv("RESTORE_TEST_SRC"), DataDir: os.Getenv("RESTORE_TEST_DATADIR"),
		KubeDir: os.Getenv("RESTORE_TEST_KUBEDIR"), AllowUnencrypted: true,
		BumpRevision: DefaultBumpRevision, MarkCompacted: true,
		testHook: func(s string) error {
			if s == step {
				crashtest.KillSelf()
			}
			return nil
		},
	})
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 2
	}
	if _, err := p.Execute(context.Background()); err != nil {
		os.Stderr.WriteString(err.Error())
		return 3
	}
	return 0 // the step was never reached
}

const marker = "the old data dir"

// oldDataDir makes a stopped member's data dir with a marker file.
func oldDataDir(t *testing.T, f *fixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etcd")
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, f.raw, filepath.Join(dir, "member", "snap", "db"))
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkRecoverable: the old data dir is in place, or one rename of the
// backup (the plan's Recover command) brings it back.
func checkRecoverable(t *testing.T, dataDir, backup, recoverCmd string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dataDir, "marker")); err == nil {
		if string(b) != marker {
			t.Fatalf("marker changed: %q", b)
		}
		return
	}
	if recoverCmd != "mv "+backup+" "+dataDir {
		t.Fatalf("recover command %q does not rename %s to %s", recoverCmd, backup, dataDir)
	}
	if _, err := os.Stat(dataDir); err == nil {
		// the new dir is in place: the old one must be the backup
		if b, err := os.ReadFile(filepath.Join(backup, "marker")); err != nil || string(b) != marker {
			t.Fatalf("new data dir in place but the backup lacks the marker: %v", err)
		}
		return
	}
	if err := os.Rename(backup, dataDir); err != nil {
		t.Fatalf("documented recovery failed: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "marker")); err != nil || string(b) != marker {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestInterruptedRestore fails the restore at every step and checks the
// old data dir is intact or restorable with the documented rename.
func TestInterruptedRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	kube := t.TempDir()
	if err := os.MkdirAll(filepath.Join(kube, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kube, "pki", "ca.crt"), []byte("cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	arch := writeArchive(t, f.snap, kube)
	for _, step := range []string{stepStaged, stepBuilt, stepMovedAside, stepSwapped, stepKubeFile} {
		t.Run(step, func(t *testing.T) {
			dataDir := oldDataDir(t, f)
			injected := errors.New("injected failure at " + step)
			hook := func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			p, err := Prepare(context.Background(), Options{Source: arch, AllowUnencrypted: true, DataDir: dataDir, KubeDir: filepath.Join(t.TempDir(), "k"), BumpRevision: 5, MarkCompacted: true, testHook: hook})
			if err == nil {
				defer p.Close()
				_, err = p.Execute(context.Background())
			}
			if !errors.Is(err, injected) {
				t.Fatalf("want the injected error, got %v", err)
			}
			backup, rec := dataDir+".etcdsafe-", ""
			if p != nil {
				backup, rec = p.Backup, p.Recover
				if step == stepMovedAside && !strings.Contains(err.Error(), rec) {
					t.Errorf("error does not tell how to recover: %v", err)
				}
			}
			checkRecoverable(t, dataDir, backup, rec)
			if p != nil {
				p.Close()
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dataDir), stagingPrefix+"*"))
			if len(left) != 0 {
				t.Errorf("staging dir left behind: %v", left)
			}
		})
	}
}

// TestKilledRestore SIGKILLs a child process running the restore after the
// new dir is built and after the old one is moved aside.
func TestKilledRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, step := range []string{stepBuilt, stepMovedAside, stepSwapped} {
		t.Run(step, func(t *testing.T) {
			dataDir := oldDataDir(t, f)
			cmd := crashtest.Child(t, "restore", "RESTORE_TEST_KILL_AT="+step, "RESTORE_TEST_SRC="+f.snap, "RESTORE_TEST_DATADIR="+dataDir)
			if err := cmd.Wait(); !crashtest.Killed(err) {
				t.Fatalf("child did not die by SIGKILL: %v %s", err, cmd.Stderr)
			}
			backups, _ := filepath.Glob(dataDir + ".etcdsafe-*")
			backup := ""
			if len(backups) == 1 {
				backup = backups[0]
			} else if len(backups) > 1 {
				t.Fatalf("several backups: %v", backups)
			}
			checkRecoverable(t, dataDir, backup, "mv "+backup+" "+dataDir)
			if step == stepSwapped {
				// The restore completed: the new dir must be usable.
				if _, err := os.Stat(filepath.Join(dataDir, "member", "wal")); err != nil {
					t.Fatalf("swapped but no new data dir: %v", err)
				}
			}
		})
	}
}

// TestRefusesWhileEtcdRuns: the data dir's db is locked by a running etcd,
// or something listens on the manifest's client URL.
func TestRefusesWhileEtcdRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := etcdtest.Start(t)
	t.Run("db locked", func(t *testing.T) {
		_, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: s.DataDir})
		if !errors.Is(err, ErrEtcdRunning) {
			t.Fatalf("want ErrEtcdRunning, got %v", err)
		}
	})
	t.Run("client url listening", func(t *testing.T) {
		dir := t.TempDir()
		man := filepath.Join(dir, "etcd.yaml")
		b := strings.ReplaceAll(string(readTestdata(t, "etcd-kubeadm-single.yaml")), "https://127.0.0.1:2379", s.Endpoint)
		if err := os.WriteFile(man, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(dir, "etcd")
		_, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: dataDir, Manifest: man})
		if !errors.Is(err, ErrEtcdRunning) {
			t.Fatalf("want ErrEtcdRunning, got %v", err)
		}
		p, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: dataDir, Manifest: man, Force: true})
		if err != nil {
			t.Fatalf("--force: %v", err)
		}
		defer p.Close()
		if len(p.Checks) == 0 || !strings.Contains(strings.Join(p.Checks, "\n"), "something listens") {
			t.Errorf("checks %v", p.Checks)
		}
	})
	t.Run("source is the running db", func(t *testing.T) {
		_, err := Prepare(context.Background(), Options{Source: s.DBPath(), DataDir: filepath.Join(t.TempDir(), "etcd"), SkipHashCheck: true})
		if !errors.Is(err, ErrEtcdRunning) {
			t.Fatalf("want ErrEtcdRunning, got %v", err)
		}
	})
}
