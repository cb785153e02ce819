package restore

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/etcdsafe/etcdsafe/archive"
)

// craftEntry is one entry of a hand-made archive.
type craftEntry struct {
	path, typ, target, content string
}

// craftArchive writes an unencrypted archive by hand (the Writer refuses
// such trees), with a consistent manifest, so only restore's own checks
// stand between the entries and the file system.
func craftArchive(t *testing.T, snap string, entries []craftEntry) string {
	t.Helper()
	sb, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]craftEntry{{path: archive.SnapshotPath, typ: archive.TypeFile, content: string(sb)}}, entries...)
	m := archive.Manifest{FormatVersion: 1, Tool: "test", Created: time.Unix(0, 0).UTC(), DBSize: int64(len(sb))}
	for _, e := range all {
		ei := archive.EntryInfo{Path: e.path, Type: e.typ, Mode: 0o600, ModTime: time.Unix(0, 0).UTC(), LinkTarget: e.target}
		if e.typ == archive.TypeFile {
			sum := sha256.Sum256([]byte(e.content))
			ei.Size, ei.SHA256 = int64(len(e.content)), hex.EncodeToString(sum[:])
		}
		if e.typ == archive.TypeDir {
			ei.Mode = 0o700
		}
		m.Entries = append(m.Entries, ei)
	}
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "crafted.tar.zst")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	write := func(h *tar.Header, body string) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: archive.ManifestPath, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mb)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}, string(mb))
	for i, e := range all {
		ei := m.Entries[i]
		h := &tar.Header{Name: ei.Path, Mode: int64(ei.Mode), ModTime: ei.ModTime, Format: tar.FormatPAX}
		switch e.typ {
		case archive.TypeFile:
			h.Typeflag, h.Size = tar.TypeReg, ei.Size
		case archive.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, ei.Path+"/"
		case archive.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.target
		}
		write(h, e.content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCraftedArchiveEscapes: entries that would land outside the kube dir
// are refused, and nothing is written outside it, nor the data dir.
func TestCraftedArchiveEscapes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	outside := t.TempDir()
	cases := []struct {
		name    string
		entries []craftEntry
		wantErr error
	}{
		{"dot-dot path", []craftEntry{{path: "kubernetes/../escaped", typ: archive.TypeFile, content: "x"}}, archive.ErrNotArchive},
		{"absolute path", []craftEntry{{path: "/" + filepath.Join(outside, "escaped")[1:], typ: archive.TypeFile, content: "x"}}, archive.ErrNotArchive},
		{"file through an absolute symlink", []craftEntry{
			{path: "kubernetes/pki", typ: archive.TypeSymlink, target: outside},
			{path: "kubernetes/pki/escaped", typ: archive.TypeFile, content: "x"},
		}, archive.ErrTampered},
		{"file through a relative symlink", []craftEntry{
			{path: "kubernetes/up", typ: archive.TypeSymlink, target: "../../../../../../../../" + outside},
			{path: "kubernetes/up/escaped", typ: archive.TypeFile, content: "x"},
		}, archive.ErrTampered},
		{"dir through a symlink", []craftEntry{
			{path: "kubernetes/m", typ: archive.TypeSymlink, target: outside},
			{path: "kubernetes/m/sub", typ: archive.TypeDir},
		}, archive.ErrTampered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arch := craftArchive(t, f.snap, tc.entries)
			dir := t.TempDir()
			dataDir, kube := filepath.Join(dir, "etcd"), filepath.Join(dir, "kubernetes")
			p, err := Prepare(context.Background(), Options{Source: arch, AllowUnencrypted: true, DataDir: dataDir, KubeDir: kube})
			if err == nil {
				p.Close()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("want %v, got %v", tc.wantErr, err)
			}
			for _, d := range []string{outside, dir} {
				ents, _ := os.ReadDir(d)
				if len(ents) != 0 {
					t.Fatalf("%s was written to: %v", d, ents)
				}
			}
		})
	}
}

