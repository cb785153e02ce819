// Command mksnapshot runs a real etcd and kube-apiserver (binaries given by
// flags), applies the e2e workload, saves an etcd snapshot over TLS the way
// `etcdctl snapshot save` does, and writes what the API served at the
// snapshot's revision next to it:
//
//	OUT/snapshot.db  OUT/encryption-config.yaml  OUT/api/<resource>.json  OUT/README.md
//
// Before the workload it uploads the kubeadm-config ConfigMap as `kubeadm
// init` does (its ClusterConfiguration names the version the API server
// reports), so that the snapshot tells which kube-apiserver wrote it, as a
// kubeadm cluster's does.
//
// scripts/mk-old-snapshots.sh runs it with older binaries to make the
// fixtures under testdata/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	etcdBin := flag.String("etcd", "", "etcd binary")
	apiBin := flag.String("kube-apiserver", "", "kube-apiserver binary")
	out := flag.String("out", "", "output directory (must not exist)")
	versions := flag.String("versions", "", "what built the binaries, for the README")
	pins := flag.String("pins", "", "the go.mod that pins the binaries, for the README")
	keep := flag.Bool("keep", false, "keep the cluster's temp root")
	flag.Parse()
	if *etcdBin == "" || *apiBin == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, harness.Binaries{Etcd: *etcdBin, APIServer: *apiBin}, *out, *versions, *pins, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "mksnapshot: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin harness.Binaries, out, versions, pins string, keep bool) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists", out)
	}
	root, err := os.MkdirTemp("", "mksnapshot-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(root)
	}
	c, err := harness.Layout(root, bin)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return errors.Join(err, c.Stop())
	}
	defer func() { _ = c.Stop() }() // the snapshot is taken; a stop error changes nothing
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	if err := uploadKubeadmConfig(ctx, cfg); err != nil {
		return err
	}
	w, err := harness.ApplyWorkload(ctx, cfg, harness.WorkloadOptions{SkipBigConfigMap: true})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	db := filepath.Join(out, "snapshot.db")
	rev, err := saveSnapshot(ctx, c, db)
	if err != nil {
		return err
	}
	ls, err := harness.CaptureAPI(ctx, cfg, fmt.Sprint(rev))
	if err != nil {
		return err
	}
	for _, l := range ls {
		if l.Err != nil {
			fmt.Fprintf(os.Stderr, "mksnapshot: %s not listed at revision %d: %v\n", l.Name, rev, l.Err)
		}
	}
	if err := harness.WriteAPI(filepath.Join(out, "api"), ls); err != nil {
		return err
	}
	enc, err := os.ReadFile(c.EncConfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "encryption-config.yaml"), enc, 0o644); err != nil {
		return err
	}
	readme := fmt.Sprintf(`# A real snapshot written by kube-apiserver

Made on %s by scripts/mk-old-snapshots.sh: %s, both built from their Go modules
(%s pins them), run by e2e/cmd/mksnapshot with TLS on loopback and Secrets
encrypted at rest with aescbc (`+"`encryption-config.yaml`"+` holds the key). ConfigMap
kube-system/kubeadm-config holds a ClusterConfiguration naming the server's version, as `+"`kubeadm init`"+`
uploads it. The workload is
e2e/harness/workload.go applied through client-go (%d writes: Deployments updated three times,
StatefulSets, DaemonSets, CronJobs, Jobs, Services, ConfigMaps, Secrets of five types, RBAC,
NetworkPolicies, Ingresses, PDBs, HPAs, PVs, PVCs, Leases, Events of both APIs, Nodes, Pods,
EndpointSlices, webhooks, CRDs with namespaced and cluster-scoped custom resources), ConfigMap
%s created and deleted (still in the file's history). `+"`snapshot.db`"+` was saved through the
Maintenance API as etcdctl does (SHA-256 trailer included; revision %d). `+"`api/<resource>.json`"+` is
what the API listed for every resource with objects at exactly that revision
(resourceVersionMatch=Exact, preferred versions, managedFields included, as
`+"`kubectl get -o json --show-managed-fields`"+` shows them).
No controller-manager ran, so there are no ReplicaSets or Endpoints.
`, time.Now().UTC().Format("2006-01-02"), versions, pins, w.Writes, w.Deleted, rev)
	if err := os.WriteFile(filepath.Join(out, "README.md"), []byte(readme), 0o644); err != nil {
		return err
	}
	fmt.Printf("mksnapshot: %s revision %d, %d writes\n", db, rev, w.Writes)
	return nil
}

// uploadKubeadmConfig writes kube-system/kubeadm-config as kubeadm's
// upload-config phase does: a ClusterConfiguration whose kubernetesVersion
// is the version the API server reports.
func uploadKubeadmConfig(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	// kubeadm v1.30 writes v1beta3, v1.31 and later v1beta4; the fields
	// shown are in both
	api := "kubeadm.k8s.io/v1beta4"
	if minor, _ := strconv.Atoi(strings.TrimSuffix(v.Minor, "+")); v.Major == "1" && minor < 31 {
		api = "kubeadm.k8s.io/v1beta3"
	}
	cc := fmt.Sprintf(`apiServer: {}
apiVersion: %s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: %s
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
scheduler: {}
`, api, v.GitVersion)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{"ClusterConfiguration": cc},
	}
	if _, err := cs.CoreV1().ConfigMaps(metav1.NamespaceSystem).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("upload kubeadm-config: %w", err)
	}
	return nil
}

// saveSnapshot saves a snapshot whose revision is known: the revision is
// read before and after, and the save is retried until no write raced it.
func saveSnapshot(ctx context.Context, c *harness.Cluster, path string) (int64, error) {
	tlsInfo := transport.TLSInfo{
		CertFile:      c.PKI("etcd/healthcheck-client.crt"),
		KeyFile:       c.PKI("etcd/healthcheck-client.key"),
		TrustedCAFile: c.PKI("etcd/ca.crt"),
	}
	tc, err := tlsInfo.ClientConfig()
	if err != nil {
		return 0, err
	}
	cfg := clientv3.Config{Endpoints: []string{c.EtcdURL}, TLS: tc, DialTimeout: 5 * time.Second}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	revision := func() (int64, error) {
		st, err := cli.Status(ctx, c.EtcdURL)
		if err != nil {
			return 0, err
		}
		return st.Header.Revision, nil
	}
	for range 20 {
		r1, err := revision()
		if err != nil {
			return 0, err
		}
		os.Remove(path)
		if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, path); err != nil {
			return 0, fmt.Errorf("save snapshot: %w", err)
		}
		r2, err := revision()
		if err != nil {
			return 0, err
		}
		if r1 == r2 {
			return r1, nil
		}
		time.Sleep(time.Second)
	}
	return 0, fmt.Errorf("etcd kept writing during every snapshot")
}
