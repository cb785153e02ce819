package snapshot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// clientTLS loads a client configuration from PEM files; cert "" sends no
// client certificate.
func clientTLS(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", ca)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// forward listens on host:0 and copies every connection to and from
// target: the same server reached by another address.
func forward(t *testing.T, host, target string) string {
	t.Helper()
	addr, stop, err := etcdtest.Forward(host, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silent accepts connections and never answers.
func silent(t *testing.T) string {
	t.Helper()
	addr, stop, err := etcdtest.Silent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

func TestConnectCauses(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	sec := etcdtest.Start(t, etcdtest.WithTLS())
	plain := etcdtest.Start(t)
	other := filepath.Join(t.TempDir(), "other")
	if err := etcdtest.WritePKI(other); err != nil {
		t.Fatal(err)
	}
	pki := func(dir, name string) (string, string) {
		return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	goodCrt, goodKey := pki(sec.PKIDir, "healthcheck-client")
	otherCrt, otherKey := pki(other, "healthcheck-client")
	good := clientTLS(t, filepath.Join(sec.PKIDir, "ca.crt"), goodCrt, goodKey)
	secAddr := strings.TrimPrefix(sec.Endpoint, "https://")
	http1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(http1.Close)
	http1Addr := strings.TrimPrefix(http1.URL, "http://")

	cases := []struct {
		name     string
		endpoint string
		tls      *tls.Config
		want     Cause // CauseUnknown: connects
		inMsg    string
	}{
		{"ok", sec.Endpoint, good, CauseUnknown, ""},
		{"ok plain", plain.Endpoint, nil, CauseUnknown, ""},
		{"wrong CA", sec.Endpoint, clientTLS(t, filepath.Join(other, "ca.crt"), goodCrt, goodKey), CauseUnknownAuthority, "signed by an unknown authority"},
		{"client cert of another CA", sec.Endpoint, clientTLS(t, filepath.Join(sec.PKIDir, "ca.crt"), otherCrt, otherKey), CauseClientCertRejected, "rejected our client certificate"},
		{"no client cert", sec.Endpoint, clientTLS(t, filepath.Join(sec.PKIDir, "ca.crt"), "", ""), CauseClientCertRequired, "requires a client certificate"},
		{"SAN mismatch", "https://" + forward(t, "127.0.0.2", secAddr), good, CauseHostname, "does not name this host"},
		{"localhost is in the SAN", "https://" + forward(t, "localhost", secAddr), good, CauseUnknown, ""},
		{"http to TLS", "http://" + secAddr, nil, CauseTLSServer, "speaks TLS"},
		{"https to plain etcd", strings.Replace(plain.Endpoint, "http://", "https://", 1), good, CausePlainServer, "speaks plain HTTP"},
		{"closed port", "https://" + closedPort(t), good, CauseRefused, "connection refused"},
		{"HTTP/1 server", http1.URL, nil, CauseNotEtcd, `answered "HTTP/1.1`},
		{"HTTP/1 server with https", "https://" + http1Addr, good, CauseNotEtcd, "does not speak etcd's gRPC"},
		{"silent port", "https://" + silent(t), good, CauseTimeout, "no answer within 1s"},
		{"DNS", "https://etcd.invalid:2379", good, CauseDNS, "does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			t0 := time.Now()
			c, st, err := Connect(ctx, ConnectOptions{Endpoint: tc.endpoint, TLS: tc.tls, DialTimeout: time.Second, CommandTimeout: time.Second})
			if tc.want == CauseUnknown {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				defer func() { _ = c.Close() }()
				if st.Header.GetMemberId() == 0 {
					t.Fatal("no member id in the status")
				}
				return
			}
			var de *DialError
			if !errors.As(err, &de) {
				t.Fatalf("Connect: %v, want a *DialError", err)
			}
			if de.Cause != tc.want || de.Endpoint != tc.endpoint {
				t.Fatalf("cause %v at %s, want %v: %v", de.Cause, de.Endpoint, tc.want, err)
			}
			msg := err.Error()
			t.Logf("%v: %s", time.Since(t0).Round(time.Millisecond), msg)
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.inMsg) || !strings.HasPrefix(msg, tc.endpoint+": ") {
				t.Fatalf("message %q: want one line starting with the endpoint, with %q", msg, tc.inMsg)
			}
			// A failure that cannot heal is named at once; the others wait
			// the dial timeout (the client's, then the probe's).
			d := time.Since(t0)
			if !tc.want.mayHeal() && d >= time.Second || d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestProbeEndpoints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ep   string
		want string
	}{
		{"ftp://h:1", "scheme"},
		{"https://h", "no port"},
		{"http://%zz", "bad endpoint"},
	} {
		de := Probe(context.Background(), tc.ep, nil)
		if de == nil || !strings.Contains(de.Error(), tc.want) {
			t.Errorf("Probe(%q) = %v, want %q", tc.ep, de, tc.want)
		}
	}
	if Probe(context.Background(), "unix:///nonexistent/etcd.sock", nil).Cause != CauseRefused {
		t.Error("a missing unix socket is not refused")
	}
}
