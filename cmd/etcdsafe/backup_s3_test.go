package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// TestBackupS3ObjectLock: --object-lock puts the archive and its sidecar
// under the mode asked, until exactly the backup's time plus --lock-for
// (or the --keep-daily horizon); the server itself refuses to delete the
// locked version (through the SDK, not etcdsafe), and prune keeps it and
// exits 0. Serial: the CLI reads the AWS chain from the environment.
func TestBackupS3ObjectLock(t *testing.T) {
	p, stop, err := startS3Proxy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	p.setS3Env(t)
	ctx := context.Background()
	p.Server.CreateBucket(t, "vault", true)
	api := p.Server.Client(t)
	db := filepath.Join(realDir, "snapshot.db")

	tests := []struct {
		name, cluster string
		flags         []string
		mode          types.ObjectLockMode
		lockFor       time.Duration
	}{
		{"governance 30d", "gov", []string{"--object-lock", "governance", "--lock-for", "30d"}, types.ObjectLockModeGovernance, 30 * 24 * time.Hour},
		{"compliance 36h", "comp", []string{"--object-lock", "compliance", "--lock-for", "36h"}, types.ObjectLockModeCompliance, 36 * time.Hour},
		{"from --keep-daily", "daily", []string{"--object-lock", "governance", "--keep-daily", "7"}, types.ObjectLockModeGovernance, 7 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--out", "s3://vault/k8s", "--cluster", tc.cluster}, tc.flags...)
			stdout, stderr, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			url := strings.TrimSpace(stdout)
			key, ok := strings.CutPrefix(url, "s3://vault/")
			if !ok || !strings.HasPrefix(key, "k8s/"+tc.cluster+"/"+tc.cluster+"-") {
				t.Fatalf("printed %q", stdout)
			}
			sc := sidecarOf(t, api, "vault", key)
			for _, k := range []string{key, key + archive.SidecarSuffix} {
				h, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("vault"), Key: aws.String(k)})
				if err != nil {
					t.Fatal(err)
				}
				want := sc.Created.Add(tc.lockFor)
				if h.ObjectLockMode != tc.mode || h.ObjectLockRetainUntilDate == nil || !h.ObjectLockRetainUntilDate.Equal(want) {
					t.Fatalf("%s: lock %s until %v, want %s until %v", k, h.ObjectLockMode, h.ObjectLockRetainUntilDate, tc.mode, want)
				}
				// The server refuses to delete the locked version: not
				// etcdsafe's politeness, the bucket's guarantee.
				_, err = api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("vault"), Key: aws.String(k), VersionId: h.VersionId})
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
					t.Fatalf("delete of the locked version %s of %s: %v, want AccessDenied", aws.ToString(h.VersionId), k, err)
				}
				if _, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("vault"), Key: aws.String(k), VersionId: h.VersionId}); err != nil {
					t.Fatalf("%s gone after a refused delete: %v", k, err)
				}
			}
		})
	}

	// A newer unlocked backup of "gov"; prune --keep-last 1 drops the
	// locked one, keeps it, says so, and exits 0.
	if _, stderr, code := runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--out", "s3://vault/k8s", "--cluster", "gov"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "prune", "s3://vault/k8s/gov", "--keep-last", "1")
	if code != 0 || !strings.Contains(stdout, "keep (locked) ") || strings.Contains(stdout, "\nremove ") {
		t.Fatalf("prune: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rows []listRow
	stdout, _, code = runCLI(t, "list", "s3://vault/k8s", "-o", "json")
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || code != 0 {
		t.Fatalf("list: exit %d %v\n%s", code, err, stdout)
	}
	locked := 0
	for _, r := range rows {
		if r.Lock != nil {
			locked++
			if r.Lock.Until.Before(time.Now()) || (r.Lock.Mode != "governance" && r.Lock.Mode != "compliance") {
				t.Errorf("lock %+v", r.Lock)
			}
		}
	}
	if len(rows) != 4 || locked != 3 {
		t.Fatalf("list after prune: %d rows, %d locked:\n%s", len(rows), locked, stdout)
	}
}

// sidecarOf reads the sidecar of the archive at key through the SDK.
func sidecarOf(t *testing.T, api *s3.Client, bucket, key string) *archive.Sidecar {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key + archive.SidecarSuffix)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	sc, err := archive.DecodeSidecar(out.Body, key)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestBackupS3OutputFails: with a directory and a bucket, the server
// killed as the first part arrives: exit 1 naming the bucket, the
// directory's archive printed and kept, the metrics file counts the run a
// failure with one output failed; a run where both outputs work resets
// the gauge. Serial: the AWS chain from the environment.
func TestBackupS3OutputFails(t *testing.T) {
	p, stop, err := startS3Proxy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	p.setS3Env(t)
	p.Server.CreateBucket(t, "fleet", false)
	dir, metrics := t.TempDir(), filepath.Join(t.TempDir(), "m.prom")
	kd := kubeDir(t, 20<<20) // 3 parts of 8 MiB
	args := []string{"backup", "--from-db", filepath.Join(realDir, "snapshot.db"), "--kube-dir", kd, "--insecure-no-encryption",
		"--out", dir, "--out", "s3://fleet/k8s", "--cluster", "prod", "--metrics-file", metrics}

	p.KillAtPart(1)
	stdout, stderr, code := runCLI(t, args...)
	if code != exitFailure || !strings.Contains(stderr, "the archive is not on 1 of 2 outputs") || !strings.Contains(stderr, "s3://fleet/k8s/prod/") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	names := archivesIn(t, dir) // the archive and its sidecar
	if len(names) != 2 || stdout != names[0]+"\n" || names[1] != names[0]+archive.SidecarSuffix {
		t.Fatalf("stdout %q, archives %v", stdout, names)
	}
	if _, stderr, code := runCLI(t, "verify", names[0], "--allow-unencrypted"); code != 0 {
		t.Fatalf("the directory's archive does not verify: %s", stderr)
	}
	m := testfix.ParseMetrics(t, metrics)
	if m[backup.MetricOutputsFailed] != 1 || m[backup.MetricLastRunOK] != 0 || m[backup.MetricFailures] != 1 {
		t.Fatalf("metrics after a failed output: %v", m)
	}
	p.Server.Restart(t)
	lines, err := uploadsAndObjects(context.Background(), p.Server.Client(t), "fleet")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "upload k8s/prod/prod-") {
		t.Fatalf("bucket after the kill: %v", lines)
	}

	stdout, stderr, code = runCLI(t, args...)
	if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, "\ns3://fleet/k8s/prod/prod-") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	m = testfix.ParseMetrics(t, metrics)
	if m[backup.MetricOutputsFailed] != 0 || m[backup.MetricLastRunOK] != 1 || m[backup.MetricFailures] != 1 {
		t.Fatalf("metrics after a good run: %v", m)
	}
}