// TestKubeDirRestore: modes and links come back, --only selects, existing
// identical files are left alone, differing ones are refused and listed,
// and replaced with Force while the old one is kept.
func TestKubeDirRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	arch := craftArchive(t, f.snap, []craftEntry{
		{path: "kubernetes/admin.conf", typ: archive.TypeFile, content: "admin"},
		{path: "kubernetes/pki", typ: archive.TypeDir},
		{path: "kubernetes/pki/ca.crt", typ: archive.TypeFile, content: "ca"},
		{path: "kubernetes/pki/current.pem", typ: archive.TypeSymlink, target: "/var/lib/kubelet/pki/kubelet-client-2026.pem"},
		{path: "kubernetes/manifests", typ: archive.TypeDir},
		{path: "kubernetes/manifests/kube-apiserver.yaml", typ: archive.TypeFile, content: "apiserver"},
	})
	run := func(t *testing.T, kube string, force bool, only ...string) (*Plan, *Result, error) {
		t.Helper()
		dataDir := filepath.Join(t.TempDir(), "etcd")
		p, err := Prepare(context.Background(), Options{Source: arch, AllowUnencrypted: true, DataDir: dataDir, KubeDir: kube, Only: only, Force: force})
		if err != nil {
			return p, nil, err
		}
		defer p.Close()
		res, err := p.Execute(context.Background())
		return p, res, err
	}
	t.Run("only pki into an empty dir", func(t *testing.T) {
		kube := filepath.Join(t.TempDir(), "k")
		p, res, err := run(t, kube, false, "pki")
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, c := range p.KubeChanges {
			paths = append(paths, c.Path)
		}
		if !slices.Equal(paths, []string{"pki", "pki/ca.crt", "pki/current.pem"}) || res.KubeCreated != 3 {
			t.Fatalf("changes %v, result %+v", paths, res)
		}
		if _, err := os.Lstat(filepath.Join(kube, "admin.conf")); !errors.Is(err, os.ErrNotExist) {
			t.Error("admin.conf restored despite --only pki")
		}
		st, err := os.Stat(filepath.Join(kube, "pki", "ca.crt"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("ca.crt: %v %v", st, err)
		}
		if l, err := os.Readlink(filepath.Join(kube, "pki", "current.pem")); err != nil || l != "/var/lib/kubelet/pki/kubelet-client-2026.pem" {
			t.Errorf("link: %q %v", l, err)
		}
	})
	t.Run("conflicts listed, then forced", func(t *testing.T) {
		kube := filepath.Join(t.TempDir(), "k")
		if err := os.MkdirAll(filepath.Join(kube, "pki"), 0o700); err != nil {
			t.Fatal(err)
		}
		for p, b := range map[string]string{"admin.conf": "admin" /* identical */, "pki/ca.crt": "other ca"} {
			if err := os.WriteFile(filepath.Join(kube, p), []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := run(t, kube, false)
		var ce *ConflictError
		if !errors.As(err, &ce) || !slices.Equal(ce.Paths, []string{"pki/ca.crt"}) {
			t.Fatalf("want a conflict on pki/ca.crt, got %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(kube, "pki", "ca.crt")); string(b) != "other ca" {
			t.Fatal("conflicting file overwritten without force")
		}
		p, res, err := run(t, kube, true)
		if err != nil {
			t.Fatal(err)
		}
		if res.KubeReplaced != 1 || res.KubeUnchanged < 2 {
			t.Errorf("result %+v", res)
		}
		if b, _ := os.ReadFile(filepath.Join(kube, "pki", "ca.crt")); string(b) != "ca" {
			t.Error("not replaced with force")
		}
		var backup string
		for _, c := range p.KubeChanges {
			if c.Action == "replace" {
				backup = c.Backup
			}
		}
		if b, err := os.ReadFile(filepath.Join(kube, backup)); err != nil || string(b) != "other ca" {
			t.Errorf("old file not kept as %q: %v", backup, err)
		}
		// Manifests are applied last.
		if last := p.KubeChanges[len(p.KubeChanges)-1].Path; last != "manifests/kube-apiserver.yaml" {
			t.Errorf("last applied %s", last)
		}
	})
	t.Run("snapshot source has no kube dir", func(t *testing.T) {
		_, err := Prepare(context.Background(), Options{Source: f.snap, DataDir: filepath.Join(t.TempDir(), "e"), KubeDir: t.TempDir()})
		if !errors.Is(err, ErrNoKubeDir) {
			t.Fatalf("want ErrNoKubeDir, got %v", err)
		}
	})
}
