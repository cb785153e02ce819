package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newX25519(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// kubeTree describes what makeKubeDir creates, relative to the root.
type kubeFile struct {
	rel   string
	mode  os.FileMode
	data  string
	link  string // symlink target when set
	isDir bool
}

var testTree = []kubeFile{
	{rel: "manifests", isDir: true, mode: 0o755},
	{rel: "manifests/etcd.yaml", mode: 0o600, data: "apiVersion: v1\nkind: Pod\n"},
	{rel: "pki", isDir: true, mode: 0o750},
	{rel: "pki/ca.crt", mode: 0o644, data: "-----BEGIN CERTIFICATE-----\n"},
	{rel: "pki/ca.key", mode: 0o600, data: "-----BEGIN PRIVATE KEY-----\n"},
	{rel: "pki/current.crt", link: "ca.crt"},
	{rel: "pki/abs-link", link: "/etc/hostname"},
	{rel: "bin", isDir: true, mode: 0o2755},
	{rel: "bin/hook.sh", mode: 0o755, data: "#!/bin/sh\nexit 0\n"},
	{rel: "empty.conf", mode: 0o640, data: ""},
	{rel: "admin.conf", mode: 0o600, data: "apiVersion: v1\nkind: Config\n"},
}

// makeKubeDir builds testTree plus an excluded file, an excluded directory
// and a unix socket (which must be skipped), with distinct mtimes.
func makeKubeDir(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "kube")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range testTree {
		p := filepath.Join(root, f.rel)
		var err error
		switch {
		case f.isDir:
			err = os.Mkdir(p, 0o700)
		case f.link != "":
			err = os.Symlink(f.link, p)
		default:
			err = os.WriteFile(p, []byte(f.data), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, extra := range []string{"admin.conf.bak", "tmp/scratch"} {
		p := filepath.Join(root, extra)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("unix", filepath.Join(root, "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// Apply modes and times deepest first so directory times stick.
	for i := len(testTree) - 1; i >= 0; i-- {
		f := testTree[i]
		p := filepath.Join(root, f.rel)
		if f.link != "" {
			continue
		}
		if err := os.Chmod(p, fileMode(uint32(f.mode))); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC).Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var testExcludes = []string{"*.bak", "tmp"}

type archiveSpec struct {
	snapshot []byte
	kubeDir  string
	opts     WriterOptions
}

func writeArchive(t testing.TB, s archiveSpec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if s.opts.Manifest.Tool == "" {
		s.opts.Manifest = Manifest{Tool: "etcdsafe", ToolVersion: "test", Host: "master-0", Revision: 42,
			Created: time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)}
	}
	w, err := NewWriter(&buf, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.snapshot != nil {
		if err := w.AddSnapshot(bytes.NewReader(s.snapshot), int64(len(s.snapshot)), sumHex(s.snapshot)); err != nil {
			t.Fatal(err)
		}
	}
	if s.kubeDir != "" {
		if err := w.AddDir(s.kubeDir, testExcludes); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extractSnapshot extracts the snapshot into dir/snapshot.db, returning
// its path and the manifest only when the whole archive verified.
func extractSnapshot(src io.Reader, opts ReaderOptions, dir string) (string, *Manifest, error) {
	res, err := Extract(context.Background(), src, opts, ExtractOptions{SnapshotTo: filepath.Join(dir, "snapshot.db")})
	if err != nil {
		return "", nil, err
	}
	return res.Snapshot, res.Manifest, nil
}

// extractKubeDir stages the kube dir under dst and then gives every entry
// its mode, times and owner, deepest first, as restore does when it puts
// the staged entries in place.
func extractKubeDir(src io.Reader, opts ReaderOptions, dst string) error {
	res, err := Extract(context.Background(), src, opts, ExtractOptions{KubeDirTo: dst})
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	asRoot := os.Geteuid() == 0
	for i := len(res.Manifest.Entries) - 1; i >= 0; i-- {
		e := res.Manifest.Entries[i]
		rel, ok := strings.CutPrefix(e.Path, KubeDirPath+"/")
		if !ok {
			continue
		}
		if e.Type == TypeSymlink {
			if asRoot {
				if err := root.Lchown(rel, e.UID, e.GID); err != nil {
					return err
				}
			}
			continue
		}
		if err := e.ApplyMeta(root, rel, asRoot); err != nil {
			return err
		}
	}
	return nil
}
