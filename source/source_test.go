package source_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
)

const (
	demoDB    = "../testdata/generated/demo.db"
	demoEnc   = "../testdata/generated/encryption-config.yaml"
	secretKey = "/registry/secrets/payments/stripe"
)

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeArchive writes the demo snapshot as an archive, with a kube dir whose
// kube-apiserver manifest names the EncryptionConfiguration (a decoy with
// a wrong key sorts first). Without id the archive is not encrypted.
func makeArchive(t *testing.T, id *archive.Identity) string {
	t.Helper()
	dir := t.TempDir()
	kube := filepath.Join(dir, "kubernetes")
	enc := mustRead(t, demoEnc)
	mustWrite(t, filepath.Join(kube, "aaa-decoy.yaml"), bytes.Replace(enc, []byte("name: key1"), []byte("name: decoy"), 1))
	mustWrite(t, filepath.Join(kube, "encryption-config.yaml"), enc)
	mustWrite(t, filepath.Join(kube, "manifests", "kube-apiserver.yaml"),
		[]byte("spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --encryption-provider-config=/etc/kubernetes/encryption-config.yaml\n    image: registry.k8s.io/kube-apiserver:v1.31.4\n    name: kube-apiserver\n"))
	opts := archive.WriterOptions{Insecure: id == nil, Manifest: archive.Manifest{Tool: "etcdsafe"}}
	if id != nil {
		recips, err := archive.ParseRecipients([]string{id.Recipient()})
		if err != nil {
			t.Fatal(err)
		}
		opts.Recipients = recips
	}
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	snap := mustRead(t, demoDB)
	sum := sha256.Sum256(snap)
	if err := w.AddSnapshot(bytes.NewReader(snap), int64(len(snap)), hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(kube, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return mustWrite(t, filepath.Join(dir, "backup.tar.zst.age"), buf.Bytes())
}

func newIdentity(t *testing.T) *archive.Identity {
	t.Helper()
	id, err := archive.GenerateIdentity(false)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func identities(id *archive.Identity) func() ([]age.Identity, error) {
	return func() ([]age.Identity, error) { return []age.Identity{id.Age()}, nil }
}

// rawDB is the demo snapshot without its SHA-256 trailer: a copied
// member/snap/db.
func rawDB(t *testing.T, p string) string {
	t.Helper()
	b := mustRead(t, demoDB)
	return mustWrite(t, p, b[:len(b)-snapshot.TrailerSize])
}

// entry finds key's newest entry.
func entry(t *testing.T, s *source.Source, key string) inspect.Entry {
	t.Helper()
	es, _, err := s.Snapshot.Index(context.Background(), inspect.Query{Exact: []byte(key)})
	if err != nil || len(es) != 1 {
		t.Fatalf("index %s: %v, %d entries", key, err, len(es))
	}
	return es[0]
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in %s: %v", dir, left)
	}
}

// TestOpenKinds: every kind of SOURCE opens, is named for messages as the
// user knows it, finds the keys of encrypted values where they are, is
// told unchecked when nothing can check it, and leaves nothing staged
// after Close.
func TestOpenKinds(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	arch, plain := makeArchive(t, id), makeArchive(t, nil)
	dir := t.TempDir()
	raw := rawDB(t, filepath.Join(dir, "raw.db"))
	dataDir := filepath.Join(dir, "etcd")
	rawDB(t, filepath.Join(dataDir, "member", "snap", "db"))
	for _, tc := range []struct {
		name      string
		path      string
		stdin     string // file fed as standard input
		opts      source.Options
		wantName  string
		archive   bool
		unchecked string // OnUnchecked's why
		secret    bool   // the Secret decrypts
		trailer   snapshot.TrailerStatus
	}{
		{name: "snapshot", path: demoDB, wantName: demoDB, trailer: snapshot.TrailerValid},
		{name: "snapshot with config", path: demoDB, opts: source.Options{DecryptionConfigPath: demoEnc}, wantName: demoDB, secret: true, trailer: snapshot.TrailerValid},
		{name: "raw db", path: raw, wantName: raw, unchecked: "has no SHA-256 trailer (a copy of member/snap/db)"},
		{name: "raw db checked", path: raw, opts: source.Options{Check: true}, wantName: raw},
		{name: "data dir", path: dataDir, wantName: dataDir, unchecked: "is a data dir: its db has no SHA-256 trailer"},
		{name: "archive", path: arch, opts: source.Options{Identities: identities(id)}, wantName: arch + " (its etcd/snapshot.db)", archive: true, secret: true, trailer: snapshot.TrailerValid},
		{name: "archive, config given", path: arch, opts: source.Options{Identities: identities(id), DecryptionConfig: mustRead(t, demoEnc)}, wantName: arch + " (its etcd/snapshot.db)", archive: true, secret: true, trailer: snapshot.TrailerValid},
		{name: "plain archive", path: plain, opts: source.Options{AllowUnencrypted: true}, wantName: plain + " (its etcd/snapshot.db)", archive: true, secret: true, trailer: snapshot.TrailerValid},
		{name: "stdin snapshot", path: "-", stdin: demoDB, wantName: "standard input", trailer: snapshot.TrailerValid},
		{name: "stdin raw db", path: "-", stdin: raw, wantName: "standard input", unchecked: "has no SHA-256 trailer (a copy of member/snap/db)"},
		{name: "stdin archive", path: "-", stdin: arch, opts: source.Options{Identities: identities(id)}, wantName: "standard input (its etcd/snapshot.db)", archive: true, secret: true, trailer: snapshot.TrailerValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			o := tc.opts
			o.TmpDir, o.Prefix = tmp, "/registry/"
			if tc.stdin != "" {
				f, err := os.Open(tc.stdin)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				o.Stdin = f
			}
			var unchecked, unencrypted []string
			o.OnUnchecked = func(name, why string) { unchecked = append(unchecked, name+": "+why) }
			o.OnUnencrypted = func(name string) { unencrypted = append(unencrypted, name) }
			ctx := context.Background()
			s, err := source.Open(ctx, tc.path, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verdict(ctx); err != nil {
				t.Errorf("verdict: %v", err)
			}
			if s.Name != tc.wantName || s.Archive != tc.archive || s.Prefix != "/registry" {
				t.Errorf("name %q archive %v prefix %q, want %q %v /registry", s.Name, s.Archive, s.Prefix, tc.wantName, tc.archive)
			}
			if s.Trailer() != tc.trailer || s.Checked() != tc.opts.Check {
				t.Errorf("trailer %v checked %v, want %v %v", s.Trailer(), s.Checked(), tc.trailer, tc.opts.Check)
			}
			var wantUnchecked []string
			if tc.unchecked != "" {
				wantUnchecked = []string{tc.wantName + ": " + tc.unchecked}
			}
			if strings.Join(unchecked, "|") != strings.Join(wantUnchecked, "|") {
				t.Errorf("unchecked: %q, want %q", unchecked, wantUnchecked)
			}
			if wantPlain := tc.path == plain; (len(unencrypted) == 1 && unencrypted[0] == plain) != wantPlain {
				t.Errorf("unencrypted: %q", unencrypted)
			}
			obj, _, err := s.Render(entry(t, s, secretKey), source.RenderOptions{})
			switch {
			case tc.secret && (err != nil || obj.GetKind() != "Secret"):
				t.Errorf("render secret: %v", err)
			case !tc.secret && !errors.Is(err, decode.ErrEncrypted):
				t.Errorf("render secret without keys: %v, want ErrEncrypted", err)
			}
			if tc.stdin != "" || tc.archive {
				if left, _ := os.ReadDir(tmp); len(left) != 1 || !strings.HasPrefix(left[0].Name(), source.StagingPrefix) {
					t.Errorf("staged: %v", left)
				}
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			emptyDir(t, tmp)
		})
	}
}

// TestRender: the render options reach the object; text values and
// skipped objects are told apart by their sentinels.
func TestRender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := source.Open(ctx, demoDB, source.Options{DecryptionConfigPath: demoEnc, Prefix: "/registry"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Render(entry(t, s, "compact_rev_key"), source.RenderOptions{}); !errors.Is(err, source.ErrNotObject) {
		t.Errorf("compact_rev_key: %v, want ErrNotObject", err)
	}
	e := entry(t, s, secretKey)
	skip := func(v *decode.Value) bool { return v.Object.GetKind() == "Secret" }
	if _, _, err := s.Render(e, source.RenderOptions{Skip: skip}); !errors.Is(err, source.ErrSkipped) {
		t.Errorf("skip: %v, want ErrSkipped", err)
	}
	for _, raw := range []bool{false, true} {
		obj, _, err := s.Render(e, source.RenderOptions{Present: decode.PresentOptions{Raw: raw}})
		if err != nil {
			t.Fatal(err)
		}
		if rv := obj.GetResourceVersion(); (rv != "") != raw {
			t.Errorf("raw %v: resourceVersion %q", raw, rv)
		}
	}
}

// TestOpenFifoRefused: a fifo is refused before it is opened (which would
// block until a writer comes), as the user's mistake.
func TestOpenFifoRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := source.Open(context.Background(), fifo, source.Options{})
	var se *source.SpecialFileError
	if !errors.Is(err, source.ErrSpecialFile) || !errors.As(err, &se) || se.Type != "named pipe (fifo)" {
		t.Fatalf("got %v, want a SpecialFileError for a fifo", err)
	}
	if want := fifo + " is a named pipe (fifo), not a regular file: SOURCE is a snapshot, a db, a data dir, an archive, or - for standard input"; err.Error() != want {
		t.Errorf("message %q", err)
	}
}

// TestOpenSweepsStaging: what a killed run left staged is removed before
// an archive or standard input is staged, and reported; a plain file
// sweeps nothing.
func TestOpenSweepsStaging(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	stale := filepath.Join(tmp, source.StagingPrefix+"killed")
	mustWrite(t, filepath.Join(stale, fsx.StagingLockName), []byte("x"))
	mustWrite(t, filepath.Join(stale, "snapshot.db"), []byte("plaintext"))
	var swept []string
	o := source.Options{TmpDir: tmp, OnSwept: func(d string) { swept = append(swept, d) },
		OnSweepError: func(err error) { t.Errorf("sweep: %v", err) }}
	s, err := source.Open(context.Background(), demoDB, o)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if len(swept) != 0 {
		t.Fatalf("a plain file swept %v", swept)
	}
	f, err := os.Open(demoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o.Stdin = f
	if s, err = source.Open(context.Background(), "-", o); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if len(swept) != 1 || swept[0] != stale {
		t.Errorf("swept %v, want %s", swept, stale)
	}
	emptyDir(t, tmp)
}

// TestFailedOpenLeavesNothing: a wrong key, an archive or standard input
// that is no db, a broken decryption config: the error says why, and
// nothing is left staged.
func TestFailedOpenLeavesNothing(t *testing.T) {
	t.Parallel()
	arch := makeArchive(t, newIdentity(t))
	junk := bytes.Repeat([]byte("not a bbolt page "), 4096)
	badConfig := mustWrite(t, filepath.Join(t.TempDir(), "enc.yaml"), []byte("kind: EncryptionConfiguration\nresources: [[["))
	for _, tc := range []struct {
		name  string
		path  string
		stdin []byte
		opts  source.Options
		want  error
	}{
		{name: "no key", path: arch, want: archive.ErrWrongKey},
		{name: "wrong key", path: arch, opts: source.Options{Identities: identities(newIdentity(t))}, want: archive.ErrWrongKey},
		{name: "identities fail", path: arch, opts: source.Options{Identities: func() ([]age.Identity, error) { return nil, archive.ErrWrongKey }}, want: archive.ErrWrongKey},
		{name: "stdin junk", path: "-", stdin: junk, want: inspect.ErrNotSnapshot},
		{name: "stdin empty", path: "-", stdin: []byte{}, want: inspect.ErrNotSnapshot},
		{name: "bad decryption config", path: "-", stdin: junk, opts: source.Options{DecryptionConfigPath: badConfig}, want: decode.ErrBadEncryptionConfig},
		{name: "missing", path: filepath.Join(t.TempDir(), "nope"), want: os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			o := tc.opts
			o.TmpDir, o.Stdin = tmp, bytes.NewReader(tc.stdin)
			s, err := source.Open(context.Background(), tc.path, o)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if s != nil {
				t.Error("a source with the error")
			}
			if err != nil && strings.Contains(err.Error(), tmp) {
				t.Errorf("the error names the staged copy: %v", err)
			}
			emptyDir(t, tmp)
		})
	}
}

// TestVerdictFlipped: a snapshot whose SHA-256 trailer does not match
// opens, but nothing gets through the gate, and the damage wins over any
// other error.
func TestVerdictFlipped(t *testing.T) {
	t.Parallel()
	b := mustRead(t, demoDB)
	b[len(b)-1] ^= 1 // in the trailer: the db itself stays readable
	flipped := mustWrite(t, filepath.Join(t.TempDir(), "flipped.db"), b)
	ctx := context.Background()
	s, err := source.Open(ctx, flipped, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	w := s.Gate(ctx, &out)
	for range 2 {
		if n, err := w.Write([]byte("key\n")); n != 0 || !errors.Is(err, snapshot.ErrTrailerMismatch) {
			t.Errorf("write through the gate: %d, %v", n, err)
		}
	}
	if out.Len() != 0 {
		t.Errorf("through the gate: %q", out.String())
	}
	other := errors.New("a decoder broke")
	for _, err := range []error{nil, other} {
		if got := s.Settle(ctx, err); !errors.Is(got, snapshot.ErrTrailerMismatch) {
			t.Errorf("settle(%v) = %v", err, got)
		}
	}
	if err := s.Verdict(ctx); err == nil || err.Error() != flipped+" is damaged: "+snapshot.ErrTrailerMismatch.Error()+"; nothing was printed from it" {
		t.Errorf("verdict: %v", err)
	}
	if s.Trailer() != snapshot.TrailerMismatch {
		t.Errorf("trailer %v", s.Trailer())
	}
	// an interrupted reader does not wait for the verdict
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := s.Settle(cctx, other); got != other { //nolint:errorlint // the very error
		t.Errorf("settle when interrupted: %v", got)
	}

	// good: the gate lets everything through, Settle keeps err
	g, err := source.Open(ctx, demoDB, source.Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out.Reset()
	if _, err := g.Gate(ctx, &out).Write([]byte("ok\n")); err != nil || out.String() != "ok\n" {
		t.Errorf("good gate: %v %q", err, out.String())
	}
	if got := g.Settle(ctx, other); got != other { //nolint:errorlint // the very error
		t.Errorf("settle: %v", got)
	}
	if !g.Checked() {
		t.Error("page check did not run with Check")
	}
}

// TestOpenDamagedMeta: a db that does not open and whose trailer does not
// match is reported as damaged.
func TestOpenDamagedMeta(t *testing.T) {
	t.Parallel()
	b := mustRead(t, demoDB)
	for i := range 2 * 4096 {
		b[i] = 0 // both meta pages
	}
	p := mustWrite(t, filepath.Join(t.TempDir(), "meta.db"), b)
	_, err := source.Open(context.Background(), p, source.Options{})
	if !errors.Is(err, snapshot.ErrTrailerMismatch) {
		t.Errorf("got %v, want ErrTrailerMismatch", err)
	}
}
