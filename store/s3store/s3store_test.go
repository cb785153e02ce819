package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/etcdsafe/etcdsafe/internal/s3test"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

const partSize = 5 << 20 // S3's minimum

// client is a client of srv (or of c.Endpoint, a proxy in front of it)
// with srv's credentials unless c has others.
func client(t *testing.T, srv *s3test.Server, c s3store.Config) *s3store.Client {
	t.Helper()
	if c.Endpoint == "" {
		c.Endpoint = srv.Endpoint
	}
	c.Region = srv.Region
	if c.Credentials == nil {
		c.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	}
	if c.PartSize == 0 {
		c.PartSize = partSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 2
	}
	cl, err := s3store.NewClient(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// proxied is a client whose requests pass through wrap(a reverse proxy
// to srv), served on a loopback port until the test ends.
func proxied(t *testing.T, srv *s3test.Server, wrap func(next http.Handler) http.Handler, c s3store.Config) *s3store.Client {
	t.Helper()
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(wrap(httputil.NewSingleHostReverseProxy(u)))
	t.Cleanup(proxy.Close)
	c.Endpoint = proxy.URL
	return client(t, srv, c)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// put writes data to name in chunks of 1 MiB and commits it.
func put(t *testing.T, b *s3store.Bucket, name string, data []byte, o store.PutOptions) error {
	t.Helper()
	up, err := b.Put(t.Context(), name, o)
	if err != nil {
		return err
	}
	defer up.Abort()
	for p := data; len(p) > 0; {
		k := min(len(p), 1<<20)
		if _, err := up.Write(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return up.Commit(int64(len(data)))
}

func readAll(t *testing.T, b *s3store.Bucket, name string) ([]byte, error) {
	t.Helper()
	rc, err := b.Get(t.Context(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func uploads(t *testing.T, srv *s3test.Server, bucket string) int {
	t.Helper()
	out, err := srv.Client(t).ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// TestRoundTrip: a small object (one PutObject) and a multipart one of
// several parts read back equal, with the server's CRC-32C compared;
// nothing is listed before Commit; a short Commit publishes nothing and
// leaves no upload; NoReplace refuses an existing name; names are one
// path element; List and Dirs see one level.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	c := client(t, srv, s3store.Config{Concurrency: 2})
	b := c.Bucket("bkt", "fleet").Sub("prod")
	if got := b.Where("x"); got != "s3://bkt/fleet/prod/x" {
		t.Fatalf("Where = %s", got)
	}
	ctx := t.Context()
	small := []byte("sidecar bytes")
	big := randomBytes(t, 3*partSize+12345) // 4 parts
	if err := put(t, b, "small.json", small, store.PutOptions{Meta: map[string]string{"etcdsafe-host": "m1"}}); err != nil {
		t.Fatal(err)
	}
	up, err := b.Put(ctx, "big.tar.zst.age", store.PutOptions{NoReplace: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(big); err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Name != "small.json" {
		t.Fatalf("before Commit List = %+v", objs)
	}
	if err := up.Commit(int64(len(big))); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"small.json": small, "big.tar.zst.age": big} {
		got, err := readAll(t, b, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, err %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	// the reader says whether it compared the server's checksum
	r, err := c.Open(ctx, b.Where("big.tar.zst.age"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !r.Verified {
		t.Error("multipart object: the server's full-object CRC-32C was not compared")
	}
	if r.Meta()["etcdsafe-host"] != "" {
		t.Error("metadata of another object")
	}
	if err := put(t, b, "big.tar.zst.age", []byte("x"), store.PutOptions{NoReplace: true}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("NoReplace over an existing object: %v", err)
	}
	if err := put(t, b, "small2.json", small, store.PutOptions{NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	// a Commit with the wrong size publishes nothing and aborts
	up, err = b.Put(ctx, "short.tar.zst", store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(int64(len(big)) + 1); err == nil {
		t.Fatal("short upload committed")
	}
	if _, err := b.Stat(ctx, "short.tar.zst"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed commit: %v", err)
	}
	if n := uploads(t, srv, "bkt"); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
	if _, err := b.Put(ctx, "a/b", store.PutOptions{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("name with a slash: %v", err)
	}
	dirs, err := c.Bucket("bkt", "fleet").Dirs(ctx)
	if err != nil || len(dirs) != 1 || dirs[0] != "prod" {
		t.Errorf("Dirs = %v, %v", dirs, err)
	}
	if objs, _ := c.Bucket("bkt", "fleet").List(ctx); len(objs) != 0 {
		t.Errorf("List of the fleet prefix shows objects below it: %v", objs)
	}
	st, err := b.Stat(ctx, "big.tar.zst.age")
	if err != nil || st.Size != int64(len(big)) || st.Retention != nil {
		t.Errorf("Stat = %+v, %v", st, err)
	}
}

// TestAbortAndCancel: Abort and a cancelled context leave no object and no
// upload behind.
func TestAbortAndCancel(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	c := client(t, srv, s3store.Config{})
	b := c.Bucket("bkt", "")
	data := randomBytes(t, 2*partSize+1)
	up, err := b.Put(t.Context(), "x.tar.zst", store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	up.Abort()
	if err := up.Commit(int64(len(data))); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	up, err = b.Put(ctx, "y.tar.zst", store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := up.Commit(int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after cancel: %v", err)
	}
	for _, n := range []string{"x.tar.zst", "y.tar.zst"} {
		if _, err := b.Stat(t.Context(), n); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v", n, err)
		}
	}
	if n := uploads(t, srv, "bkt"); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
}

// TestServerKilledMidUpload: the server dies between parts: the upload
// fails with a clear error, nothing is published; after a restart the
// incomplete upload is there, SweepPartials leaves it while it is young
// and aborts it once older than PartialAge.
func TestServerKilledMidUpload(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	c := client(t, srv, s3store.Config{Concurrency: 1, MaxAttempts: 2})
	b := c.Bucket("bkt", "p")
	data := randomBytes(t, partSize)
	up, err := b.Put(t.Context(), "x.tar.zst.age", store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	for range 2 { // two parts sent
		if _, err := up.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	// wait until the server holds the upload, then kill it
	deadline := time.Now().Add(10 * time.Second)
	for uploads(t, srv, "bkt") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no upload seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Kill()
	var werr error
	for i := 0; i < 4 && werr == nil; i++ {
		_, werr = up.Write(data)
	}
	if werr == nil {
		werr = up.Commit(6 * partSize)
	}
	if !errors.Is(werr, s3store.ErrUnreachable) {
		t.Fatalf("upload to a dead server: %v", werr)
	}
	up.Abort()
	srv.Restart(t)
	if _, err := b.Stat(t.Context(), "x.tar.zst.age"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("object published after the server died: %v", err)
	}
	// a prefix holding only the incomplete upload is a directory of the fleet
	if dirs, err := c.Bucket("bkt", "").Dirs(t.Context()); err != nil || len(dirs) != 1 || dirs[0] != "p" {
		t.Fatalf("Dirs = %v, %v", dirs, err)
	}
	match := func(string) bool { return true }
	if got, err := b.SweepPartials(t.Context(), match, false); err != nil || len(got) != 0 {
		t.Fatalf("a young upload was swept: %v %v", got, err)
	}
	b.PartialAge = time.Nanosecond
	got, err := b.SweepPartials(t.Context(), match, true)
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "s3://bkt/p/x.tar.zst.age") {
		t.Fatalf("dry run: %v %v", got, err)
	}
	if n := uploads(t, srv, "bkt"); n == 0 {
		t.Fatal("dry run removed the upload")
	}
	if _, err := b.SweepPartials(t.Context(), match, false); err != nil {
		t.Fatal(err)
	}
	if n := uploads(t, srv, "bkt"); n != 0 {
		t.Fatalf("%d uploads left after the sweep", n)
	}
}

// TestObjectLock: CheckRetention tells a lock bucket from a plain one;
// objects put with a retention show it; Delete refuses a locked object
// with a RetainedError before trying, the server refuses a versioned
// delete of it too; an unlocked object is deleted with every version.
func TestObjectLock(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "plain", false)
	srv.CreateBucket(t, "locked", true)
	c := client(t, srv, s3store.Config{})
	ctx := t.Context()
	if err := c.Bucket("plain", "").CheckRetention(ctx); !errors.Is(err, store.ErrNoRetention) {
		t.Errorf("plain bucket: %v", err)
	}
	b := c.Bucket("locked", "x")
	if err := b.CheckRetention(ctx); err != nil {
		t.Fatalf("lock bucket: %v", err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	rt := &store.Retention{Mode: store.Governance, Until: until}
	if err := put(t, b, "a.tar.zst.age", randomBytes(t, partSize+1), store.PutOptions{Retention: rt}); err != nil {
		t.Fatal(err)
	}
	if err := put(t, b, "a.tar.zst.age.json", []byte("{}"), store.PutOptions{Retention: rt}); err != nil {
		t.Fatal(err)
	}
	if err := put(t, b, "old.tar.zst.age", []byte("old"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.tar.zst.age", "a.tar.zst.age.json"} {
		st, err := b.Stat(ctx, n)
		if err != nil || st.Retention == nil || st.Retention.Mode != store.Governance || !st.Retention.Until.Equal(until) {
			t.Fatalf("%s: %+v %v", n, st.Retention, err)
		}
	}
	var re *store.RetainedError
	if err := b.Delete(ctx, "a.tar.zst.age"); !errors.As(err, &re) || !re.Retention.Until.Equal(until) {
		t.Fatalf("Delete of a locked object: %v", err)
	}
	// the server itself refuses to delete the locked version
	vs, err := srv.Client(t).ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("locked"), Prefix: aws.String("x/a.tar.zst.age")})
	if err != nil || len(vs.Versions) == 0 {
		t.Fatalf("versions: %v", err)
	}
	_, err = srv.Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: vs.Versions[0].Key, VersionId: vs.Versions[0].VersionId})
	if err == nil {
		t.Fatal("the server deleted a locked version")
	}
	if err := b.Delete(ctx, "old.tar.zst.age"); err != nil {
		t.Fatal(err)
	}
	vs, err = srv.Client(t).ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("locked"), Prefix: aws.String("x/old")})
	if err != nil || len(vs.Versions)+len(vs.DeleteMarkers) != 0 {
		t.Fatalf("versions of a deleted object left: %d %d %v", len(vs.Versions), len(vs.DeleteMarkers), err)
	}
	if err := b.Delete(ctx, "missing"); err != nil {
		t.Errorf("delete of a missing object: %v", err)
	}
}

// TestErrors: wrong credentials, a missing bucket, a dead endpoint, a
// missing key: each wraps its sentinel, names the URL, and never holds
// the secret.
func TestErrors(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	ctx := t.Context()
	good := client(t, srv, s3store.Config{})
	if err := good.Bucket("nope", "").Check(ctx); !errors.Is(err, s3store.ErrNoBucket) || !strings.Contains(err.Error(), "s3://nope/") {
		t.Errorf("missing bucket: %v", err)
	}
	if _, err := good.Open(ctx, "s3://bkt/missing.tar.zst.age"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := good.Open(ctx, "s3://bkt/prefix/"); err == nil {
		t.Error("a prefix opened as an object")
	}
	secret := "wrong-secret-" + strings.Repeat("z", 20)
	bad := client(t, srv, s3store.Config{MaxAttempts: 1, Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, secret, "")})
	err := bad.Bucket("bkt", "").Check(ctx)
	if !errors.Is(err, s3store.ErrDenied) || strings.Contains(err.Error(), secret) {
		t.Errorf("wrong secret: %v", err)
	}
	dead, err := s3store.NewClient(ctx, s3store.Config{Endpoint: "http://127.0.0.1:1", MaxAttempts: 1, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Bucket("bkt", "").Check(ctx); !errors.Is(err, s3store.ErrUnreachable) {
		t.Errorf("dead endpoint: %v", err)
	}
	for _, u := range []string{"s3://", "s3:///k", "http://b/k", "s3://bkt/k?x"} {
		if _, _, err := s3store.ParseURL(u); err == nil {
			t.Errorf("ParseURL(%q) accepted", u)
		}
	}
}

// TestReaderChecksum: an object replaced behind the reader's back is an
// error, not a splice; a full read compares the server's CRC-32C.
func TestReaderChecksum(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	c := client(t, srv, s3store.Config{})
	b := c.Bucket("bkt", "")
	data := randomBytes(t, 40<<20) // more than the read-ahead
	if err := put(t, b, "x", data, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(t.Context(), "s3://bkt/x")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(data)) {
		t.Fatalf("Size = %d", r.Size())
	}
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[:len(buf)]) {
		t.Fatal("first MiB differs")
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[len(buf):]) {
		t.Fatalf("rest: %d bytes, %v", len(got), err)
	}
	if !r.Verified {
		t.Error("checksum not compared")
	}
}

// TestTLSAndProfile: an https endpoint with its own CA is refused with a
// hint until --s3-ca-file names the CA; credentials come from a shared
// credentials file's profile (the AWS chain, no static keys).
func TestTLSAndProfile(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{TLS: true})
	srv.CreateBucket(t, "bkt", false)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[backup]\naws_access_key_id = "+
		srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := t.Context()
	cfg := s3store.Config{Endpoint: srv.Endpoint, Region: srv.Region, MaxAttempts: 1}
	c, err := s3store.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bucket("bkt", "").Check(ctx); !errors.Is(err, s3store.ErrUnreachable) || !strings.Contains(err.Error(), "--s3-ca-file") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	cfg.CAFile = srv.CAFile
	if c, err = s3store.NewClient(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.Bucket("bkt", "").Check(ctx); !errors.Is(err, s3store.ErrDenied) {
		t.Fatalf("default profile's wrong keys: %v", err)
	}
	cfg.Profile = "backup"
	if c, err = s3store.NewClient(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := put(t, c.Bucket("bkt", ""), "x", []byte("over https"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, c.Bucket("bkt", ""), "x"); err != nil || string(got) != "over https" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// flaky is a reverse proxy in front of the server that answers 503
// SlowDown to the first fail requests matching match, then passes.
type flaky struct {
	next  http.Handler
	match func(*http.Request) bool
	mu    sync.Mutex
	fail  int
	seen  int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hit := f.match(r) && f.fail > 0
	if f.match(r) {
		f.seen++
	}
	if hit {
		f.fail--
	}
	f.mu.Unlock()
	if hit {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		return
	}
	f.next.ServeHTTP(w, r)
}

// TestThrottled: a server that throttles parts is retried with backoff
// and the upload completes; one that keeps failing gives a clear error
// with a hint, after a bounded number of tries, and publishes nothing.
func TestThrottled(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	isPart := func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Query().Has("partNumber") }
	f := &flaky{match: isPart, fail: 3}
	c := proxied(t, srv, func(next http.Handler) http.Handler { f.next = next; return f }, s3store.Config{MaxAttempts: 3})
	b := c.Bucket("bkt", "")
	data := randomBytes(t, 2*partSize+1)
	if err := put(t, b, "ok.tar.zst", data, store.PutOptions{}); err != nil {
		t.Fatalf("3 throttled parts with 3 tries each: %v", err)
	}
	if got, err := readAll(t, b, "ok.tar.zst"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	f.mu.Lock()
	f.fail, f.seen = 1000, 0
	f.mu.Unlock()
	err := put(t, b, "no.tar.zst", data, store.PutOptions{})
	var e *s3store.Error
	if !errors.As(err, &e) || e.Code != "SlowDown" || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("a server that keeps throttling: %v", err)
	}
	f.mu.Lock()
	seen := f.seen
	f.mu.Unlock()
	if seen > 3*3 { // at most 3 parts in flight, 3 tries each
		t.Errorf("%d part requests: retries are not bounded", seen)
	}
	if _, err := b.Stat(t.Context(), "no.tar.zst"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("published after failing: %v", err)
	}
	if n := uploads(t, srv, "bkt"); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

// corrupter flips one byte of the first part's body on its way to the
// server.
type corrupter struct {
	next http.Handler
	once sync.Once
}

func (c *corrupter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
		c.once.Do(func() {
			b, _ := io.ReadAll(r.Body)
			b[len(b)/2] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(b))
		})
	}
	c.next.ServeHTTP(w, r)
}

// TestCorruptedInTransit: a part damaged between client and server (the
// payload is not signed, the CRC-32C header is) is refused by the server
// and nothing is published.
func TestCorruptedInTransit(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "bkt", false)
	c := proxied(t, srv, func(next http.Handler) http.Handler { return &corrupter{next: next} }, s3store.Config{MaxAttempts: 1})
	b := c.Bucket("bkt", "")
	err := put(t, b, "x.tar.zst", randomBytes(t, partSize+1), store.PutOptions{})
	var e *s3store.Error
	if !errors.As(err, &e) || e.Code != "BadDigest" {
		t.Fatalf("a damaged part: %v", err)
	}
	if _, err := b.Stat(t.Context(), "x.tar.zst"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("published: %v", err)
	}
}
