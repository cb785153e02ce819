package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
)

// TestKMSv2 (issue 15): a real kube-apiserver encrypting Secrets with a KMS
// v2 provider whose plugin is the test plugin (k8s.io/kms's gRPC server on
// a unix socket); etcdsafe get secrets -A on a snapshot of its etcd decrypts
// every one through that plugin, with one Decrypt call per data key
// kube-apiserver used (it makes one seed at its start).
func TestKMSv2(t *testing.T) {
	bin, es := bins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plugin := startKMSPlugin(t)

	root := t.TempDir()
	master := filepath.Join(root, "master")
	if err := os.MkdirAll(master, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := harness.Layout(master, bin)
	if err != nil {
		t.Fatal(err)
	}
	enc := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: e2e-kms
          endpoint: unix://%s
          timeout: 3s
      - identity: {}
`, plugin.socket)
	if err := os.WriteFile(c.EncConfig, []byte(enc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const perNS = 10
	want := map[string]string{} // ns/name -> base64 of its data
	for _, ns := range []string{"kms-a", "kms-b"} {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range perNS {
			name := fmt.Sprintf("s%d", i)
			val := fmt.Sprintf("password-%s-%d", ns, i)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string][]byte{"password": []byte(val)}}
			if _, err := kc.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			want[ns+"/"+name] = val
		}
	}

	// etcd holds them as KMS v2 values, and only as such
	ec := etcdClient(t, c)
	defer ec.Close()
	resp, err := ec.Get(ctx, "/registry/secrets/kms-a/s0")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get the stored Secret: %v", err)
	}
	if v := resp.Kvs[0].Value; !strings.HasPrefix(string(v), "k8s:enc:kms:v2:e2e-kms:") || strings.Contains(string(v), "password-kms-a-0") {
		t.Fatalf("stored value is not a KMS v2 value: %.40q", v)
	}
	snap := filepath.Join(root, "snap.db")
	saveSnapshot(ctx, t, ec, snap)

	before := plugin.decrypts(t)
	start := time.Now()
	out := mustCLI(t, es, "get", snap, "secrets", "-A", "--decryption-config", c.EncConfig)
	elapsed := time.Since(start)
	calls := plugin.decrypts(t) - before
	// each Secret's data is unique: all there means all decrypted
	for key, val := range want {
		if !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(val))) {
			t.Errorf("get secrets -A: the data of %s is missing", key)
		}
	}
	// kube-apiserver wrote every Secret with the one seed it made at start
	if calls != 1 {
		t.Errorf("etcdsafe made %d Decrypt calls for %d Secrets, want 1 (one per data key)", calls, len(want))
	}
	t.Logf("kms: get secrets -A decrypted %d Secrets in %.2fs with %d Decrypt call(s)", len(want), elapsed.Seconds(), calls)

	// without the plugin's endpoint: exit 4, the provider named
	_, stderr, code := etcdsafe(t, es, "get", snap, "secret/s0", "-n", "kms-a")
	if code != 4 || !strings.Contains(stderr, `KMS v2 provider "e2e-kms"`) {
		t.Errorf("without config: exit %d, stderr %s", code, stderr)
	}
	// the plugin down: exit 4, its endpoint named
	plugin.stop(t)
	_, stderr, code = etcdsafe(t, es, "get", snap, "secret/s0", "-n", "kms-a", "--decryption-config", c.EncConfig)
	if code != 4 || !strings.Contains(stderr, "unreachable") || !strings.Contains(stderr, plugin.socket) {
		t.Errorf("plugin down: exit %d, stderr %s", code, stderr)
	}
}

// kmsPlugin is internal/cmd/kmsplugin running.
type kmsPlugin struct {
	socket, log string
	cmd         *exec.Cmd
	done        chan struct{}
}

// startKMSPlugin starts kmsplugin from ETCDSAFE_E2E_BIN on a socket in a
// short temp dir (unix socket paths are limited to ~108 bytes).
func startKMSPlugin(t *testing.T) *kmsPlugin {
	t.Helper()
	exe := filepath.Join(os.Getenv("ETCDSAFE_E2E_BIN"), "kmsplugin")
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("kmsplugin missing (scripts/e2e.sh builds it from ../internal/cmd/kmsplugin): %v", err)
	}
	dir, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &kmsPlugin{socket: filepath.Join(dir, "kms.sock"), log: filepath.Join(t.TempDir(), "kmsplugin.log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(exe, "-socket", p.socket, "-secret", "e2e")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(p.log)
		if strings.Contains(string(b), "listening ") {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("kmsplugin exited: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kmsplugin not listening after 30s: %s", b)
		}
	}
}

// decrypts is the number of Decrypt calls the plugin served so far.
func (p *kmsPlugin) decrypts(t *testing.T) int {
	t.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "decrypt "); ok {
			if m, err := strconv.Atoi(v); err == nil && m > n {
				n = m
			}
		}
	}
	return n
}

func (p *kmsPlugin) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("kmsplugin ignored SIGTERM for 10s")
	}
}

// saveSnapshot writes etcd's snapshot stream to path.
func saveSnapshot(ctx context.Context, t *testing.T, ec *clientv3.Client, path string) {
	t.Helper()
	rc, err := ec.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
