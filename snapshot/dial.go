package snapshot

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Cause is what [Probe] found wrong with an etcd endpoint.
type Cause int

// The causes of a failed connection, each one line in [DialError.Error].
const (
	// CauseUnknown: the probe found nothing wrong; the client's own
	// error stands.
	CauseUnknown Cause = iota
	// CauseDNS: the endpoint's host name does not resolve.
	CauseDNS
	// CauseRefused: nothing listens on the port (wrong port, or etcd down).
	CauseRefused
	// CauseTimeout: no connection, or no answer, within the dial timeout.
	CauseTimeout
	// CauseUnknownAuthority: the server's certificate is not signed by
	// the CA we trust (the wrong CA bundle).
	CauseUnknownAuthority
	// CauseHostname: the server's certificate does not name the host the
	// endpoint dials (its subject alternative names).
	CauseHostname
	// CauseServerCert: the server's certificate is invalid otherwise
	// (expired, not yet valid, not for server use).
	CauseServerCert
	// CauseClientCertRejected: the server did not accept our client
	// certificate (signed by a CA it does not trust, expired, wrong use).
	CauseClientCertRejected
	// CauseClientCertRequired: the server requires a client certificate
	// and we sent none.
	CauseClientCertRequired
	// CausePlainServer: an https:// endpoint whose server speaks no TLS.
	CausePlainServer
	// CauseTLSServer: an http:// endpoint whose server speaks TLS.
	CauseTLSServer
	// CauseNotEtcd: the port answers, but not as etcd's client port (an
	// HTTP/1 server, etcd's peer port, another service).
	CauseNotEtcd
)

var causeText = map[Cause]string{
	CauseUnknown:            "cannot connect",
	CauseDNS:                "host name does not resolve",
	CauseRefused:            "connection refused: nothing listens there",
	CauseTimeout:            "no answer",
	CauseUnknownAuthority:   "the server's certificate is signed by an unknown authority",
	CauseHostname:           "the server's certificate does not name this host",
	CauseServerCert:         "the server's certificate is not valid",
	CauseClientCertRejected: "the server rejected our client certificate",
	CauseClientCertRequired: "the server requires a client certificate and none was sent",
	CausePlainServer:        "the server speaks plain HTTP, not TLS",
	CauseTLSServer:          "the server speaks TLS, not plain HTTP",
	CauseNotEtcd:            "the port does not speak etcd's gRPC (HTTP/2)",
}

func (c Cause) String() string {
	if s, ok := causeText[c]; ok {
		return s
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// mayHeal tells whether a retry may succeed without changing the
// endpoint or the certificates.
func (c Cause) mayHeal() bool {
	return c == CauseRefused || c == CauseTimeout || c == CauseDNS || c == CauseUnknown
}

// DialError is a failed connection to one etcd endpoint with the cause a
// probe of the endpoint found. Err is what the probe (or, for
// [CauseUnknown], the etcd client) saw.
type DialError struct {
	Endpoint string
	Cause    Cause
	Err      error
	// Timeout is the dial timeout [Connect] waited, for [CauseTimeout]'s
	// message (0: not known).
	Timeout time.Duration
}

func (e *DialError) Error() string {
	what := e.Cause.String()
	if e.Cause == CauseTimeout && e.Timeout > 0 {
		what = fmt.Sprintf("%s within %v", what, e.Timeout)
	}
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Endpoint, what)
	}
	return fmt.Sprintf("%s: %s (%s)", e.Endpoint, what, oneLine(e.Err))
}

func (e *DialError) Unwrap() error { return e.Err }

// oneLine is err's text on one line: gRPC and x509 errors may hold
// line breaks.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// ConnectOptions configures [Connect].
type ConnectOptions struct {
	// Endpoint is one client URL: https://HOST:PORT, http://HOST:PORT,
	// unix://PATH or unixs://PATH; a bare HOST:PORT is plain HTTP.
	Endpoint string
	// TLS is the client configuration for https:// and unixs:// (nil for
	// plain endpoints).
	TLS *tls.Config
	// DialTimeout bounds connecting (5s when 0).
	DialTimeout time.Duration
	// CommandTimeout bounds the status request that proves the member
	// answers (5s when 0); the snapshot stream itself is not bounded.
	CommandTimeout time.Duration
}

