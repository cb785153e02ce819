package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// readyTimeout bounds how long Start waits for the member to become ready.
const readyTimeout = 60 * time.Second

// Server is a running embedded etcd member and a client connected to it.
type Server struct {
	// Client is connected to Endpoint; Stop closes it.
	Client *clientv3.Client
	// Endpoint is the client URL, e.g. "http://127.0.0.1:41233" or
	// "https://..." with [WithTLS].
	Endpoint string
	// DataDir is etcd's data directory (member/snap/db lives under it).
	DataDir string
	// PKIDir is the kubeadm-style certificate directory (<dir>/pki/etcd) when
	// the server was started [WithTLS], else "".
	PKIDir string
	// TLS is the client TLS configuration (client certificate
	// apiserver-etcd-client) when the server was started [WithTLS], else nil.
	TLS *tls.Config

	etcd     *embed.Etcd
	stopOnce sync.Once
	quiet    func() // silences the test logger before shutdown noise

}

type config struct {
	tls          bool
	maxTxnOps    uint
	quotaBytes   int64
	logger       *zap.Logger
	maxReqBytes  uint
	unsafeNoSync bool
	name         string
	peerURLs     []url.URL
}

// Option configures [Start] and [StartDir].
type Option func(*config)

// WithTLS makes the client port require TLS and a client certificate signed
// by a freshly generated CA, written to <dir>/pki/etcd.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithMaxTxnOps sets the maximum number of operations in one transaction
// (etcd default 128); bulk loaders raise it.
func WithMaxTxnOps(n uint) Option { return func(c *config) { c.maxTxnOps = n } }

// WithQuotaBytes sets the backend quota (etcd default 2 GiB).
func WithQuotaBytes(n int64) Option { return func(c *config) { c.quotaBytes = n } }

// WithMaxRequestBytes sets the largest request etcd accepts (default 1.5 MiB).
func WithMaxRequestBytes(n uint) Option { return func(c *config) { c.maxReqBytes = n } }

// WithUnsafeNoFsync disables fsync inside etcd; only for throwaway bulk
// generation where speed matters more than crash safety.
func WithUnsafeNoFsync() Option { return func(c *config) { c.unsafeNoSync = true } }

// WithMember sets the member name and its peer URLs (listened on and
// advertised), for reopening a data dir restored for that member: etcd
// refuses a data dir whose member does not match its --name. peerURLs must
// be free loopback addresses.
func WithMember(name string, peerURLs ...url.URL) Option {
	return func(c *config) { c.name, c.peerURLs = name, peerURLs }
}

// WithLogger replaces the default logger (a no-op logger).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.logger = l } }

// Start starts an etcd member in t.TempDir() and registers Stop with
// t.Cleanup. It fails the test if the member does not become ready.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	// A logger that reports only errors keeps test output readable but still
	// shows why etcd failed to start.
	w := &testWriter{t: t}
	// Cleanups run last-in first-out: this one runs after Stop, so nothing
	// calls t.Logf once the test has completed.
	t.Cleanup(func() { w.done.Store(true) })
	all := append([]Option{WithLogger(testLogger(w))}, opts...)
	s, err := StartDir(t.TempDir(), all...)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	// etcd logs "use of closed network connection" errors while it shuts
	// down; they are not failures.
	s.quiet = func() { w.done.Store(true) }
	t.Cleanup(s.Stop)
	return s
}

// StartDir starts an etcd member whose data dir is dir (created 0700 if
// missing); an existing data dir is reopened. Callers must call
// [Server.Stop].
func StartDir(dir string, opts ...Option) (*Server, error) {
	c := config{logger: zap.NewNop()}
	for _, o := range opts {
		o(&c)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %q: %w", dir, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(c.logger)
	cfg.LogLevel = "error"
	if c.maxTxnOps > 0 {
		cfg.MaxTxnOps = c.maxTxnOps
	}
	if c.quotaBytes > 0 {
		cfg.QuotaBackendBytes = c.quotaBytes
	}
	if c.maxReqBytes > 0 {
		cfg.MaxRequestBytes = c.maxReqBytes
	}
	cfg.UnsafeNoFsync = c.unsafeNoSync

	scheme := "http"
	var pkiDir string
	var clientTLS *tls.Config
	if c.tls {
		scheme = "https"
		pkiDir = filepath.Join(dir, "pki", "etcd")
		if err := writePKI(pkiDir); err != nil {
			return nil, err
		}
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       filepath.Join(pkiDir, "server.crt"),
			KeyFile:        filepath.Join(pkiDir, "server.key"),
			TrustedCAFile:  filepath.Join(pkiDir, "ca.crt"),
			ClientCertAuth: true,
		}
		ti := transport.TLSInfo{
			CertFile:      filepath.Join(pkiDir, "apiserver-etcd-client.crt"),
			KeyFile:       filepath.Join(pkiDir, "apiserver-etcd-client.key"),
			TrustedCAFile: filepath.Join(pkiDir, "ca.crt"),
		}
		var err error
		if clientTLS, err = ti.ClientConfig(); err != nil {
			return nil, fmt.Errorf("client tls config: %w", err)
		}
	}
	// Port 0: the kernel picks a free port, so parallel servers never clash.
	// A single-member cluster never dials its own peer URL, so the advertised
	// peer URL only has to be well formed.
	curl := url.URL{Scheme: scheme, Host: "127.0.0.1:0"}
	purl := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	if c.name != "" {
		cfg.Name = c.name
		cfg.ListenPeerUrls = c.peerURLs
		cfg.AdvertisePeerUrls = c.peerURLs
	}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %q: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd in %q failed before ready: %w", dir, err)
	case <-time.After(readyTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcd in %q not ready after %s", dir, readyTimeout)
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, errors.New("etcd started without a client listener")
	}
	endpoint := scheme + "://" + e.Clients[0].Addr().String()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 10 * time.Second,
		TLS:         clientTLS,
		Logger:      zap.NewNop(),
		// Bulk loaders send big transactions; the client default (2 MiB) is
		// above etcd's 1.5 MiB request limit anyway.
		MaxCallSendMsgSize: 64 << 20,
		MaxCallRecvMsgSize: 0,
	})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("connect to etcd at %s: %w", endpoint, err)
	}
	return &Server{Client: cli, Endpoint: endpoint, DataDir: dir, PKIDir: pkiDir, TLS: clientTLS, etcd: e}, nil
}

// Stop closes the client and the etcd member and waits for it to exit. It is
// safe to call more than once and from t.Cleanup. After Stop the data dir
// can be read offline.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.quiet != nil {
			s.quiet()
		}
		if s.Client != nil {
			_ = s.Client.Close()
		}
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
	})
}

// DBPath is the path of the member's bbolt file, member/snap/db.
func (s *Server) DBPath() string { return filepath.Join(s.DataDir, "member", "snap", "db") }

// Revision returns the current store revision, read with a serializable Get.
func (s *Server) Revision(ctx context.Context) (int64, error) {
	resp, err := s.Client.Get(ctx, "\x00", clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return resp.Header.Revision, nil
}

func testLogger(w *testWriter) *zap.Logger {
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.ErrorLevel)
	return zap.New(core)
}

// testWriter forwards etcd's error logs to the test log until the test's
// cleanups have run, then drops them (etcd goroutines may still log).
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Logf("etcd: %s", p)
	}
	return len(p), nil
}
