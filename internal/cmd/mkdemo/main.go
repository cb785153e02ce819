// Command mkdemo builds a demo etcd snapshot as kube-apiserver would have
// written it.
//
//	go run ./internal/cmd/mkdemo -out DIR
//
// starts an embedded etcd in DIR/etcd-data, fills it with
// internal/demodata, saves DIR/snapshot.db through the Maintenance API,
// writes DIR/encryption-config.yaml and stops etcd cleanly, so DIR/etcd-data
// is a valid data dir to read offline.
//
//	go run ./internal/cmd/mkdemo -fixture
//
// regenerates the committed fixture testdata/generated/demo.db and
// testdata/generated/encryption-config.yaml (run from the module root).
// Values are byte-identical across runs; etcd's own bookkeeping (member
// and cluster IDs, bbolt page layout) is not.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"

	clientv3 "go.etcd.io/etcd/client/v3"
	"path/filepath"
	"syscall"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

func main() {
	out := flag.String("out", "", "output directory (must not exist or be empty)")
	fixture := flag.Bool("fixture", false, "write the committed fixture under testdata/generated")
	checkRestored := flag.String("check-restored", "", "start etcd on this restored data dir (member from -name/-peer-url), show that the cluster is back and safe for Kubernetes, stop")
	name := flag.String("name", "etcdtest", "with -check-restored: the member name")
	peerURL := flag.String("peer-url", "", "with -check-restored: the member's peer URL")
	serve := flag.Bool("serve", false, "with -out: serve etcd over TLS with client-cert auth, as on a kubeadm master, lay out DIR/kubernetes, write DIR/endpoint, and run until SIGTERM")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *checkRestored != "" {
		if err := checkRestore(ctx, *checkRestored, *name, *peerURL); err != nil {
			fmt.Fprintf(os.Stderr, "mkdemo: error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *serve && *out == "" {
		fmt.Fprintln(os.Stderr, "mkdemo: error: -serve needs -out")
		os.Exit(2)
	}
	if err := run(ctx, *out, *fixture, *serve); err != nil {
		fmt.Fprintf(os.Stderr, "mkdemo: error: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, fixture, serve bool) error {
	if fixture == (out != "") {
		return errors.New("give exactly one of -out DIR or -fixture")
	}
	var dataDir, snapPath, cfgPath string
	var cleanup func()
	if fixture {
		gen := filepath.Join("testdata", "generated")
		if err := os.MkdirAll(gen, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", gen, err)
		}
		tmp, err := os.MkdirTemp("", "mkdemo-")
		if err != nil {
			return fmt.Errorf("create temp dir: %w", err)
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		dataDir = filepath.Join(tmp, "etcd-data")
		snapPath = filepath.Join(gen, "demo.db")
		cfgPath = filepath.Join(gen, "encryption-config.yaml")
		for _, p := range []string{snapPath, cfgPath} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove old fixture: %w", err)
			}
		}
	} else {
		if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
			return fmt.Errorf("output directory %q is not empty", out)
		}
		if err := os.MkdirAll(out, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", out, err)
		}
		dataDir = filepath.Join(out, "etcd-data")
		snapPath = filepath.Join(out, "snapshot.db")
		cfgPath = filepath.Join(out, "encryption-config.yaml")
	}
	if cleanup != nil {
		defer cleanup()
	}

	var opts []etcdtest.Option
	if serve {
		opts = append(opts, etcdtest.WithTLS())
	}
	srv, err := etcdtest.StartDir(dataDir, opts...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	w, err := kubestore.New(srv.Client, demodata.WriterOptions())
	if err != nil {
		return err
	}
	sum, err := demodata.Fill(ctx, srv.Client, w)
	if err != nil {
		return err
	}
	info, err := snapshot.Save(ctx, srv.Client, snapPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, w.EncryptionConfigYAML(), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", cfgPath, err)
	}
	if serve {
		// before DIR/endpoint tells the demo it may signal
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		peer, err := freePeerURL()
		if err != nil {
			return err
		}
		if err := layOutKubeDir(filepath.Join(out, "kubernetes"), srv.PKIDir, w.EncryptionConfigYAML(), srv.Endpoint, peer); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "endpoint"), []byte(srv.Endpoint+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Printf("serving:    %s (TLS, client certificates in %s/kubernetes/pki/etcd) until SIGTERM; SIGUSR1 writes the next day\n", srv.Endpoint, out)
		if err := serveDays(ctx, w, out, usr1); err != nil {
			return err
		}
	}
	srv.Stop()
	fmt.Printf("objects:    %d live, 1 deleted (%s), %s updated 3 times\n", len(sum.Objects), sum.DeletedKey, sum.UpdatedKey)
	fmt.Printf("revision:   %d (compacted at %d)\n", sum.Revision, sum.CompactRevision)
	fmt.Printf("snapshot:   %s (%d bytes, sha256 %s, etcd %s)\n", snapPath, info.Size, info.SHA256, info.EtcdVersion)
	fmt.Printf("encryption: %s\n", cfgPath)
	if !fixture {
		fmt.Printf("data dir:   %s\n", dataDir)
	}
	return nil
}

// serveDays waits for SIGTERM; each SIGUSR1 applies [demodata.NextDay]
// and then writes DIR/day-N.json (N from 2) with what changed, after the
// line it prints about it.
func serveDays(ctx context.Context, w *kubestore.Writer, out string, usr1 <-chan os.Signal) error {
	for n := 2; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-usr1:
		}
		day, err := demodata.NextDay(ctx, w, 1500)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(day, "", "  ")
		if err != nil {
			return err
		}
		fmt.Printf("day %d:      %d changed, %d deleted, %d added, %s renewed %d times; revision %d\n",
			n, len(day.Changed), len(day.Deleted), len(day.Added), day.ChurnedKey, day.Renewals, day.Revision)
		if err := fsx.WriteFileAtomic(filepath.Join(out, fmt.Sprintf("day-%d.json", n)), b, 0o600); err != nil {
			return err
		}
	}
}

// layOutKubeDir writes a small kubeadm-shaped /etc/kubernetes: the etcd PKI,
// static pod manifests naming the encryption config, the config itself.
func layOutKubeDir(root, pkiDir string, encConfig []byte, endpoint, peerURL string) error {
	for _, d := range []string{"pki/etcd", "manifests"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(pkiDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(pkiDir, e.Name()))
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(e.Name()) == ".key" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(root, "pki", "etcd", e.Name()), b, mode); err != nil {
			return err
		}
	}
	files := map[string]string{
		"encryption-config.yaml": string(encConfig),
		"manifests/kube-apiserver.yaml": `apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.37.2
    command:
    - kube-apiserver
    - --etcd-servers=` + endpoint + `
    - --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    - --encryption-provider-config=/etc/kubernetes/encryption-config.yaml
`,
		"manifests/etcd.yaml": `apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.7.3-0
    command:
    - etcd
    - --name=etcdtest
    - --data-dir=/var/lib/etcd
    - --listen-client-urls=` + endpoint + `
    - --advertise-client-urls=` + endpoint + `
    - --initial-advertise-peer-urls=` + peerURL + `
    - --listen-peer-urls=` + peerURL + `
    - --initial-cluster=etcdtest=` + peerURL + `
    - --initial-cluster-token=demo-cluster
    - --quota-backend-bytes=8589934592
`,
	}
	for rel, content := range files {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return os.Symlink("pki/etcd/ca.crt", filepath.Join(root, "etcd-ca.crt"))
}

// freePeerURL picks a free loopback port for the demo member's peer URL,
// written into its static pod manifest (a restore takes membership from it).
func freePeerURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}

