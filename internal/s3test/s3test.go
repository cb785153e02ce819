// Package s3test runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw), built from its Go module into the repo's
// tool cache, with its posix backend and a versioning directory, so that
// buckets may have object lock.
//
// Every [Server] runs as a child process on its own loopback port with
// random root credentials and its own directories; tests may run in
// parallel. The child is killed by [Server.Kill] or the test's cleanup, but
// not if the test binary itself dies (a go test timeout): such a server
// keeps running until killed by hand.
//
// What versitygw v1.8.0 does (posix backend, --versioning-dir), each point
// asserted by the named test in s3test_test.go, with aws-sdk-go-v2 s3
// v1.114.10 as the client; the S3 target is built on these:
//
//   - Object lock (TestServer): a bucket created with
//     ObjectLockEnabledForBucket has versioning Enabled and
//     GetObjectLockConfiguration says Enabled; on a plain bucket that call
//     fails ObjectLockConfigurationNotFoundError 404. PutObject with
//     GOVERNANCE retention returns a VersionId (the SDK sends it over http
//     with no Content-MD5 or checksum header, and none is asked for); DeleteObject of that version without
//     BypassGovernanceRetention is refused AccessDenied 403. Objects and
//     retention survive SIGKILL and restart.
//   - (1) CRC32C FULL_OBJECT multipart (TestMultipartCRC32CFullObject,
//     TestMultipartCRC32CParts): accepted. Complete with a wrong whole-object
//     ChecksumCRC32C is refused BadDigest 400, and the same upload may then
//     be completed with the right one. HeadObject (and GetObject) with
//     ChecksumMode ENABLED return ChecksumCRC32C = CRC32C of the whole
//     object and ChecksumType FULL_OBJECT (GetObject's body matches it).
//     Complete must repeat every part's ChecksumCRC32C in
//     its part list, else InvalidRequest 400 ("The upload was created using
//     a crc32c checksum. The complete request must include the checksum for
//     each part..."); the whole-object value may be left out, the server
//     computes it from the part CRCs. A part with a wrong ChecksumCRC32C is
//     refused BadDigest 400; a part sent with no checksum gets the upload's
//     CRC32C computed by the server, returned by UploadPart.
//   - (2) SHA256 COMPOSITE (TestMultipartSHA256Composite): accepted. The
//     object's checksum is base64(sha256(raw sha256 of part 1 || part 2
//     ...)) + "-<parts>"; Complete checks the value it is sent, with or
//     without the suffix (the sha256 of the whole object: BadDigest 400);
//     HeadObject with ChecksumMode ENABLED returns it, suffix included, with
//     ChecksumType COMPOSITE.
//   - Defaults (TestChecksumDefaults): FULL_OBJECT with SHA256 is refused
//     on CreateMultipartUpload, InvalidRequest 400 (CRC algorithms only); a
//     ChecksumAlgorithm without ChecksumType means COMPOSITE. Over plain
//     http the SDK sends no x-amz-checksum-* header on PutObject or
//     UploadPart (only the signed payload sha256), and the server stores a
//     CRC64NVME FULL_OBJECT checksum it computes itself.
//   - (3) Retention on CreateMultipartUpload (TestMultipartRetention):
//     ObjectLockMode GOVERNANCE + ObjectLockRetainUntilDate (whole seconds)
//     on an object-lock bucket are on the completed object: HeadObject
//     returns them, and deleting the version is refused AccessDenied 403.
//   - (4) Unfinished uploads (TestListAndAbortUploads): ListMultipartUploads
//     lists one with Key, UploadId and Initiated (its creation time, within
//     2 s; the server sends whole seconds); after AbortMultipartUpload it is no longer listed and
//     ListParts on it fails NoSuchUpload 404.
//   - (5) IfNoneMatch "*" (TestIfNoneMatch): CompleteMultipartUpload over an
//     existing key is refused PreconditionFailed 412, in a plain and in an
//     object-lock (versioned) bucket, and the object keeps its content;
//     PutObject with IfNoneMatch "*" likewise; both create a new key.
//   - (6) User metadata (TestMultipartMetadata): x-amz-meta-* given to
//     CreateMultipartUpload come back from HeadObject after Complete.
package s3test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