// Connect returns a client connected to one member and its status. When
// the client cannot connect, Connect probes the endpoint itself (TCP, TLS
// handshake with the same configuration, HTTP/2 preface) and returns a
// [*DialError] naming the cause; the caller closes the client.
func Connect(ctx context.Context, o ConnectOptions) (*clientv3.Client, *clientv3.StatusResponse, error) {
	dial, command := orDefault(o.DialTimeout), orDefault(o.CommandTimeout)
	cfg := clientv3.Config{Endpoints: []string{o.Endpoint}, DialTimeout: dial, Logger: zap.NewNop(), Context: ctx, TLS: o.TLS}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, nil, probeAfter(ctx, o, dial, err)
	}
	if err := waitReady(ctx, c.ActiveConnection(), o, dial); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, command)
	st, err := c.Status(sctx, o.Endpoint)
	cancel()
	if err != nil {
		_ = c.Close()
		return nil, nil, probeAfter(ctx, o, dial, err)
	}
	return c, st, nil
}

// waitReady waits up to dial for the client's connection to be ready (the
// client connects lazily, so the first request would otherwise wait the
// command timeout). When the connection fails, a probe tells why at once
// if the cause cannot heal by itself; otherwise the client retries until
// the timeout.
func waitReady(ctx context.Context, conn *grpc.ClientConn, o ConnectOptions, dial time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure:
			// A wrong certificate or scheme does not heal: say so now.
			// Nothing listening or no answer may (etcd restarting): the
			// client retries until the dial timeout.
			if de := Probe(dctx, o.Endpoint, o.TLS); de != nil && !de.Cause.mayHeal() {
				de.Timeout = dial
				return de
			}
		}
		if !conn.WaitForStateChange(dctx, s) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return probeAfter(ctx, o, dial, fmt.Errorf("connection %s after %v", strings.ToLower(s.String()), dial))
		}
	}
}

// probeAfter probes the endpoint after the client failed with err, and
// returns the probe's cause, or err when the probe finds none.
func probeAfter(ctx context.Context, o ConnectOptions, dial time.Duration, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	if de := Probe(pctx, o.Endpoint, o.TLS); de != nil {
		de.Timeout = dial
		return de
	}
	return &DialError{Endpoint: o.Endpoint, Cause: CauseUnknown, Err: err}
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Second
	}
	return d
}

// http2Preface is what an HTTP/2 client sends first (RFC 9113 3.4),
// followed by an empty SETTINGS frame; a gRPC server answers with its
// own SETTINGS frame.
var http2Preface = append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)

// probeTimeout bounds a probe when ctx has no deadline.
const probeTimeout = 5 * time.Second

