package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mutate func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		b = mutate(b)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestBadInput: every kind of bad input gets a clear message, the
// documented exit code, and no panic.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	realDB := filepath.Join(realDir, "snapshot.db")
	enc := filepath.Join(realDir, "encryption-config.yaml")
	text := filepath.Join(dir, "notes.txt")
	mustWrite(t, text, []byte("hello"))
	random := filepath.Join(dir, "random.bin")
	mustWrite(t, random, []byte(strings.Repeat("\x5a\xa5garbage", 8192)))
	truncated := copyFile(t, realDB, filepath.Join(dir, "truncated.db"), func(b []byte) []byte { return b[:len(b)/2] })
	wrongKey := filepath.Join(dir, "wrong-key.yaml")
	mustWrite(t, wrongKey, []byte(strings.Replace(mustRead(t, enc), "ImkXqeerKRMz4U6bgQCkC4z1LxnvhNvSIufdOuCnhbQ=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)))
	emptyDir := t.TempDir()

	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string
		stdoutOK string // a substring stdout must still hold (the command went on)
	}{
		{"missing file", []string{"status", filepath.Join(dir, "nope.db")}, 1, "no such file", ""},
		{"not a data dir", []string{"ls", emptyDir}, 3, "not an etcd data dir", ""},
		{"tiny text file", []string{"status", text}, 3, "too small for a bbolt database", ""},
		{"random bytes", []string{"ls", random}, 3, "not an etcd snapshot", ""},
		{"truncated snapshot", []string{"ls", truncated}, 3, "truncated", ""},
		{"no decryption key", []string{"get", realDB, "secrets", "-n", "payments"}, 4, "no matching key was given", ""},
		{"wrong decryption key", []string{"get", realDB, "secrets", "-n", "payments", "--decryption-config", wrongKey}, 4, "wrong key", ""},
		{"encrypted among plain: others still printed", []string{"get", realDB, "--prefix", "/registry/s", "-o", "json"}, 4, "/registry/secrets/payments/stripe", "\"kind\": \"ServiceAccount\""},
		{"unknown type", []string{"get", realDB, "frobnicators"}, 2, "frobnicators", ""},
		{"not found", []string{"get", realDB, "deploy/nope", "-n", "payments"}, 1, "not found", ""},
		{"bad output", []string{"ls", realDB, "-o", "xml"}, 2, "-o must be", ""},
		{"-n with -A", []string{"ls", realDB, "pods", "-n", "x", "-A"}, 2, "exclude each other", ""},
		{"missing config file", []string{"get", realDB, "secrets", "--decryption-config", filepath.Join(dir, "none.yaml")}, 1, "read decryption config", ""},
		{"config with bad key", []string{"get", realDB, "secrets", "--decryption-config", text}, 4, "invalid encryption configuration", ""},
		{"dump without --out", []string{"dump", realDB}, 2, "--out", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sha(t, realDB)
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
			if tc.stdoutOK != "" && !strings.Contains(stdout, tc.stdoutOK) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdoutOK, stdout)
			}
			if strings.Contains(stderr+stdout, "sk_test_example") && code != 0 {
				t.Error("a secret value leaked")
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("panic:\n%s", stderr)
			}
			if sha(t, realDB) != before {
				t.Fatal("input file modified")
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLockedDB: a db held by a running etcd (an exclusive flock) gives exit
// 5 after the lock timeout, not a hang.
func TestLockedDB(t *testing.T) {
	t.Parallel()
	db := copyFile(t, filepath.Join(realDir, "snapshot.db"), filepath.Join(t.TempDir(), "db"), nil)
	holder, err := bolt.Open(db, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	start := time.Now()
	_, stderr, code := runCLI(t, "ls", db, "--lock-timeout", "300ms")
	if code != 5 || !strings.Contains(stderr, "locked") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

// TestCorruptedPages: bytes flipped inside the key bucket's pages are
// reported per record or as corruption, never a panic, and status --check
// exits 3.
func TestCorruptedPages(t *testing.T) {
	t.Parallel()
	realDB := filepath.Join(realDir, "snapshot.db")
	for _, off := range []int{4096 * 20, 4096*40 + 100, 4096 * 60} {
		db := copyFile(t, realDB, filepath.Join(t.TempDir(), "db"), func(b []byte) []byte {
			for i := off; i < off+64 && i < len(b); i++ {
				b[i] ^= 0xa5
			}
			return b
		})
		for _, args := range [][]string{{"status", db, "--check"}, {"ls", db}, {"get", db, "--prefix", "/"}} {
			_, stderr, code := runCLI(t, args...)
			if strings.Contains(stderr, "goroutine") {
				t.Fatalf("%v at %d: panic:\n%s", args, off, stderr)
			}
			if args[0] == "status" && code != 3 {
				t.Errorf("status --check on corrupted db at %d: exit %d\n%s", off, code, stderr)
			}
		}
	}
}
