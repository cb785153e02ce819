// Command mksnapshot runs a real etcd and kube-apiserver (binaries given by
// flags), applies the e2e workload, saves an etcd snapshot over TLS the way
// `etcdctl snapshot save` does, and writes what the API served at the
// snapshot's revision next to it:
//
//	OUT/snapshot.db  OUT/encryption-config.yaml  OUT/api/<resource>.json  OUT/README.md
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
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
)

func main() {
	etcdBin := flag.String("etcd", "", "etcd binary")
	apiBin := flag.String("kube-apiserver", "", "kube-apiserver binary")
	out := flag.String("out", "", "output directory (must not exist)")
	versions := flag.String("versions", "", "what built the binaries, for the README")
	keep := flag.Bool("keep", false, "keep the cluster's temp root")
	flag.Parse()
	if *etcdBin == "" || *apiBin == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, harness.Binaries{Etcd: *etcdBin, APIServer: *apiBin}, *out, *versions, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "mksnapshot: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin harness.Binaries, out, versions string, keep bool) error {
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
(e2e/mksnapshot/go.mod pins them), run by e2e/cmd/mksnapshot with TLS on loopback and Secrets
encrypted at rest with aescbc (`+"`encryption-config.yaml`"+` holds the key). The workload is
e2e/harness/workload.go applied through client-go (%d writes: Deployments updated three times,
StatefulSets, DaemonSets, CronJobs, Jobs, Services, ConfigMaps, Secrets of five types, RBAC,
NetworkPolicies, Ingresses, PDBs, HPAs, PVs, PVCs, Leases, Events of both APIs, Nodes, Pods,
EndpointSlices, webhooks, CRDs with namespaced and cluster-scoped custom resources), ConfigMap
%s created and deleted (still in the file's history). `+"`snapshot.db`"+` was saved through the
Maintenance API as etcdctl does (SHA-256 trailer included; revision %d). `+"`api/<resource>.json`"+` is
what the API listed for every resource with objects at exactly that revision
(resourceVersionMatch=Exact, preferred versions, managedFields removed, as kubectl shows them).
No controller-manager ran, so there are no ReplicaSets or Endpoints.
`, time.Now().UTC().Format("2006-01-02"), versions, w.Writes, w.Deleted, rev)
	if err := os.WriteFile(filepath.Join(out, "README.md"), []byte(readme), 0o644); err != nil {
		return err
	}
	fmt.Printf("mksnapshot: %s revision %d, %d writes\n", db, rev, w.Writes)
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
