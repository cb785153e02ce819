package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

// The servers of the dial*.txtar scripts: a failed dial must say why.
func init() {
	scriptCmds["dialetcd"] = cmdDialEtcd
	scriptCmds["otherpki"] = cmdOtherPKI
	scriptCmds["httpserver"] = cmdHTTPServer
	scriptCmds["closedport"] = cmdClosedPort
	scriptCmds["forward"] = cmdForward
}

// cmdDialEtcd: dialetcd tls|plain starts an empty embedded etcd, with
// kubeadm's TLS and client certificates or on plain HTTP, and sets
// $TLS_ENDPOINT, $TLS_ADDR (host:port) and $TLS_PKI, or $PLAIN_ENDPOINT
// and $PLAIN_ADDR. The script's end stops it.
func cmdDialEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || (args[0] != "tls" && args[0] != "plain") {
		ts.Fatalf("usage: dialetcd tls|plain")
	}
	var opts []etcdtest.Option
	if args[0] == "tls" {
		opts = append(opts, etcdtest.WithTLS())
	}
	s, err := etcdtest.StartDir(ts.MkAbs("etcd-"+args[0]), opts...)
	ts.Check(err)
	ts.Defer(s.Stop)
	v := strings.ToUpper(args[0])
	ts.Setenv(v+"_ENDPOINT", s.Endpoint)
	ts.Setenv(v+"_ADDR", s.Endpoint[strings.Index(s.Endpoint, "://")+3:])
	if s.PKIDir != "" {
		ts.Setenv(v+"_PKI", s.PKIDir)
	}
}

// cmdOtherPKI: otherpki DIR writes another CA and kubeadm's etcd
// certificates signed by it into DIR.
func cmdOtherPKI(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: otherpki DIR")
	}
	ts.Check(etcdtest.WritePKI(ts.MkAbs(args[0])))
}

// cmdHTTPServer: httpserver sets $HTTP_ADDR to a plain HTTP/1 server's
// host:port (a service on a port mistaken for etcd's).
func cmdHTTPServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: httpserver")
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }))
	ts.Defer(s.Close)
	ts.Setenv("HTTP_ADDR", strings.TrimPrefix(s.URL, "http://"))
}

// cmdClosedPort: closedport sets $CLOSED_ADDR to a 127.0.0.1 port nothing
// listens on.
func cmdClosedPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: closedport")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv("CLOSED_ADDR", l.Addr().String())
	ts.Check(l.Close())
}

// cmdForward: forward HOST TARGET listens on HOST (another loopback
// address, say) and copies each connection to TARGET and back, setting
// $FORWARD_ADDR: the same server under an address its certificate may
// not name.
func cmdForward(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: forward HOST TARGET")
	}
	addr, stop, err := etcdtest.Forward(args[0], args[1])
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv("FORWARD_ADDR", addr)
}
