package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/crashtest"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// TestBackupKillSweep SIGKILLs live backups at random points (while the
// snapshot streams, right after it is spooled, mid-archive), then searches
// every file left in the backup dir, the --tmp-dir and TMPDIR for a marker
// written into etcd: no plaintext may be found. The next runs' sweeps must
// leave no staging dir and no partial archive.
func TestBackupKillSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	ctx := context.Background()
	mb := make([]byte, 8)
	_, _ = rand.Read(mb)
	marker := "etcdsafe-kill-marker-" + hex.EncodeToString(mb)
	// ~12 MiB: the snapshot streams long enough to be killed mid-way.
	filler := make([]byte, 30<<10)
	for i := range 400 {
		_, _ = rand.Read(filler)
		if _, err := s.Client.Put(ctx, fmt.Sprintf("/registry/secrets/ns/s-%03d", i), marker+hex.EncodeToString(filler)[:30<<10]); err != nil {
			t.Fatal(err)
		}
	}
	_, recip := keyPair(t, true)
	out, tmpDir, sysTmp := t.TempDir(), t.TempDir(), t.TempDir()
	base := []string{"backup", "--endpoints", s.Endpoint, "--kube-dir", kubeDir(t, 1<<20), "-r", recip, "--out", out}

	// One full run in a child, to time the kills.
	t0 := time.Now()
	c := childBackupEnv(t, "", []string{"TMPDIR=" + sysTmp}, base...)
	if err := c.Wait(); err != nil {
		t.Fatalf("full run: %v\n%s", err, c.Stderr)
	}
	full := time.Since(t0)

	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 0))
	type kill struct {
		mode  string
		delay time.Duration
	}
	plan := []kill{{mode: "kill-after-spool"}, {mode: "kill-after-spool"}, {mode: "kill"}}
	for range 9 {
		plan = append(plan, kill{delay: time.Duration(rng.Int64N(int64(full)))})
	}
	var kills, completed, leftovers, plaintext int
	for i, k := range plan {
		args := base
		if i%2 == 0 {
			args = append(append([]string(nil), base...), "--tmp-dir", tmpDir)
		}
		c := childBackupEnv(t, k.mode, []string{"TMPDIR=" + sysTmp}, args...)
		if k.delay > 0 {
			time.Sleep(k.delay)
			_ = c.Process.Signal(syscall.SIGKILL)
		}
		err := c.Wait()
		switch {
		case err == nil:
			completed++
		case crashtest.Killed(err):
			kills++
		default:
			t.Fatalf("run %d (%+v): %v\n%s", i, k, err, c.Stderr)
		}
		files, found := scanForMarker(t, []byte(marker), out, tmpDir, sysTmp)
		leftovers, plaintext = leftovers+len(files), plaintext+len(found)
		for _, f := range found {
			t.Errorf("run %d (%+v): plaintext marker in %s", i, k, f)
		}
	}
	t.Logf("seed %d, full run %v: %d kills, %d runs finished first, %d leftover files seen across scans (partial archives, staging locks), %d files with plaintext",
		seed, full.Round(time.Millisecond), kills, completed, leftovers, plaintext)
	if kills < 3 {
		t.Fatalf("only %d runs were killed", kills)
	}

	// The next runs sweep what the killed ones left, in both staging
	// places and in the backup dir.
	t.Setenv("TMPDIR", sysTmp)
	for _, extra := range [][]string{{"--tmp-dir", tmpDir}, nil} {
		if _, stderr, code := runCLI(t, append(append([]string(nil), base...), extra...)...); code != 0 {
			t.Fatalf("next run %v: exit %d\n%s", extra, code, stderr)
		}
	}
	for _, d := range []string{tmpDir, sysTmp} {
		if m, _ := filepath.Glob(filepath.Join(d, backup.StagingPrefix+"*")); len(m) != 0 {
			t.Errorf("staging dirs left in %s: %v", d, m)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*")); len(m) != 0 {
		t.Errorf("partial archives left: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".etcdsafe-snapshot-*")); len(m) != 0 {
		t.Errorf("staging in the backup dir: %v", m)
	}
}

// scanForMarker searches every regular file under dirs for marker; files
// are the leftovers among them (neither a lock nor a finished backup).
func scanForMarker(t *testing.T, marker []byte, dirs ...string) (files, found []string) {
	t.Helper()
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !de.Type().IsRegular() || de.Name() == fsx.LockName {
				return nil
			}
			if !backup.IsArchiveName(de.Name()) && !backup.IsArchiveName(strings.TrimSuffix(de.Name(), ".json")) {
				files = append(files, p) // not a finished backup: a leftover
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, marker) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil && !strings.Contains(err.Error(), "no such file") {
			t.Fatal(err)
		}
	}
	return files, found
}
