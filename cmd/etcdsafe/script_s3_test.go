package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/etcdsafe/etcdsafe/internal/s3test"
)

// S3 in the scripts: a real S3 server (versitygw through internal/s3test)
// behind a small pass-through proxy that can kill the server at a chosen
// point of an upload, so that "the server died in the middle of an upload"
// is a deterministic step, not a race against a fast machine.

// s3Proxy forwards every request to a versitygw unchanged (the Host header
// included: it is signed) and, once armed, kills the server when the Nth
// UploadPart request arrives, before forwarding it. While the server is
// down, every request's connection is dropped without an answer, as a
// dead server's would be.
type s3Proxy struct {
	Server   *s3test.Server
	Endpoint string // http://127.0.0.1:PORT of the proxy

	l  net.Listener
	hs *http.Server

	mu     sync.Mutex
	killAt int // 0: not armed; else the UploadPart count that kills
	parts  int // UploadPart requests seen since armed
}

// startS3Proxy starts a versitygw with its state in dir and a proxy in
// front of it. stop kills both.
func startS3Proxy(dir string) (p *s3Proxy, stop func(), err error) {
	srv, err := s3test.StartServer(s3test.Options{Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		srv.Kill()
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Kill()
		return nil, nil, err
	}
	p = &s3Proxy{Server: srv, Endpoint: "http://" + l.Addr().String(), l: l}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // SigV4 signs the host the client saw
		},
		// A dead server: drop the client's connection without an answer.
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) },
	}
	p.hs = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = p.hs.Serve(l) }()
	return p, func() { _ = p.hs.Close(); srv.Kill() }, nil
}

func (p *s3Proxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId") {
			p.mu.Lock()
			kill := false
			if p.killAt > 0 {
				p.parts++
				if p.parts >= p.killAt {
					p.killAt, kill = 0, true
				}
			}
			p.mu.Unlock()
			if kill {
				p.Server.Kill()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// KillAtPart arms the proxy: the nth UploadPart request from now kills
// the server before it is forwarded.
func (p *s3Proxy) KillAtPart(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killAt, p.parts = n, 0
}

// Env is what the etcdsafe command needs to reach the server through the
// proxy, as KEY=VALUE: the AWS chain's variables and the endpoint, both
// as AWS_ENDPOINT_URL_S3 and as S3_ENDPOINT (for --s3-endpoint).
func (p *s3Proxy) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + p.Server.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + p.Server.SecretKey,
		"AWS_REGION=" + p.Server.Region,
		"AWS_ENDPOINT_URL_S3=" + p.Endpoint,
		"S3_ENDPOINT=" + p.Endpoint,
	}
}

// setS3Env sets p.Env in the test's environment (no t.Parallel then).
func (p *s3Proxy) setS3Env(t *testing.T) {
	for _, kv := range p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// uploadsAndObjects returns "object KEY" for every object of bucket and
// "upload KEY" for every incomplete multipart upload, sorted.
func uploadsAndObjects(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out = append(out, "object "+aws.ToString(o.Key))
		}
	}
	in := &s3.ListMultipartUploadsInput{Bucket: &bucket}
	for {
		page, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			out = append(out, "upload "+aws.ToString(u.Key))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	sort.Strings(out)
	return out, nil
}

// s3proxies maps a running script to its server.
var s3proxies sync.Map

func scriptS3(ts *testscript.TestScript) *s3Proxy {
	v, ok := s3proxies.Load(ts)
	if !ok {
		ts.Fatalf("no S3 server: run 's3server start' first")
	}
	return v.(*s3Proxy)
}

// cmdS3Server: s3server start starts a real S3 server (versitygw, its
// state in $WORK/s3-server) behind a proxy, and sets AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 and $S3_ENDPOINT
// so that etcdsafe reaches it. s3server kill kills the server (SIGKILL:
// uploads in progress stay incomplete); s3server restart starts it again
// on its data; s3server kill-at-part N kills it when the Nth UploadPart
// request from now arrives. The script's end stops it.
func cmdS3Server(ts *testscript.TestScript, neg bool, args []string) {
	usage := "usage: s3server start|kill|restart|kill-at-part N"
	if neg || len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	switch args[0] {
	case "start":
		if _, ok := s3proxies.Load(ts); ok {
			ts.Fatalf("s3server already started")
		}
		p, stop, err := startS3Proxy(ts.MkAbs("s3-server"))
		ts.Check(err)
		s3proxies.Store(ts, p)
		ts.Defer(func() { stop(); s3proxies.Delete(ts) })
		for _, kv := range p.Env() {
			k, v, _ := strings.Cut(kv, "=")
			ts.Setenv(k, v)
		}
	case "kill":
		scriptS3(ts).Server.Kill()
	case "restart":
		scriptS3(ts).Server.Restart(scriptTB{ts: ts})
	case "kill-at-part":
		n := 0
		if len(args) == 2 {
			n, _ = strconv.Atoi(args[1])
		}
		if n < 1 {
			ts.Fatalf("%s", usage)
		}
		scriptS3(ts).KillAtPart(n)
	default:
		ts.Fatalf("%s", usage)
	}
}

// cmdS3Bucket: s3bucket NAME [lock] creates a bucket, with object lock
// (hence versioning) when asked.
func cmdS3Bucket(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "lock") {
		ts.Fatalf("usage: s3bucket NAME [lock]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts.Check(scriptS3(ts).Server.MakeBucket(ctx, args[0], len(args) == 2))
}

// cmdS3Ls: s3ls BUCKET prints, through the SDK and not etcdsafe, "object
// KEY" for every object of the bucket and "upload KEY" for every
// incomplete multipart upload, sorted.
func cmdS3Ls(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: s3ls BUCKET")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lines, err := uploadsAndObjects(ctx, scriptS3(ts).Server.Client(scriptTB{ts: ts}), args[0])
	ts.Check(err)
	for _, l := range lines {
		fmt.Fprintln(ts.Stdout(), l)
	}
}

// cmdRandFile: randfile FILE SIZE writes SIZE random bytes (a suffix K or
// M for KiB or MiB): content no compressor shrinks.
func cmdRandFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: randfile FILE SIZE")
	}
	s, mult := args[1], int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		s, mult = strings.TrimSuffix(s, "K"), 1<<10
	case strings.HasSuffix(s, "M"):
		s, mult = strings.TrimSuffix(s, "M"), 1<<20
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		ts.Fatalf("randfile: bad size %q", args[1])
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	ts.Check(err)
	_, err = io.CopyN(f, rand.Reader, n*mult)
	ts.Check(err)
	ts.Check(f.Close())
}

// scriptTB lets a script call the parts of internal/s3test that take a
// testing.TB (Restart, Client): they call only Helper and Fatal. The
// embedded TB is nil, so any other method panics, which testscript
// reports as the script's failure.
type scriptTB struct {
	testing.TB
	ts *testscript.TestScript
}

func (s scriptTB) Helper()                   {}
func (s scriptTB) Fatal(args ...any)         { s.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (s scriptTB) Fatalf(f string, a ...any) { s.ts.Fatalf(f, a...) }