// Probe connects to endpoint as the etcd client would (TCP or a unix
// socket, a TLS handshake with tlsCfg for https:// and unixs://, an
// HTTP/2 preface) and returns nil when a gRPC-capable server answers,
// else a [*DialError] with the cause. ctx's deadline bounds it (5s when
// it has none). Probe sends no request and no credential but the client
// certificate of tlsCfg.
func Probe(ctx context.Context, endpoint string, tlsCfg *tls.Config) *DialError {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	network, addr, host, secure, err := parseEndpoint(endpoint)
	if err != nil {
		return &DialError{Endpoint: endpoint, Cause: CauseUnknown, Err: err}
	}
	fail := func(c Cause, err error) *DialError { return &DialError{Endpoint: endpoint, Cause: c, Err: err} }
	conn, err := dialRaw(ctx, network, addr)
	if err != nil {
		return fail(netCause(err), err)
	}
	if !secure {
		return probePlain(ctx, conn, network, addr, host, fail)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	defer func() { _ = tc.Close() }()
	if err := tc.HandshakeContext(ctx); err != nil {
		if c := tlsCause(err); c != CauseUnknown {
			return fail(c, err)
		}
		// Not a TLS answer: find out what the port speaks instead.
		if c2, err2 := dialRaw(ctx, network, addr); err2 == nil {
			c, _ := preface(ctx, c2)
			_ = c2.Close()
			switch c {
			case CauseUnknown:
				return fail(CausePlainServer, fmt.Errorf("TLS handshake: %w; plain HTTP/2 is answered", err))
			case CauseNotEtcd:
				return fail(CauseNotEtcd, err)
			}
		}
		if errors.As(err, new(tls.RecordHeaderError)) {
			return fail(CauseNotEtcd, err)
		}
		if c := netCause(err); c != CauseUnknown {
			return fail(c, err)
		}
		return fail(CauseNotEtcd, err)
	}
	// TLS 1.3 servers check the client certificate after the client's
	// handshake is done: their verdict is the first thing read.
	switch c, err := preface(ctx, tc); c {
	case CauseUnknown:
	case causeClosed:
		return fail(CauseNotEtcd, err)
	default:
		return fail(c, err)
	}
	return nil
}

// probePlain sends the HTTP/2 preface on conn (which it closes) and reads
// the answer. A server that answers with a TLS alert, or closes the
// connection and then completes a TLS handshake, is a TLS server.
func probePlain(ctx context.Context, conn net.Conn, network, addr, host string, fail func(Cause, error) *DialError) *DialError {
	c, err := preface(ctx, conn)
	_ = conn.Close()
	switch c {
	case CauseUnknown:
		return nil
	case causeClosed:
		// etcd's TLS port closes a connection that does not start with
		// a TLS handshake: try one, trusting nothing, sending nothing.
		c2, derr := dialRaw(ctx, network, addr)
		if derr != nil {
			return fail(CauseNotEtcd, err)
		}
		tc := tls.Client(c2, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		herr := tc.HandshakeContext(ctx)
		_ = tc.Close()
		if herr == nil || tlsCause(herr) != CauseUnknown {
			return fail(CauseTLSServer, fmt.Errorf("plain HTTP/2: %w; a TLS handshake is answered", err))
		}
		return fail(CauseNotEtcd, err)
	}
	return fail(c, err)
}

// preface writes the HTTP/2 preface and classifies the first bytes read.
func preface(ctx context.Context, conn net.Conn) (Cause, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(http2Preface); err != nil {
		if c := readCause(err); c != CauseUnknown {
			return c, err
		}
		return CauseNotEtcd, err
	}
	var b [9]byte
	n, err := io.ReadFull(conn, b[:])
	switch {
	case n >= 4 && b[3] == 4: // an HTTP/2 SETTINGS frame
		return CauseUnknown, nil
	case n >= 5 && bytes.HasPrefix(b[:], []byte("HTTP/")):
		return CauseNotEtcd, fmt.Errorf("it answered %q", strings.TrimSpace(string(b[:n])))
	case n >= 3 && b[0] == 0x15 && b[1] == 3: // a TLS alert record
		return CauseTLSServer, errors.New("it answered with a TLS alert")
	case n > 0:
		return CauseNotEtcd, fmt.Errorf("it answered %q", b[:n])
	}
	if c := readCause(err); c != CauseUnknown {
		return c, err
	}
	return CauseNotEtcd, err
}

// causeClosed: the server closed the connection without a word; the
// caller finds out what it wanted instead.
const causeClosed Cause = -1

// readCause classifies an error reading a server's first answer.
func readCause(err error) Cause {
	if c := tlsCause(err); c != CauseUnknown {
		return c
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return causeClosed
	}
	return netCause(err)
}

// tlsCause classifies a TLS handshake or first-read error; CauseUnknown
// when it is not about certificates.
func tlsCause(err error) Cause {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return CauseUnknownAuthority
	case errors.As(err, &he):
		return CauseHostname
	case errors.As(err, &ci):
		return CauseServerCert
	}
	switch a, ok := remoteAlert(err); {
	case !ok:
		return CauseUnknown
	case a == alertCertificateRequired:
		return CauseClientCertRequired
	case a >= alertBadCertificate && a <= alertCertificateUnknown, a == alertUnknownCA:
		return CauseClientCertRejected
	}
	return CauseUnknown
}

// TLS alert numbers (RFC 8446 6) a server sends about a client
// certificate.
const (
	alertBadCertificate      = 42 // through 46: unsupported, revoked, expired, unknown
	alertCertificateUnknown  = 46
	alertUnknownCA           = 48
	alertCertificateRequired = 116
)

// remoteAlert returns the alert a server sent. crypto/tls reports it as a
// *net.OpError "remote error" around an unexported uint8 type, with no
// exported type to match ([tls.AlertError] is for QUIC only), so its number
// is read by kind rather than by matching its text.
func remoteAlert(err error) (uint8, bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	if v := reflect.ValueOf(oe.Err); v.Kind() == reflect.Uint8 {
		return uint8(v.Uint()), true
	}
	var ae tls.AlertError
	if errors.As(oe.Err, &ae) {
		return uint8(ae), true
	}
	return 0, false
}

// netCause classifies a dial or read error.
func netCause(err error) Cause {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return CauseDNS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return CauseRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return CauseTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CauseTimeout
	}
	return CauseUnknown
}

func dialRaw(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// parseEndpoint splits an etcd client URL as clientv3 reads it.
func parseEndpoint(ep string) (network, addr, host string, secure bool, err error) {
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", "", "", false, fmt.Errorf("bad endpoint: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Port() == "" {
			return "", "", "", false, errors.New("bad endpoint: no port")
		}
		return "tcp", u.Host, u.Hostname(), u.Scheme == "https", nil
	case "unix", "unixs":
		p := u.Host + u.Path
		return "unix", p, "localhost", u.Scheme == "unixs", nil
	}
	return "", "", "", false, fmt.Errorf("bad endpoint: scheme %q is not http, https, unix or unixs", u.Scheme)
}
