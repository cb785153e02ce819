package kms_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/kmstest"
	"github.com/etcdsafe/etcdsafe/kms"
)

// sockDir is a short private dir: unix socket paths are limited to ~108
// bytes, which t.TempDir under a long test name can exceed.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func startPlugin(t *testing.T, socket string, o kmstest.Options) *kmstest.Plugin {
	t.Helper()
	p, err := kmstest.Start(socket, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func secret(ns, name, val string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":%q,"namespace":%q},"data":{"v":%q}}`, name, ns, val)
}

func config(provider, endpoint string) []byte {
	return fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: %s
          endpoint: %s
      - identity: {}
`, provider, endpoint)
}

type stored struct{ key, val []byte }

// write encrypts n Secrets per data key, as kube-apiserver does, with one
// writer per data key (seed or not).
func write(t *testing.T, p *kmstest.Plugin, provider string, n int, seeds ...bool) []stored {
	t.Helper()
	ctx := context.Background()
	var out []stored
	for i, seed := range seeds {
		w, err := kmstest.NewWriter(ctx, p.Service(), provider, seed)
		if err != nil {
			t.Fatal(err)
		}
		for j := range n {
			key := fmt.Sprintf("/registry/secrets/ns%d/s%d", i, j)
			v, err := w.Encrypt(ctx, key, secret(fmt.Sprintf("ns%d", i), fmt.Sprintf("s%d", j), "c2VjcmV0"))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, stored{[]byte(key), v})
		}
	}
	return out
}

// TestDecryptKMSv2: values of two data keys (an AES-GCM key and an HKDF
// seed) decrypt through the config's endpoint, concurrently, with one
// Decrypt call per data key.
func TestDecryptKMSv2(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(sockDir(t), "p.sock")
	p := startPlugin(t, sock, kmstest.Options{Secret: "right"})
	vals := write(t, p, "vault", 20, false, true)

	dcr, err := decode.ParseEncryptionConfig(config("vault", "unix://"+sock))
	if err != nil {
		t.Fatal(err)
	}
	c := kms.NewConnector(kms.Options{})
	t.Cleanup(func() { _ = c.Close() })
	dec := decode.NewDecoder(dcr.WithKMS(c))
	var wg sync.WaitGroup
	errs := make([]error, len(vals))
	for i, v := range vals {
		wg.Go(func() {
			obj, err := dec.Decode(v.key, v.val)
			if err == nil && (obj.Object.GetKind() != "Secret" || obj.Encryption.String() != "kms:v2:vault") {
				err = fmt.Errorf("got %s %s", obj.Object.GetKind(), obj.Encryption)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := p.DecryptCalls(); got != 2 {
		t.Errorf("%d Decrypt calls for 2 data keys and %d values, want 2", got, len(vals))
	}
	// a second source (another decoder, its own config) through the same
	// Connector: the data keys are known, no call
	dcr2, err := decode.ParseEncryptionConfig(config("vault", "unix://"+sock))
	if err != nil {
		t.Fatal(err)
	}
	dec2 := decode.NewDecoder(dcr2.WithKMS(c))
	for _, v := range vals {
		if _, err := dec2.Decode(v.key, v.val); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.DecryptCalls(); got != 2 {
		t.Errorf("%d Decrypt calls after a second source, want still 2", got)
	}
	// the etcd key is GCM's additional data: a value moved to another key
	// does not open
	if _, err := dec.Decode([]byte("/registry/secrets/x/moved"), vals[0].val); !errors.Is(err, decode.ErrDecrypt) {
		t.Errorf("moved value: %v, want ErrDecrypt", err)
	}
}

// TestKMSErrors: every way a KMS value can fail, with the error class
// cmd maps to exit 4, the endpoint named, no key material.
func TestKMSErrors(t *testing.T) {
	t.Parallel()
	dir := sockDir(t)
	right := startPlugin(t, filepath.Join(dir, "right.sock"), kmstest.Options{Secret: "right"})
	wrong := startPlugin(t, filepath.Join(dir, "wrong.sock"), kmstest.Options{Secret: "wrong"})
	v := write(t, right, "vault", 1, false)[0]
	missing := filepath.Join(dir, "missing.sock")

	cases := []struct {
		name     string
		config   []byte // nil: none
		socket   string // --kms-socket
		noKMS    bool   // no connector at all
		val      []byte
		want     error
		contains []string
	}{
		{name: "override", config: config("vault", "unix://"+missing), socket: right.Socket, val: v.val},
		{name: "socket only, no config", socket: "unix://" + right.Socket, val: v.val},
		{name: "no connector", config: config("vault", right.Endpoint), noKMS: true, val: v.val, want: decode.ErrKMS, contains: []string{`provider "vault"`}},
		{name: "no endpoint", config: config("other", right.Endpoint), val: v.val, want: decode.ErrKMS, contains: []string{`KMS v2 provider "vault"`, "no endpoint"}},
		{name: "socket missing", config: config("vault", "unix://"+missing), val: v.val, want: decode.ErrKMS, contains: []string{"unreachable", missing}},
		{name: "wrong key", socket: wrong.Socket, val: v.val, want: decode.ErrDecrypt, contains: []string{"refused", wrong.Endpoint, `"vault"`}},
		{name: "v1", socket: right.Socket, val: append([]byte("k8s:enc:kms:v1:vault:"), v.val[len("k8s:enc:kms:v2:vault:"):]...), want: decode.ErrKMS, contains: []string{"KMS v1", "does not support"}},
		{name: "garbage", socket: right.Socket, val: []byte("k8s:enc:kms:v2:vault:\x0a\x05abc"), want: decode.ErrDecrypt},
		{name: "not unix", socket: "tcp://127.0.0.1:1", val: v.val, want: kms.ErrEndpoint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dcr *decode.Decrypter
			if tc.config != nil {
				var err error
				if dcr, err = decode.ParseEncryptionConfig(tc.config); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.noKMS {
				c := kms.NewConnector(kms.Options{Socket: tc.socket})
				t.Cleanup(func() { _ = c.Close() })
				dcr = dcr.WithKMS(c)
			}
			obj, err := decode.NewDecoder(dcr).Decode(v.key, tc.val)
			if tc.want == nil {
				if err != nil || obj.Object.GetName() != "s0" {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error holds the value: %v", err)
			}
		})
	}
}

// TestHungPlugin: a socket that accepts and never answers costs one
// timeout for the whole run, not one per value.
func TestHungPlugin(t *testing.T) {
	t.Parallel()
	dir := sockDir(t)
	right := startPlugin(t, filepath.Join(dir, "right.sock"), kmstest.Options{Secret: "right"})
	vals := write(t, right, "vault", 5, false)
	hung := filepath.Join(dir, "hung.sock")
	ln, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	const timeout = 300 * time.Millisecond
	c := kms.NewConnector(kms.Options{Socket: hung, Timeout: timeout})
	t.Cleanup(func() { _ = c.Close() })
	dec := decode.NewDecoder((*decode.Decrypter)(nil).WithKMS(c))
	start := time.Now()
	for _, v := range vals {
		if _, err := dec.Decode(v.key, v.val); !errors.Is(err, decode.ErrKMS) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err %v, want an unreachable plugin", err)
		}
	}
	if d := time.Since(start); d < timeout || d > 3*timeout {
		t.Errorf("%d values took %v with a %v timeout: want one timeout in all", len(vals), d, timeout)
	}
}