// TestBackupSidecarOut: --out - with --sidecar-out writes a sidecar that
// verify --quick pairs with the piped archive when named ARCHIVE.json,
// names the default archive name otherwise, is 0600, is never written
// over an existing file, and is not written when the backup fails.
func TestBackupSidecarOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(realDir, "snapshot.db")
	backupTo := func(sidecar string) (string, string, int) {
		return runCLI(t, "backup", "--from-db", db, "--kube-dir", "", "--insecure-no-encryption", "--out", "-", "--sidecar-out", sidecar, "--cluster", "prod")
	}
	sc := filepath.Join(dir, "piped.tar.zst"+archive.SidecarSuffix)
	stdout, stderr, code := backupTo(sc)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	arch := filepath.Join(dir, "piped.tar.zst")
	if err := os.WriteFile(arch, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runCLI(t, "verify", "--quick", arch); code != 0 || !strings.Contains(out, "size and SHA-256 match the sidecar") {
		t.Fatalf("verify --quick: exit %d %s %s", code, out, stderr)
	}
	if st, err := os.Stat(sc); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sidecar mode: %v %v", st, err)
	}
	// the piped archive cut short no longer matches its sidecar
	if err := os.WriteFile(arch, []byte(stdout[:len(stdout)-1]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runCLI(t, "verify", "--quick", arch); code != exitIntegrity {
		t.Fatalf("verify --quick of a cut archive: exit %d", code)
	}

	// never over an existing file
	before, _ := os.ReadFile(sc)
	if stdout, stderr, code := backupTo(sc); code != exitFailure || !strings.Contains(stderr, "exists") || stdout != "" {
		t.Fatalf("over an existing sidecar: exit %d, %d bytes streamed: %s", code, len(stdout), stderr)
	}
	if after, _ := os.ReadFile(sc); string(after) != string(before) {
		t.Fatal("existing sidecar changed")
	}

	// another name: the sidecar names the archive as a directory would
	other := filepath.Join(dir, "etcd.json")
	if _, stderr, code := backupTo(other); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := archive.DecodeSidecar(f, other)
	if err != nil {
		t.Fatal(err)
	}
	if want := backup.ArchiveName("prod", s.Host, s.Created, false); s.Archive != want || s.ArchiveSize == 0 {
		t.Fatalf("sidecar names %q, want %q (%+v)", s.Archive, want, s)
	}

	// a missing directory fails before the archive is streamed
	if stdout, stderr, code := backupTo(filepath.Join(dir, "nope", "x.tar.zst.json")); code != exitFailure || stdout != "" {
		t.Fatalf("sidecar in a missing directory: exit %d, %d bytes streamed: %s", code, len(stdout), stderr)
	}

	// a failed backup writes no sidecar
	failed := filepath.Join(dir, "failed.tar.zst.json")
	if _, _, code := runCLI(t, "backup", "--from-db", filepath.Join(dir, "nope.db"), "--kube-dir", "", "--insecure-no-encryption", "--out", "-", "--sidecar-out", failed); code == 0 {
		t.Fatal("backup of a missing db succeeded")
	}
	if _, err := os.Lstat(failed); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sidecar of a failed backup: %v", err)
	}
}