const (
	// Version is the versitygw release the tests run against.
	Version = "v1.8.0"
	// Package is the Go package of the versitygw command.
	Package = "github.com/versity/versitygw/cmd/versitygw"
	// Region is the region every server answers for and every client signs with.
	Region = "us-east-1"

	// modulePath names the go.mod that marks the repo root.
	modulePath = "github.com/etcdsafe/etcdsafe"
	// toolsEnv overrides the tool cache directory (<repo>/.cache/tools).
	toolsEnv = "ETCDSAFE_TOOLS_DIR"

	readyTimeout = 30 * time.Second
	// startAttempts bounds the retries when the port was taken between
	// picking it and versitygw binding it.
	startAttempts = 5
	// logTail is how much of the server log a failing test prints.
	logTail = 32 << 10
)

// Binary returns the path of the versitygw binary, building it once when it
// is missing (see [BinaryPath]). A failed build fails the test: it is never
// a reason to skip.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := BinaryPath("")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BinaryPath returns the path of the versitygw binary in the tool cache,
// <tools>/versitygw-<Version>/versitygw, and builds it there first with
// `go install` (GOFLAGS empty) when it is missing. The tool cache is
// <root>/.cache/tools; with root "" it is $ETCDSAFE_TOOLS_DIR if set, else
// the .cache/tools of the repo found by walking up from the working
// directory to the go.mod of module github.com/etcdsafe/etcdsafe (past the
// e2e module's own go.mod).
//
// Concurrent callers, in one process or many (go test runs packages in
// parallel), build at most once: the build holds an flock on
// <tools>/.versitygw-<Version>.lock, installs into a temporary GOBIN and
// renames the binary into place, so nobody sees a partial file. It may be
// retried after an error.
func BinaryPath(root string) (string, error) {
	tools, err := toolsDir(root)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools, "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create tool dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(tools, ".versitygw-"+Version+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("open build lock: %w", err)
	}
	defer lock.Close() // closing releases the flock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if isExecutable(bin) { // built by whoever held the lock before us
		return bin, nil
	}
	if err := build(tools, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// build installs versitygw into a temporary GOBIN under tools and renames
// the binary to bin.
func build(tools, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build versitygw %s: %w", Version, err)
	}
	tmp, err := os.MkdirTemp(tools, ".versitygw-build-*")
	if err != nil {
		return fmt.Errorf("build versitygw %s: %w", Version, err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goBin, "install", Package+"@"+Version)
	cmd.Dir = tmp // outside any module: pkg@version ignores it anyway
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOBIN="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", Package, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return fmt.Errorf("build versitygw %s: %w", Version, err)
	}
	return nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0
}

// toolsDir is <root>/.cache/tools, or $ETCDSAFE_TOOLS_DIR, or the repo's
// .cache/tools; see [BinaryPath].
func toolsDir(root string) (string, error) {
	if root != "" {
		return filepath.Join(root, ".cache", "tools"), nil
	}
	if d := os.Getenv(toolsEnv); d != "" {
		return filepath.Abs(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "tools"), nil
}

// RepoRoot returns the directory holding the go.mod of module
// github.com/etcdsafe/etcdsafe, walking up from the working directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for d := wd; ; {
		if moduleOf(filepath.Join(d, "go.mod")) == modulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find repo root: no go.mod of module %s above %s (set %s)", modulePath, wd, toolsEnv)
		}
		d = parent
	}
}

// moduleOf returns the module path declared in the go.mod file p, or "".
func moduleOf(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			rest = strings.TrimSpace(rest)
			if u, err := strconv.Unquote(rest); err == nil {
				return u
			}
			return rest
		}
	}
	return ""
}

