package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

const demoDB = "../../testdata/generated/demo.db"

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestDumpNamespace: -n without TYPE dumps only that namespace's objects,
// nothing cluster-scoped and no apiserver bookkeeping, and every file is
// create-ready.
func TestDumpNamespace(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dump")
	enc := filepath.Join(filepath.Dir(demoDB), "encryption-config.yaml")
	_, stderr, code := runCLI(t, "dump", demoDB, "--out", out, "-n", "payments", "--decryption-config", enc)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	files := listFiles(t, out)
	if len(files) < 10 {
		t.Fatalf("only %d files: %v", len(files), files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "payments/") {
			t.Errorf("%s is outside namespace payments", f)
		}
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"resourceVersion:", "uid:", "creationTimestamp:", "managedFields:"} {
			if strings.Contains(string(b), "\n  "+field) {
				t.Errorf("%s: create-ready output still has metadata %s", f, field)
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "payments", "secrets", "stripe.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v", fi, err)
	}
	// the tool refuses to write into an existing directory
	_, stderr, code = runCLI(t, "dump", demoDB, "--out", out)
	if code != 2 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second dump: exit %d %s", code, stderr)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".dump.etcdsafe-tmp-*")); len(leftovers) != 0 {
		t.Errorf("temp dirs left: %v", leftovers)
	}
}

// TestDumpHostileKeys: keys that would escape the output directory are
// refused and reported; the rest is written; nothing lands outside DIR.
func TestDumpHostileKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t)
	w, err := kubestore.New(srv.Client, kubestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cm := func(ns, name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{"k": "v"}}
	}
	if _, err := w.Create(ctx, cm("good", "fine")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"/registry/configmaps/good/..",
		"/registry/configmaps/../escape",
		"/registry/configmaps/good/a\x00b",
	} {
		if _, err := w.PutObject(ctx, key, cm("good", "hostile")); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if _, err := snapshot.Save(ctx, srv.Client, snap); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "dump")
	_, stderr, code := runCLI(t, "dump", snap, "--out", out, "configmaps")
	if code != 1 {
		t.Errorf("exit %d, want 1 (some keys refused)\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "unsafe name") {
		t.Errorf("stderr does not name the refusal:\n%s", stderr)
	}
	files := listFiles(t, filepath.Join(dir, "out"))
	if len(files) != 1 || files[0] != filepath.Join("dump", "good", "configmaps", "fine.yaml") {
		t.Errorf("files under out/: %v", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape.yaml")); err == nil {
		t.Error("a key escaped the output directory")
	}
}

// TestDumpInterrupted: an interrupted dump exits 130 and leaves neither
// DIR nor its temporary directory.
func TestDumpInterrupted(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "dump")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"dump", demoDB, "--out", out}, strings.NewReader(""), &stdout, &stderr)
	if code != 130 {
		t.Errorf("exit %d, want 130: %s", code, stderr.String())
	}
	if left := listFiles(t, parent); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestRevisionBeforeCompaction: asking for a state older than the last
// compaction warns that it is incomplete.
func TestRevisionBeforeCompaction(t *testing.T) {
	for _, rev := range []struct {
		r    string
		warn bool
	}{{"4", true}, {"5", false}, {"30", false}} {
		_, stderr, code := runCLI(t, "get", demoDB, "namespaces", "--revision", rev.r)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if got := strings.Contains(stderr, "older than the last compaction (5)"); got != rev.warn {
			t.Errorf("--revision %s: warning %v, want %v\n%s", rev.r, got, rev.warn, stderr)
		}
	}
}