// TestBackupOutFlagsUsage: the --out, --sidecar-out, --object-lock,
// --lock-for and --partials-older-than combinations that make no sense
// are usage errors (exit 2) that write nothing; no S3 server is needed to
// tell.
func TestBackupOutFlagsUsage(t *testing.T) {
	t.Parallel()
	db := filepath.Join(realDir, "snapshot.db")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"stdout with another out", []string{"backup", "--out", "-", "--out", "DIR"}, "--out - (standard output) excludes other --out"},
		{"sidecar-out without stdout", []string{"backup", "--out", "DIR", "--sidecar-out", "DIR/x.json"}, "--sidecar-out is for --out -"},
		{"sidecar-out to stdout", []string{"backup", "--out", "-", "--sidecar-out", "-"}, "name a file"},
		{"out twice", []string{"backup", "--out", "DIR", "--out", "DIR/"}, "is given twice"},
		{"bucket twice", []string{"backup", "--out", "s3://b/p", "--out", "s3://b/p/"}, "is given twice"},
		{"same directory", []string{"backup", "--out", "DIR", "--out", "DIR/m1.tar.zst"}, "are in the same directory"},
		{"no bucket", []string{"backup", "--out", "s3:///p"}, "names no bucket"},
		{"lock-for without object-lock", []string{"backup", "--out", "DIR", "--lock-for", "30d"}, "--lock-for needs --object-lock"},
		{"unknown lock mode", []string{"backup", "--out", "DIR", "--object-lock", "forever"}, "--object-lock must be governance or compliance"},
		{"lock to stdout", []string{"backup", "--out", "-", "--object-lock", "governance", "--lock-for", "1d"}, "standard output cannot be locked"},
		{"lock a directory", []string{"backup", "--out", "DIR", "--object-lock", "governance", "--lock-for", "1d"}, "--object-lock needs an s3:// --out"},
		{"lock without a duration", []string{"backup", "--out", "DIR", "--object-lock", "governance", "--keep-last", "3"}, "--object-lock needs --lock-for"},
		{"lock-for zero", []string{"backup", "--out", "DIR", "--object-lock", "governance", "--lock-for", "0s"}, "must be at least 1s"},
		{"lock-for fraction of days", []string{"backup", "--out", "DIR", "--object-lock", "governance", "--lock-for", "1.5d"}, "want a duration such as 30d"},
		{"lock-for negative days", []string{"backup", "--out", "DIR", "--object-lock", "governance", "--lock-for", "-1d"}, "want a duration such as 30d"},
		{"partials age on a directory", []string{"prune", "DIR", "--keep-last", "1", "--partials-older-than", "1h"}, "--partials-older-than is for s3://"},
		{"negative partials age", []string{"prune", "s3://b/p", "--keep-last", "1", "--partials-older-than", "-1h"}, "must not be negative"},
		{"list an archive", []string{"list", "s3://b/p/prod-20260101T000000Z.tar.zst.age"}, "names an archive"},
		{"prune an archive", []string{"prune", "s3://b/p/prod-20260101T000000Z.tar.zst", "--keep-last", "1"}, "names an archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := make([]string, 0, len(tc.args)+6)
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", dir))
			}
			if args[0] == "backup" {
				args = append(args, "--from-db", db, "--kube-dir", "", "--insecure-no-encryption")
			}
			stdout, stderr, code := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("exit %d, want 2 with %q:\n%s", code, tc.msg, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
			for _, n := range testfix.ListNames(t, dir) {
				if n != fsx.LockName { // a backup dir keeps its lock file
					t.Fatalf("left %s", n)
				}
			}
		})
	}
}

// TestParseDays: whole days or a Go duration, nothing else.
func TestParseDays(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * day, true},
		{"1d", day, true},
		{"0d", 0, true},
		{"720h", 720 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"0s", 0, true},
		{"36600d", 36600 * day, true},
		{"36601d", 0, false},
		{"1.5d", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
		{"", 0, false},
		{"30", 0, false},
		{"1w", 0, false},
	}
	for _, tc := range tests {
		got, err := parseDays(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDays(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
