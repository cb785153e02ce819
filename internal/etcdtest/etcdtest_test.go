package etcdtest

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestStart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	tests := []struct {
		name string
		opts []Option
	}{
		{name: "plain"},
		{name: "tls", opts: []Option{WithTLS(), WithMaxTxnOps(1000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, tc.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := s.Client.Put(ctx, "/registry/k", "v"); err != nil {
				t.Fatalf("put: %v", err)
			}
			resp, err := s.Client.Get(ctx, "/registry/k")
			if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
				t.Fatalf("get: %v %v", resp, err)
			}
			rev, err := s.Revision(ctx)
			if err != nil || rev != resp.Header.Revision {
				t.Fatalf("revision = %d, %v; want %d", rev, err, resp.Header.Revision)
			}
			s.Stop()
			s.Stop() // idempotent
			// The data dir is readable offline once etcd has exited; a held
			// flock would make this open time out.
			db, err := bolt.Open(s.DBPath(), 0o400, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatalf("open db offline: %v", err)
			}
			defer db.Close()
			if err := db.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("key")) == nil {
					t.Error("no key bucket")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTLSRequiresClientCert(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	t.Parallel()
	s := Start(t, WithTLS())
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "healthcheck-client.crt", "healthcheck-client.key", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"} {
		if _, err := os.Stat(filepath.Join(s.PKIDir, f)); err != nil {
			t.Errorf("kubeadm layout: %v", err)
		}
	}
	// Same CA, no client certificate: the handshake must be refused.
	noCert := &tls.Config{RootCAs: s.TLS.RootCAs, MinVersion: tls.VersionTLS12}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, TLS: noCert, DialTimeout: 2 * time.Second})
	if err != nil {
		return // refused at dial: fine
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Get(ctx, "x"); err == nil {
		t.Fatal("get without a client certificate succeeded")
	}
}
