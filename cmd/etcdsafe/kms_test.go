package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// TestKMSValue: a value a KMS plugin encrypted gets a clear error naming the
// provider, never garbage, and the other objects are still printed.
func TestKMSValue(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t)
	w, err := kubestore.New(srv.Client, kubestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// what kube-apiserver writes with a KMS v2 provider named "vault": the
	// prefix, then an EncryptedObject protobuf only the plugin can open
	if _, err := w.PutRaw(ctx, "/registry/secrets/prod/db", []byte("k8s:enc:kms:v2:vault:\x0a\x20"+strings.Repeat("\x5a", 32)+"\x12\x10wrapped-data-key")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutRaw(ctx, "/registry/secrets/prod/plain", []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"plain","namespace":"prod"},"data":{"a":"Yg=="}}`)); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, err := snapshot.Save(ctx, srv.Client, snap); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "get", snap, "secrets", "-n", "prod", "--decryption-config", filepath.Join(realDir, "encryption-config.yaml"))
	if code != exitKey {
		t.Errorf("exit %d, want %d", code, exitKey)
	}
	if !strings.Contains(stderr, `KMS v2 provider "vault"`) || !strings.Contains(stderr, "/registry/secrets/prod/db") {
		t.Errorf("stderr does not name the key and the KMS provider:\n%s", stderr)
	}
	if !strings.Contains(stdout, "name: plain") || strings.Contains(stdout, "name: db") {
		t.Errorf("stdout:\n%s", stdout)
	}
	out, _, _ := runCLI(t, "ls", snap, "secrets", "-A")
	if !strings.Contains(out, "kms:v2:vault") {
		t.Errorf("ls does not show the provider:\n%s", out)
	}
}
