package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// withRenderWorkers sets the number of render workers for the rest of the
// test.
func withRenderWorkers(t *testing.T, n int) {
	t.Helper()
	old := testOnlyRenderWorkers
	testOnlyRenderWorkers = n
	t.Cleanup(func() { testOnlyRenderWorkers = old })
}

// parallelFixture writes a snapshot whose keys take every way through get
// and dump, mixed so that each window of the pipeline sees several:
// objects, Secrets encrypted at rest, objects stored at a version that is
// shown with a note, values that are not objects, values that fail to
// decode, a key no file can be named after, owned Pods and Events.
func parallelFixture(t *testing.T) (snap, encConfig string) {
	t.Helper()
	ctx := context.Background()
	srv := etcdtest.Start(t)
	key := kubestore.EncryptionKey{Resource: "secrets", Provider: "aescbc", Name: "key1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	w, err := kubestore.New(srv.Client, kubestore.Options{Seed: 6, Encryption: []kubestore.EncryptionKey{key}, NoManagedFields: true})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	meta := func(ns, name string, i int) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"i": fmt.Sprint(i % 3)}}
		if i%4 == 1 {
			m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u-1", Controller: new(true)}}
		}
		return m
	}
	for _, ns := range []string{"alpha", "beta"} {
		for i := range 120 {
			name := fmt.Sprintf("obj-%03d", i)
			must(w.Create(ctx, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: meta(ns, name, i), Data: map[string]string{"n": fmt.Sprint(i), "text": strings.Repeat("x", i)}}))
			must(w.Create(ctx, &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: meta(ns, name, i), Data: map[string][]byte{"k": []byte(name)}}))
			must(w.Create(ctx, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: meta(ns, name, i), Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img"}}}}))
			switch i % 10 {
			case 2: // not a Kubernetes object: get prints the key, dump skips it
				must(w.PutRaw(ctx, fmt.Sprintf("/registry/configmaps/%s/text-%03d", ns, i), []byte("plain text")))
			case 4: // fails to decode
				must(w.PutRaw(ctx, fmt.Sprintf("/registry/configmaps/%s/bad-%03d", ns, i), []byte("k8s\x00\x0a\x02v1")))
			case 6: // encrypted with a key the config does not have
				must(w.PutRaw(ctx, fmt.Sprintf("/registry/secrets/%s/kms-%03d", ns, i), []byte("k8s:enc:kms:v2:vault:\x00\x01\x02")))
			case 8: // shown at its storage version, with a note
				must(w.PutRaw(ctx, fmt.Sprintf("/registry/deployments/%s/old-%03d", ns, i),
					fmt.Appendf(nil, `{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"old-%03d","namespace":%q}}`, i, ns)))
			}
			if i%7 == 0 {
				must(w.Create(ctx, &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
					ObjectMeta: meta(ns, name, i), Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}}))
			}
			if i%15 == 0 {
				must(w.Create(ctx, &corev1.Event{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
					ObjectMeta: meta(ns, name, i), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name}}))
			}
		}
	}
	// no file can be named ".."
	must(w.PutObject(ctx, "/registry/configmaps/alpha/..", &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "..", Namespace: "alpha"}}))
	dir := t.TempDir()
	snap = filepath.Join(dir, "snap.db")
	if _, err := snapshot.Save(ctx, srv.Client, snap); err != nil {
		t.Fatal(err)
	}
	encConfig = filepath.Join(dir, "enc.yaml")
	if err := os.WriteFile(encConfig, w.EncryptionConfigYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	return snap, encConfig
}

