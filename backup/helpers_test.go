package backup

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/store"
)

// realDB is the snapshot etcdctl saved from a real kube-apiserver's etcd.
var realDB = filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db")

// identity returns a new X25519 identity.
func identity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fileOptions are Options backing up realDB into dir, encrypted to id.
func fileOptions(dir string, id *age.X25519Identity) Options {
	return Options{DB: realDB, Outputs: []Output{{Target: store.NewLocal(dir)}}, Recipients: []age.Recipient{id.Recipient()},
		Fingerprints: []string{archive.RecipientFingerprint(id.Recipient().String())}, Cluster: "c", Host: "h"}
}

// names returns the names in dir, sorted, the lock file left out.
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if de.Name() != fsx.LockName {
			out = append(out, de.Name())
		}
	}
	sort.Strings(out)
	return out
}

// stockEntries opens an archive as `age -d | zstd -d | tar -t` would, with
// the same libraries (not this module's reader), and returns each entry's
// content hash by name.
func stockEntries(t *testing.T, r io.Reader, id age.Identity) map[string]string {
	t.Helper()
	if id != nil {
		ar, err := age.Decrypt(r, id)
		if err != nil {
			t.Fatalf("age -d: %v", err)
		}
		r = ar
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		s := sha256.New()
		if _, err := io.Copy(s, tr); err != nil {
			t.Fatal(err)
		}
		out[h.Name] = hex.EncodeToString(s.Sum(nil))
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// kubeDir builds a small /etc/kubernetes look-alike with extra
// incompressible bytes, so that archives span many age chunks.
func kubeDir(t *testing.T, extra int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "kubernetes")
	files := map[string][]byte{
		"pki/ca.crt": []byte("-----BEGIN CERTIFICATE-----\nfake\n"), "pki/ca.key": []byte("secret\n"),
		"manifests/etcd.yaml": []byte("apiVersion: v1\nkind: Pod\n"), "tmp/cache.bin": []byte("excluded"),
	}
	if extra > 0 {
		b := make([]byte, extra)
		_, _ = rand.Read(b)
		files["pki/big.bin"] = b
	}
	for p, b := range files {
		p = filepath.Join(d, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// fakeBackup puts an archive and its sidecar dated at into dir.
func fakeBackup(t *testing.T, dir string, at time.Time, cluster, host, name string) string {
	t.Helper()
	content := []byte("archive " + name)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(content)
	sc := &archive.Sidecar{Version: archive.SidecarVersion, Archive: name, FormatVersion: 1, Created: at,
		Cluster: cluster, Host: host, ArchiveSize: int64(len(content)), ArchiveSHA256: hex.EncodeToString(s[:]), Encrypted: true}
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive.SidecarPath(p), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
