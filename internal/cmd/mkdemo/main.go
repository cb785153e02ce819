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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

func main() {
	out := flag.String("out", "", "output directory (must not exist or be empty)")
	fixture := flag.Bool("fixture", false, "write the committed fixture under testdata/generated")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *fixture); err != nil {
		fmt.Fprintf(os.Stderr, "mkdemo: error: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, fixture bool) error {
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

	srv, err := etcdtest.StartDir(dataDir)
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
