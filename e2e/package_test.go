package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
)

// releaseDir is the release scripts/e2e.sh built for this machine's arch
// ($ETCDSAFE_E2E_RELEASE, by make release ARCHES=<arch>) with the nfpm it
// used ($ETCDSAFE_E2E_NFPM). Missing, the test fails: it never skips.
func releaseDir(t *testing.T) (dir, nfpm string) {
	t.Helper()
	dir, nfpm = os.Getenv("ETCDSAFE_E2E_RELEASE"), os.Getenv("ETCDSAFE_E2E_NFPM")
	if dir == "" || nfpm == "" {
		t.Fatal("ETCDSAFE_E2E_RELEASE and ETCDSAFE_E2E_NFPM are not set: run `make e2e` (scripts/e2e.sh builds the packages first)")
	}
	return dir, nfpm
}

// TestPackage: the release is reproducible (built a second time, the same
// bytes), and the .deb, unpacked into a scratch root with dpkg -x as an
// install would lay it out, carries a binary that backs up the real etcd of
// a control plane over TLS and says which commit it is.
func TestPackage(t *testing.T) {
	bin, _ := bins(t)
	rel, nfpm := releaseDir(t)
	sums, err := os.ReadFile(filepath.Join(rel, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("reproducible", func(t *testing.T) {
		// the same commit and tree, built again into another dir: every
		// file the same (SHA256SUMS lists them all, packages included)
		again := filepath.Join(t.TempDir(), "dist")
		start := time.Now()
		cmd := exec.Command("bash", "scripts/release.sh")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "DIST="+again, "ARCHES="+runtime.GOARCH, "FORMATS=deb rpm", "NFPM="+nfpm)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("release again: %v\n%s", err, out)
		}
		sums2, err := os.ReadFile(filepath.Join(again, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sums, sums2) {
			t.Fatalf("two builds differ:\n%s\nagain:\n%s", sums, sums2)
		}
		if n := strings.Count(string(sums), "\n"); n < 3 {
			t.Fatalf("SHA256SUMS lists %d files, want the binary, the .deb and the .rpm:\n%s", n, sums)
		}
		t.Logf("release: built again in %.1fs, the same %d files", time.Since(start).Seconds(), strings.Count(string(sums), "\n"))
	})

	debs, _ := filepath.Glob(filepath.Join(rel, "*_"+runtime.GOARCH+".deb"))
	if len(debs) != 1 {
		t.Fatalf("want one %s .deb in %s, got %v", runtime.GOARCH, rel, debs)
	}
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x %s: %v\n%s", debs[0], err, out)
	}
	es := filepath.Join(root, "usr/bin/etcdsafe")

	t.Run("contents", func(t *testing.T) {
		for _, f := range []struct {
			path string
			mode os.FileMode
		}{
			{"usr/bin/etcdsafe", 0o755},
			{"usr/lib/systemd/system/etcdsafe-backup.service", 0o644},
			{"usr/lib/systemd/system/etcdsafe-backup.timer", 0o644},
			{"etc/etcdsafe/backup.env", 0o600},
			{"usr/lib/systemd/system/etcdsafe-drill.service", 0o644},
			{"usr/lib/systemd/system/etcdsafe-drill.timer", 0o644},
			{"etc/etcdsafe/drill.env", 0o600},
			{"usr/share/bash-completion/completions/etcdsafe", 0o644},
			{"usr/share/zsh/vendor-completions/_etcdsafe", 0o644},
			{"usr/share/fish/vendor_completions.d/etcdsafe.fish", 0o644},
			{"usr/share/man/man1/etcdsafe.1.gz", 0o644},
			{"usr/share/man/man1/etcdsafe-backup.1.gz", 0o644},
		} {
			st, err := os.Stat(filepath.Join(root, f.path))
			if err != nil {
				t.Errorf("package lacks %s: %v", f.path, err)
				continue
			}
			if st.Mode().Perm() != f.mode || st.Size() == 0 {
				t.Errorf("%s: mode %v size %d, want %v and content", f.path, st.Mode().Perm(), st.Size(), f.mode)
			}
		}
		// the unit runs the packaged binary
		unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/etcdsafe-backup.service"))
		if err != nil || !bytes.Contains(unit, []byte("ExecStart=/usr/bin/etcdsafe backup")) {
			t.Errorf("the service does not run /usr/bin/etcdsafe backup (%v)", err)
		}
		out, err := exec.Command("dpkg-deb", "-f", debs[0], "Package", "Architecture").CombinedOutput()
		if err != nil || string(out) != "Package: etcdsafe\nArchitecture: "+runtime.GOARCH+"\n" {
			t.Errorf("control fields: %q %v", out, err)
		}
	})

	t.Run("version", func(t *testing.T) {
		var v struct {
			Version, Commit, GoVersion string
			CommitTime                 time.Time
			Modules                    []struct{ Path, Version string }
		}
		if err := json.Unmarshal([]byte(mustCLI(t, es, "version", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if v.Commit != strings.TrimSpace(string(head)) || v.CommitTime.IsZero() || v.Version == "dev" || v.Version == "" {
			t.Errorf("version of the packaged binary: %+v, want commit %s with its time and version", v, head)
		}
		if len(v.Modules) != 4 {
			t.Errorf("modules %+v, want etcd, apimachinery, age and the S3 client", v.Modules)
		}
		t.Logf("packaged etcdsafe: %s %s (%s) %s", v.Version, v.Commit, v.CommitTime.Format(time.RFC3339), v.GoVersion)
	})

	t.Run("backup_over_tls", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := t.TempDir()
		c, err := harness.Layout(filepath.Join(dir, "master"), bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Errorf("stop control plane: %v", err)
			}
		})
		key := filepath.Join(dir, "backup.key")
		recipient := strings.TrimSpace(mustCLI(t, es, "keygen", "-o", key))
		out := filepath.Join(dir, "backups")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, es, "backup", "--endpoints", c.EtcdURL,
			"--cacert", c.PKI("etcd/ca.crt"), "--cert", c.PKI("etcd/healthcheck-client.crt"), "--key", c.PKI("etcd/healthcheck-client.key"),
			"--kube-dir", c.KubeDir, "-r", recipient, "--out", out)
		archives, _ := filepath.Glob(filepath.Join(out, "*.tar.zst.age"))
		if len(archives) != 1 {
			t.Fatalf("want one archive in %s, got %v", out, archives)
		}
		vout := mustCLI(t, es, "verify", archives[0], "-i", key)
		if !strings.Contains(vout, "Consistency check") {
			t.Errorf("verify printed:\n%s", vout)
		}
		// what kube-apiserver wrote is in it
		ls := mustCLI(t, es, "ls", archives[0], "-i", key, "namespaces")
		if !strings.Contains(ls, "kube-system") {
			t.Errorf("ls namespaces of the packaged binary's backup:\n%s", ls)
		}
		fi, _ := os.Stat(archives[0])
		t.Logf("backup: packaged binary, %d bytes over TLS", fi.Size())
	})
}
