package restore

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/crashtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// TestKilledRestoresLeaveNoPlaintext SIGKILLs restores of an archive (a
// snapshot and kube dir keys) at every step and at random times, then runs
// the next restore's sweep (a dry-run Prepare). Before the sweep, killed
// runs leave staging dirs holding the snapshot and keys; after it, the data
// dir's parent holds no staging dir and no file with a marker from the
// snapshot or the keys, except the data dir and the old one's backup; and
// the old data dir is intact or restorable with the printed mv.
func TestKilledRestoresLeaveNoPlaintext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	snapMarker := []byte(f.kvs["/registry/configmaps/ns2/cm-29"])
	keyMarker := []byte("KUBE-KEY-MARKER-3c1f")
	kube := t.TempDir()
	mkdir(t, filepath.Join(kube, "pki"))
	mkdir(t, filepath.Join(kube, "manifests"))
	writeFile(t, filepath.Join(kube, "pki", "ca.key"), "-----BEGIN PRIVATE KEY-----\n"+string(keyMarker)+"-ca\n")
	writeFile(t, filepath.Join(kube, "pki", "apiserver.key"), "-----BEGIN PRIVATE KEY-----\n"+string(keyMarker)+"-apiserver\n")
	writeFile(t, filepath.Join(kube, "manifests", "kube-apiserver.yaml"), "apiserver")
	arch := writeArchive(t, f.snap, kube)

	// child runs the restore in a new process; killAt is a step, or
	// "never" with after > 0 to kill it from here after that long.
	child := func(dataDir, kubeDst, killAt string, after time.Duration) (killed bool) {
		t.Helper()
		cmd := crashtest.Child(t, "restore", "RESTORE_TEST_KILL_AT="+killAt, "RESTORE_TEST_SRC="+arch,
			"RESTORE_TEST_DATADIR="+dataDir, "RESTORE_TEST_KUBEDIR="+kubeDst)
		if after > 0 {
			time.Sleep(after) // a random point of the run: the kill's timing is the test input
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if crashtest.Killed(err) {
			return true
		}
		if err != nil {
			t.Fatalf("restore failed: %v %s", err, cmd.Stderr)
		}
		return false
	}

	// An uninterrupted run: it must succeed, and its length spreads the
	// random kills over a whole run (start-up included).
	dataDir := oldDataDir(t, f)
	t0 := time.Now()
	if child(dataDir, filepath.Join(t.TempDir(), "k"), "never", 0) {
		t.Fatal("killed without a kill")
	}
	full := time.Since(t0)
	if _, err := os.Stat(filepath.Join(dataDir, "member", "wal")); err != nil {
		t.Fatalf("uninterrupted restore: %v", err)
	}

	// plaintext lists what, in the data dir's parent, is a staging dir or
	// holds a marker, leaving out the data dir and the old one's backup.
	plaintext := func(dataDir string) (staging, marked, emptyUnlocked []string) {
		parent := filepath.Dir(dataDir)
		_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			if p == dataDir || strings.HasPrefix(p, dataDir+".etcdsafe-") {
				return filepath.SkipDir
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), stagingPrefix) {
				ents, _ := os.ReadDir(p)
				if len(ents) == 0 {
					// killed between mkdir and flock (microseconds): holds
					// nothing, and the sweep leaves it an hour
					emptyUnlocked = append(emptyUnlocked, p)
					return filepath.SkipDir
				}
				staging = append(staging, p)
			}
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Errorf("read %s: %v", p, err)
				} else if bytes.Contains(b, snapMarker) || bytes.Contains(b, keyMarker) {
					marked = append(marked, p)
				}
			}
			return nil
		})
		return
	}

	steps := []string{stepStaging, stepSnapshot, stepKubeStaged, stepStaged, stepBuilding, stepBuilt, stepMovedAside, stepSwapped, stepKubeFile}
	const randomKills = 40
	var kills, leftRuns, leftDirs, leftFiles, swept, emptyDirs int
	for i := range len(steps) + randomKills {
		killAt, after := "never", time.Duration(0)
		if i < len(steps) {
			killAt = steps[i]
		} else {
			after = time.Duration(rand.Int64N(int64(full) + 1))
		}
		dataDir := oldDataDir(t, f)
		if !child(dataDir, filepath.Join(t.TempDir(), "k"), killAt, after) {
			continue // finished before the kill
		}
		kills++
		staging, marked, _ := plaintext(dataDir)
		if len(staging) > 0 || len(marked) > 0 {
			leftRuns++
		}
		leftDirs += len(staging)
		leftFiles += len(marked)

		// The next run sweeps first (a dry run changes nothing else).
		var removed []string
		p, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: dataDir, DryRun: true,
			OnSweep: func(dir string) { removed = append(removed, dir) },
			Now:     func() time.Time { return time.Now().Add(time.Hour) }}) // not the killed run's backup name
		if err != nil {
			t.Fatalf("kill %d (%s %v): the next run: %v", i, killAt, after, err)
		}
		p.Close()
		swept += len(removed)
		staging, marked, empty := plaintext(dataDir)
		if len(staging) > 0 || len(marked) > 0 {
			t.Errorf("kill %d (%s %v): after the sweep, staging %v, files with plaintext %v", i, killAt, after, staging, marked)
		}
		for _, e := range empty {
			if _, err := os.Lstat(filepath.Join(e, fsx.StagingLockName)); err == nil {
				t.Errorf("kill %d: locked staging dir %s survived the sweep", i, e)
			}
		}
		emptyDirs += len(empty)

		backups, _ := filepath.Glob(dataDir + ".etcdsafe-*")
		backup := ""
		if len(backups) == 1 {
			backup = backups[0]
		} else if len(backups) > 1 {
			t.Fatalf("several backups: %v", backups)
		}
		checkRecoverable(t, dataDir, backup, "mv "+backup+" "+dataDir)
	}
	t.Logf("%d runs, %d killed (%d at steps, the rest at random times up to %v): %d left plaintext behind (%d staging dirs, %d files with a marker); the sweep removed %d dirs, leaving 0 (and %d empty unlocked dirs)",
		len(steps)+randomKills, kills, len(steps), full.Round(time.Millisecond), leftRuns, leftDirs, leftFiles, swept, emptyDirs)
	if kills < len(steps) || leftRuns == 0 {
		t.Errorf("the test did not exercise killed runs: %d kills, %d with leftovers", kills, leftRuns)
	}
}