// Options configures [Start] and [StartServer].
type Options struct {
	// Dir holds the server's state: buckets/ (the posix backend root, one
	// subdirectory per bucket), versions/ (the versioning directory) and
	// versitygw.log (its stdout and stderr). [Start] defaults it to
	// t.TempDir(); [StartServer] requires it. Starting over an existing Dir
	// serves the data already there.
	Dir string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// Binary is the versitygw binary; "" means [BinaryPath]("").
	Binary string
	// TLS serves https with a certificate for 127.0.0.1 signed by a new
	// CA, written to Dir/ca.pem ([Server.CAFile]).
	TLS bool
}

// Server is a running versitygw. Its fields do not change across
// [Server.Restart].
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Region is always [Region].
	Region string
	// Dir is the posix backend root: Options.Dir/buckets.
	Dir string
	// VersionsDir is the versioning directory beside it: Options.Dir/versions.
	VersionsDir string
	// LogFile receives the server's stdout and stderr, appended on restart.
	LogFile string
	// CAFile is the PEM CA of a TLS server ([Options.TLS]), else "".
	CAFile            string
	certFile, keyFile string

	bin  string
	addr string // 127.0.0.1:PORT

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a versitygw for the test (see [StartServer]) and fails the
// test if it does not come up. The test's cleanup kills it and, if the test
// failed, logs the end of its log.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Binary == "" {
		o.Binary = Binary(t)
	}
	s, err := StartServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("versitygw log %s (end):\n%s", s.LogFile, s.logTail())
		}
	})
	return s
}

