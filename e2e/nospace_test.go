package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
)

// noSpaceQuota is the etcd quota of the NOSPACE scenario: above what
// kube-apiserver writes at its start, small enough to fill in seconds.
const noSpaceQuota = 24 << 20

// TestNoSpaceRestore (issue 14): a real control plane whose etcd runs with
// a small --quota-backend-bytes is filled through kube-apiserver until
// etcd raises NOSPACE; the backup taken then is over the quota, so the dry
// run lists the blocker and exits 1; restored with --compact and
// --clean-leases, etcd starts without the alarm, and etcd and
// kube-apiserver accept writes.
func TestNoSpaceRestore(t *testing.T) {
	bin, es := bins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	master := filepath.Join(root, "master")
	if err := os.MkdirAll(master, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := harness.Layout(master, bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.SetManifestFlag(c.EtcdManifest(), "quota-backend-bytes", fmt.Sprint(noSpaceQuota)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ec := etcdClient(t, c)

	// Fill: ten ConfigMaps of 900 KiB rewritten until etcd refuses.
	big := strings.Repeat("x", 900<<10)
	var writes int
	for ; ; writes++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("filler-%d", writes%10), Namespace: "default"},
			Data: map[string]string{"v": fmt.Sprintf("%d:%s", writes, big)}}
		var err error
		if writes < 10 {
			_, err = kc.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
		} else {
			_, err = kc.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err != nil && strings.Contains(err.Error(), "database space exceeded") {
			break
		}
		if err != nil {
			t.Fatalf("write %d: %v", writes, err)
		}
		if writes > 500 {
			t.Fatal("no NOSPACE after 500 writes")
		}
	}
	if al, err := ec.AlarmList(ctx); err != nil || len(al.Alarms) != 1 {
		t.Fatalf("want NOSPACE raised, got %v, %v", al, err)
	}
	t.Logf("nospace: control plane up and NOSPACE raised after %d writes in %.1fs", writes, time.Since(start).Seconds())

	key := filepath.Join(root, "backup.key")
	recipient := strings.TrimSpace(mustCLI(t, es, "keygen", "-o", key))
	out := filepath.Join(root, "backups")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, es, "backup", "--endpoints", c.EtcdURL,
		"--cacert", c.PKI("etcd/ca.crt"), "--cert", c.PKI("etcd/healthcheck-client.crt"), "--key", c.PKI("etcd/healthcheck-client.key"),
		"--kube-dir", c.KubeDir, "-r", recipient, "--out", out)
	archives, _ := filepath.Glob(filepath.Join(out, "*.tar.zst.age"))
	if len(archives) != 1 {
		t.Fatalf("want one archive, got %v", archives)
	}
	ec.Close()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	args := []string{"restore", archives[0], "-i", key, "--manifest", c.EtcdManifest(), "--data-dir", c.DataDir}
	// Over the quota: the dry run prints the whole plan and the blocker,
	// then exits as the real restore would.
	dry, stderr, code := etcdsafe(t, es, append(args, "--dry-run")...)
	for _, re := range []string{
		`(?m)^  alarm     NOSPACE \(raised by member [0-9a-f]+\): cleared in the restored db`,
		// etcd raises NOSPACE when a write would pass the quota: the db
		// is then over it, or (usually) just below it, where the first
		// large write would raise it again.
		`(?m)^  db size   .* (over|within 1\.5 MiB of) the quota of 24\.0 MiB \(the manifest .*etcd\.yaml\): etcd would reject (the first|large) writes? and raise NOSPACE( again)?$`,
		`(?m)^  BLOCKER: the snapshot's db is .*restore with --compact`,
	} {
		if !regexp.MustCompile(re).MatchString(dry) {
			t.Errorf("dry run output lacks %s", re)
		}
	}
	if code != 1 || !strings.Contains(stderr, "hint: nothing was moved: restore with --compact") {
		t.Fatalf("dry run over the quota: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, dry, stderr)
	}

	args = append(args, "--compact", "--clean-leases")
	res := mustCLI(t, es, args...)
	t.Logf("restore:\n%s", res)
	for _, re := range []string{
		`(?m)^  delete    /registry/leases/kube-system/apiserver-[a-z0-9]+$`,
		`(?m)^alarms: 1 cleared from the restored db$`,
		`(?m)^db [0-9.]+ MiB -> [0-9.]+ [KM]iB \(quota 24\.0 MiB, \d+% used\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(res) {
			t.Errorf("restore output lacks %s", re)
		}
	}
	if m := regexp.MustCompile(`(?m)^db .* -> .*`).FindString(res); m != "" {
		fmt.Printf("e2e nospace: %d writes to NOSPACE; restore --compact: %s\n", writes, m)
	}

	// The restored cluster: no alarm, and both etcd and kube-apiserver write.
	start = time.Now()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	ec = etcdClient(t, c)
	defer ec.Close()
	if al, err := ec.AlarmList(ctx); err != nil || len(al.Alarms) != 0 {
		t.Fatalf("alarms after the restore: %v, %v", al, err)
	}
	if _, err := ec.Put(ctx, "/etcdsafe-e2e/after-restore", "ok"); err != nil {
		t.Fatalf("etcd refuses a put after the restore: %v", err)
	}
	kc, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restore", Namespace: "default"}, Data: map[string]string{"v": big}}
	if _, err := kc.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kube-apiserver refuses a write after the restore: %v", err)
	}
	got, err := kc.CoreV1().ConfigMaps("default").Get(ctx, "filler-3", metav1.GetOptions{})
	if err != nil || !strings.HasSuffix(got.Data["v"], big) {
		t.Fatalf("filler-3 after the restore: %v", err)
	}
	t.Logf("nospace: restored control plane ready and writing in %.1fs", time.Since(start).Seconds())
}

// etcdClient connects to the cluster's etcd with the healthcheck client
// certificate.
func etcdClient(t *testing.T, c *harness.Cluster) *clientv3.Client {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.PKI("etcd/healthcheck-client.crt"), c.PKI("etcd/healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(c.PKI("etcd/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ec, err := clientv3.New(clientv3.Config{Endpoints: []string{c.EtcdURL}, DialTimeout: 10 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	return ec
}