// checkRestore starts etcd on a restored data dir and shows what matters
// after a restore: the objects are there, the revision jumped past anything
// a client saw, old revisions read as compacted, new writes go above.
func checkRestore(ctx context.Context, dir, name, peer string) error {
	u, err := url.Parse(peer)
	if err != nil || peer == "" {
		return fmt.Errorf("-peer-url %q: %w", peer, err)
	}
	srv, err := etcdtest.StartDir(dir, etcdtest.WithMember(name, *u))
	if err != nil {
		return err
	}
	defer srv.Stop()
	resp, err := srv.Client.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	fmt.Printf("etcd started on the restored data dir: %d keys under /registry/, revision %d\n", resp.Count, resp.Header.Revision)
	members, err := srv.Client.MemberList(ctx)
	if err != nil {
		return err
	}
	for _, m := range members.Members {
		fmt.Printf("member: %s %x peers=%v\n", m.Name, m.ID, m.PeerURLs)
	}
	dep, err := srv.Client.Get(ctx, "/registry/deployments/payments/api")
	if err != nil || len(dep.Kvs) != 1 {
		return fmt.Errorf("deployment payments/api not found after restore: %w", err)
	}
	fmt.Printf("/registry/deployments/payments/api is back (mod revision %d)\n", dep.Kvs[0].ModRevision)
	if _, err := srv.Client.Get(ctx, "/registry/deployments/payments/api", clientv3.WithRev(28)); err != nil {
		fmt.Printf("a read at revision 28 (what informers last saw): %v -> clients relist\n", err)
	} else {
		return errors.New("a read at an old revision succeeded: the restore did not mark it compacted")
	}
	put, err := srv.Client.Put(ctx, "/etcdsafe-demo/after-restore", "x")
	if err != nil {
		return err
	}
	fmt.Printf("a new write gets revision %d, above every revision clients saw before the disaster\n", put.Header.Revision)
	return nil
}