// StartServer starts versitygw with the posix backend over o.Dir (see
// [Options]) on a loopback port, with fresh random root credentials passed
// in its environment, and returns once it answers HTTP (at most 30 s). The
// caller must [Server.Kill] it. On error nothing is left running.
func StartServer(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("start versitygw: no directory")
	}
	// versitygw refuses a relative root that "contains" the versioning dir
	dir, aerr := filepath.Abs(o.Dir)
	if aerr != nil {
		return nil, fmt.Errorf("start versitygw: %w", aerr)
	}
	o.Dir = dir
	if o.Binary == "" {
		var err error
		if o.Binary, err = BinaryPath(""); err != nil {
			return nil, err
		}
	}
	s := &Server{
		AccessKey:   strings.ToUpper(randomHex(10)),
		SecretKey:   randomHex(20),
		Region:      Region,
		Dir:         filepath.Join(o.Dir, "buckets"),
		VersionsDir: filepath.Join(o.Dir, "versions"),
		LogFile:     filepath.Join(o.Dir, "versitygw.log"),
		bin:         o.Binary,
	}
	for _, d := range []string{s.Dir, s.VersionsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
	}
	if o.TLS {
		s.CAFile, s.certFile, s.keyFile = filepath.Join(o.Dir, "ca.pem"), filepath.Join(o.Dir, "cert.pem"), filepath.Join(o.Dir, "key.pem")
		if err := writeTLS(s.CAFile, s.certFile, s.keyFile); err != nil {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
	}
	var err error
	for range startAttempts {
		port := o.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Endpoint = "http://" + s.addr
		if o.TLS {
			s.Endpoint = "https://" + s.addr
		}
		if err = s.start(); !errors.Is(err, errPortInUse) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts the server again on the same port, directories and
// credentials, after killing it if it still runs; the data survives.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	var err error
	for range startAttempts {
		if err = s.start(); !errors.Is(err, errPortInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Kill sends SIGKILL to the server and waits for it to exit. It does
// nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only if it has exited already
	<-s.done
	s.cmd = nil
}

// Exited is closed when the current server process exits, whether killed
// or not.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

var errPortInUse = errors.New("port in use")

// start runs versitygw on s.addr and waits until it answers.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	before, _ := logf.Seek(0, io.SeekEnd)

	args := []string{"--port", s.addr}
	if s.certFile != "" {
		args = append(args, "--cert", s.certFile, "--key", s.keyFile)
	}
	cmd := exec.Command(s.bin, append(args, "posix", "--versioning-dir", s.VersionsDir, s.Dir)...)
	// dies with the test binary (a go test timeout) instead of lingering
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A clean environment: versitygw reads many VGW_* variables (and
	// LOGFILE, WEBHOOK), none of which a test should inherit.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"ROOT_ACCESS_KEY_ID=" + s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	if err := waitReady(s.Endpoint, s.httpClient(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		log := readFrom(s.LogFile, before)
		if strings.Contains(log, "address already in use") {
			return fmt.Errorf("start versitygw on %s: %w", s.addr, errPortInUse)
		}
		return fmt.Errorf("start versitygw on %s: %w\n%s", s.addr, err, log)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitReady polls endpoint until versitygw answers (any HTTP status),
// the process exits or readyTimeout passes.
func waitReady(endpoint string, client *http.Client, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			// Another process may hold the port we picked; versitygw
			// names itself, and would then exit on its bind error.
			if resp.Header.Get("Server") == "VERSITYGW" {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("versitygw exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw not answering after %v", readyTimeout)
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// readFrom returns the file's content from offset off.
func readFrom(p string, off int64) string {
	f, err := os.Open(p)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<62))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (s *Server) logTail() string {
	fi, err := os.Stat(s.LogFile)
	if err != nil {
		return err.Error()
	}
	return readFrom(s.LogFile, max(0, fi.Size()-logTail))
}

// Client returns an S3 client for the server: its root credentials (static,
// nothing read from the environment or ~/.aws), region us-east-1,
// path-style addressing.
func (s *Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s.client()
}

func (s *Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   s.httpClient(),
	})
}

// StoreClient returns an etcdsafe S3 client of the server (path style,
// 2 tries per request) signing with the root access key and secret, or
// the root secret when secret is "".
func (s *Server) StoreClient(t testing.TB, secret string) *s3store.Client {
	t.Helper()
	if secret == "" {
		secret = s.SecretKey
	}
	c, err := s3store.NewClient(context.Background(), s3store.Config{Endpoint: s.Endpoint, Region: s.Region, CAFile: s.CAFile,
		MaxAttempts: 2, Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Publish writes b to the object at url through c (the S3 target, as
// backup writes: full-object CRC-32C, published on commit).
func Publish(t testing.TB, c *s3store.Client, url string, b []byte) {
	t.Helper()
	bkt, name, err := c.Split(url)
	if err != nil {
		t.Fatal(err)
	}
	up, err := bkt.Put(context.Background(), name, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	if _, err := up.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// httpClient trusts the server's CA, if it has one.
func (s *Server) httpClient() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if s.CAFile == "" {
		return c
	}
	b, err := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	if err == nil {
		pool.AppendCertsFromPEM(b)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.Transport = tr
	return c
}

// writeTLS writes a new CA and a certificate for 127.0.0.1 it signed.
func writeTLS(caFile, certFile, keyFile string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s3test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", kb}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// CreateBucket creates a bucket or fails the test (see [Server.MakeBucket]).
func (s *Server) CreateBucket(t testing.TB, name string, objectLock bool) {
	t.Helper()
	if err := s.MakeBucket(context.Background(), name, objectLock); err != nil {
		t.Fatal(err)
	}
}

// MakeBucket creates a bucket; with objectLock it is created with object
// lock enabled, which also turns its versioning on.
func (s *Server) MakeBucket(ctx context.Context, name string, objectLock bool) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if objectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := s.client().CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %q: %w", name, err)
	}
	return nil
}

// Env returns the environment for a child process that talks to the
// server, as KEY=VALUE: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, AWS_ENDPOINT_URL_S3 (read by the SDK itself) and
// ETCDSAFE_S3_ENDPOINT (the same, for scripts that pass --s3-endpoint).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		// the SDK's own variable: etcdsafe needs no --s3-endpoint
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"ETCDSAFE_S3_ENDPOINT=" + s.Endpoint,
	}
}