// TestParallelOutputMatchesSequential: get and dump print the same bytes,
// notes and failures in the same order, and exit the same with their
// render pipeline as with a plain sequential loop (one worker).
func TestParallelOutputMatchesSequential(t *testing.T) {
	type fixture struct{ snap, enc string }
	fixtures := map[string]fixture{"demo": {demoDB, filepath.Join(filepath.Dir(demoDB), "encryption-config.yaml")}}
	if !testing.Short() {
		snap, enc := parallelFixture(t)
		fixtures["mixed"] = fixture{snap, enc}
	}
	for fname, fx := range fixtures {
		// mixed says what the mixed fixture's output shows, so that the
		// comparison is not between two empty outputs.
		cases := []struct {
			name  string
			args  []string
			mixed []string
		}{
			{"get all yaml", []string{"get", fx.snap, "--prefix", "/", "--decryption-config", fx.enc},
				[]string{"value: plain text", "etcdsafe: note: /registry/deployments/alpha/old-008", "error: /registry/secrets/alpha/kms-006", "error: /registry/configmaps/beta/bad-004"}},
			{"get all json raw", []string{"get", fx.snap, "--prefix", "/", "-o", "json", "--raw", "--decryption-config", fx.enc},
				[]string{`"value": "plain text"`, "note: /registry/deployments/beta/old-118"}},
			{"get configmaps", []string{"get", fx.snap, "configmaps", "-A"}, []string{"name: obj-119"}},
			{"get secrets json", []string{"get", fx.snap, "secrets", "-A", "-o", "json", "--decryption-config", fx.enc}, []string{`"k": "b2JqLTAwMA=="`}},
			{"get secrets no key", []string{"get", fx.snap, "secrets", "-A"}, []string{"error: /registry/secrets/beta/obj-119"}},
			{"get deployments", []string{"get", fx.snap, "deployments", "-A", "--raw"}, []string{"note: /registry/deployments/alpha/old-018", "name: obj-007"}},
			{"get selector", []string{"get", fx.snap, "pods", "-A", "-l", "i=1", "-o", "json"}, []string{`"name": "obj-004"`}},
			{"get one name json", []string{"get", fx.snap, "configmaps/obj-007", "-o", "json"}, []string{`"kind": "List"`}},
			{"ls table", []string{"ls", fx.snap, "-A"}, []string{"obj-119", "Deployment  apps/v1"}},
			{"ls json", []string{"ls", fx.snap, "-A", "-o", "json"}, []string{`"name": "obj-119"`}},
			{"dump", []string{"dump", fx.snap, "-A", "--decryption-config", fx.enc},
				[]string{"unsafe name", "left out", "skipped 24 keys", "note: /registry/deployments/beta/old-008"}},
			{"dump owned", []string{"dump", fx.snap, "-A", "--include-owned"}, []string{"error: /registry/secrets/alpha/obj-000", "skipped 24 keys"}},
		}
		for _, tc := range cases {
			t.Run(fname+"/"+tc.name, func(t *testing.T) {
				runWith := func(n int) (stdout, stderr string, code int, files map[string]string) {
					withRenderWorkers(t, n)
					args := tc.args
					out := filepath.Join(t.TempDir(), "dump")
					if args[0] == "dump" {
						args = append(append([]string{}, args...), "--out", out)
					}
					stdout, stderr, code = runCLI(t, args...)
					if args[0] == "dump" {
						files = readTree(t, out)
						stderr = strings.ReplaceAll(stderr, out, "OUT")
					}
					return
				}
				so1, se1, c1, f1 := runWith(1)
				for _, n := range []int{2, 7} {
					so, se, c, f := runWith(n)
					if so != so1 {
						t.Errorf("%d workers: stdout differs from 1 worker's:\n%s", n, firstDiff(so1, so))
					}
					if se != se1 {
						t.Errorf("%d workers: stderr differs from 1 worker's:\n%s", n, firstDiff(se1, se))
					}
					if c != c1 {
						t.Errorf("%d workers: exit %d, 1 worker: %d", n, c, c1)
					}
					if len(f) != len(f1) {
						t.Errorf("%d workers: %d files, 1 worker: %d", n, len(f), len(f1))
					}
					for p, b := range f1 {
						if f[p] != b {
							t.Errorf("%d workers: %s differs:\n%s", n, p, firstDiff(b, f[p]))
						}
					}
				}
				if so1 == "" && se1 == "" && len(f1) == 0 {
					t.Errorf("no output at all: exit %d", c1)
				}
				for _, want := range tc.mixed {
					if fname == "mixed" && !strings.Contains(so1+se1, want) {
						t.Errorf("output does not show %q:\n%s", want, se1)
					}
				}
			})
		}
	}
}

// cancelOnWrite cancels a context at the first write of an error line,
// as an interrupt in the middle of a run would.
type cancelOnWrite struct {
	strings.Builder
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "etcdsafe: error:") {
		w.cancel()
	}
	return w.Builder.Write(p)
}

// TestInterruptedWhileRendering: an interrupt while the workers render
// stops get and dump with exit 130, and dump leaves nothing behind.
func TestInterruptedWhileRendering(t *testing.T) {
	withRenderWorkers(t, 4)
	for _, verb := range []string{"get", "dump"} {
		t.Run(verb, func(t *testing.T) {
			parent := t.TempDir()
			// no decryption config: the Secrets fail
			args := []string{"get", demoDB, "--prefix", "/"}
			if verb == "dump" {
				args = []string{"dump", demoDB, "-A", "--out", filepath.Join(parent, "dump")}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stderr := &cancelOnWrite{cancel: cancel}
			var stdout strings.Builder
			code := run(ctx, args, strings.NewReader(""), &stdout, stderr)
			if code != 130 {
				t.Errorf("exit %d, want 130: %s", code, stderr.String())
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// readTree returns every file under root by its path relative to root.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := os.Stat(root); err != nil {
		return out
	}
	for _, f := range listFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	return out
}

// firstDiff shows where two texts part, line by line.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, w, g)
		}
	}
	return "(same lines)"
}

// BenchmarkRenderWorkers: get -A and dump with one render worker (the
// sequential loop) and with one per core; ETCDSAFE_BENCH_DB picks the file.
func BenchmarkRenderWorkers(b *testing.B) {
	db, _, _ := benchSource(b)
	for _, n := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("get/workers=%d", n), func(b *testing.B) {
			old := testOnlyRenderWorkers
			testOnlyRenderWorkers = n
			defer func() { testOnlyRenderWorkers = old }()
			benchCLI(b, "get", db, "deployments", "-A")
		})
		b.Run(fmt.Sprintf("dump/workers=%d", n), func(b *testing.B) {
			old := testOnlyRenderWorkers
			testOnlyRenderWorkers = n
			defer func() { testOnlyRenderWorkers = old }()
			dir := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				out := filepath.Join(dir, fmt.Sprint(i))
				// Secrets fail without their key: the rest is written
				code := run(context.Background(), []string{"dump", db, "-A", "--out", out}, strings.NewReader(""), io.Discard, io.Discard)
				if _, err := os.Stat(out); err != nil {
					b.Fatalf("dump: exit %d, %v", code, err)
				}
			}
		})
	}
}
