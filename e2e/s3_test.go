package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// s3StartTimeout bounds the wait for s3server's export lines. It is long
// because the first start on a machine builds versitygw from its module
// (internal/s3test caches it in .cache/tools); a warm start takes well
// under a second.
const s3StartTimeout = 10 * time.Minute

// s3Server is a running S3 server for the off-site scenarios: the main
// module's internal/cmd/s3server (versitygw v1.8.0, posix backend with a
// versioning dir, loopback), built by scripts/e2e.sh into the e2e bin dir.
type s3Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// Env holds the KEY=VALUE pairs a client needs: AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 and
	// ETCDSAFE_S3_ENDPOINT.
	Env []string
}

// startS3 starts s3server from ETCDSAFE_E2E_BIN with a bucket created with
// object lock for each name in lockBuckets, and stops it (SIGTERM: it kills
// versitygw) in the test's cleanup. A missing binary or a server that does
// not come up fails the test; it never skips.
func startS3(t *testing.T, lockBuckets ...string) *s3Server {
	t.Helper()
	bin := filepath.Join(os.Getenv("ETCDSAFE_E2E_BIN"), "s3server")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("s3server missing (scripts/e2e.sh builds it from ../internal/cmd/s3server): %v", err)
	}
	dir := t.TempDir()
	args := []string{"-dir", filepath.Join(dir, "data")}
	for _, b := range lockBuckets {
		args = append(args, "-lock-bucket", b)
	}
	logPath := filepath.Join(dir, "s3server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	// versitygw's log goes to data/versitygw.log; s3server prints the
	// export lines on stdout
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// s3server kills versitygw on SIGTERM: ask for it if this test binary dies
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s3server: %v", err)
	}
	exited := make(chan struct{})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait() // after the last read: Wait closes the pipe
		close(exited)
	}()
	t.Cleanup(func() {
		go func() { // the reader must reach EOF for Wait
			for range lines {
			}
		}()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("s3server ignored SIGTERM for 30s (killed; its versitygw may still run)")
		}
		if t.Failed() {
			tailLog(t, "s3server", logPath)
			tailLog(t, "versitygw", filepath.Join(dir, "data", "versitygw.log"))
		}
	})

	s := &s3Server{}
	start := time.Now()
	deadline := time.After(s3StartTimeout)
	for s.Endpoint == "" {
		select {
		case l, ok := <-lines:
			if !ok { // the cleanup logs why
				t.Fatal("s3server exited before serving")
			}
			kv, found := strings.CutPrefix(l, "export ")
			if !found {
				continue
			}
			s.Env = append(s.Env, kv)
			if v, ok := strings.CutPrefix(kv, "ETCDSAFE_S3_ENDPOINT="); ok {
				s.Endpoint = v
			}
		case <-deadline:
			t.Fatalf("s3server: no endpoint after %v", s3StartTimeout)
		}
	}
	t.Logf("s3 server %s up in %.1fs, buckets with object lock: %s", s.Endpoint, time.Since(start).Seconds(), strings.Join(lockBuckets, " "))
	return s
}

// setenv exports the server's variables to the etcdsafe commands the test
// runs (and to nothing else it starts meanwhile that reads them).
func (s *s3Server) setenv(t *testing.T) {
	t.Helper()
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// tailLog logs the last 4 KiB of a file.
func tailLog(t *testing.T, name, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s log: %v", name, err)
		return
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	t.Logf("%s log %s (end):\n%s", name, path, b)
}
