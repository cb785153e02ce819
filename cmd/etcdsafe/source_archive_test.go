package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeReadableArchive backs up the demo fixture with a kube dir whose
// kube-apiserver manifest names the EncryptionConfiguration, and returns
// the archive and the identity file.
func makeReadableArchive(t *testing.T) (archivePath, key string) {
	t.Helper()
	dir := t.TempDir()
	kube := filepath.Join(dir, "kubernetes")
	for _, d := range []string{"manifests", "pki"} {
		if err := os.MkdirAll(filepath.Join(kube, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// a decoy config that the manifest does not name: must not be used
	decoy := strings.Replace(mustRead(t, filepath.Join(filepath.Dir(demoDB), "encryption-config.yaml")), "name: key1", "name: decoy", 1)
	mustWrite(t, filepath.Join(kube, "aaa-old-encryption.yaml"), []byte(decoy))
	copyFile(t, filepath.Join(filepath.Dir(demoDB), "encryption-config.yaml"), filepath.Join(kube, "encryption-config.yaml"), nil)
	mustWrite(t, filepath.Join(kube, "manifests", "kube-apiserver.yaml"), []byte("spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --encryption-provider-config=/etc/kubernetes/encryption-config.yaml\n"))
	key = filepath.Join(dir, "key.txt")
	stdout, stderr, code := runCLI(t, "keygen", "-o", key, "--x25519")
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	recipient := strings.TrimSpace(stdout)
	if i := strings.LastIndex(recipient, "age1"); i >= 0 {
		recipient = strings.Fields(recipient[i:])[0]
	}
	archivePath = filepath.Join(dir, "backup.tar.zst.age")
	if _, stderr, code := runCLI(t, "backup", "--from-db", demoDB, "--kube-dir", kube, "-r", recipient, "--out", archivePath); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	return archivePath, key
}

// TestReadCommandsOnArchive: every read command takes a backup archive as
// SOURCE, decrypts Secrets with the EncryptionConfiguration the archive's
// kube-apiserver manifest names, and leaves no plaintext behind.
func TestReadCommandsOnArchive(t *testing.T) {
	arch, key := makeReadableArchive(t)
	tmp := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", arch}, "etcd/snapshot.db in the archive"},
		{[]string{"ls", arch, "secrets", "-n", "payments"}, "aescbc:key1"},
		{[]string{"get", arch, "secret/stripe", "-n", "payments"}, "apiKey: c2tfdGVzdF9kZW1v"},
		{[]string{"history", arch, "deployment/api", "-n", "payments"}, "# revision 28: updated"},
		{[]string{"dump", arch, "--out", filepath.Join(tmp, "dump"), "-n", "payments"}, ""},
	} {
		args := append(tc.args, "-i", key, "--tmp-dir", tmp)
		stdout, stderr, code := runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, tc.want) {
			t.Errorf("%v: exit %d, stdout lacks %q\n%s\n%s", tc.args, code, tc.want, stdout, stderr)
		}
	}
	if b, err := os.ReadFile(filepath.Join(tmp, "dump", "payments", "secrets", "stripe.yaml")); err != nil || !strings.Contains(string(b), "apiKey:") {
		t.Errorf("dumped secret: %v %s", err, b)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if e.Name() != "dump" {
			t.Errorf("left behind in --tmp-dir: %s", e.Name())
		}
	}

	// no key, a wrong key, a truncated archive
	other := filepath.Join(t.TempDir(), "other.txt")
	if _, stderr, code := runCLI(t, "keygen", "-o", other); code != 0 {
		t.Fatal(stderr)
	}
	t.Setenv("ETCDSAFE_IDENTITY", "")
	t.Setenv("ETCDSAFE_PASSPHRASE", "")
	truncated := copyFile(t, arch, filepath.Join(t.TempDir(), "cut.age"), func(b []byte) []byte { return b[:len(b)*2/3] })
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no key", []string{"ls", arch}, 4},
		{"wrong key", []string{"ls", arch, "-i", other}, 4},
		{"truncated", []string{"ls", truncated, "-i", key}, 3},
	} {
		_, stderr, code := runCLI(t, append(tc.args, "--tmp-dir", tmp)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, stderr)
		}
	}
	entries, _ = os.ReadDir(tmp)
	if len(entries) != 1 {
		t.Errorf("left behind in --tmp-dir after failures: %v", entries)
	}
}
