package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
)

// cancelAfter cancels its context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// craftKube builds a plain archive whose manifest agrees with its
// entries: a snapshot, then the given kube dir entries.
func craftKube(t *testing.T, snap []byte, entries ...craftEntry) []byte {
	t.Helper()
	all := append([]craftEntry{{tar.Header{Name: SnapshotPath, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(snap))}, snap}}, entries...)
	var infos []EntryInfo
	for _, e := range all {
		ei := EntryInfo{Path: strings.TrimSuffix(e.hdr.Name, "/"), Mode: uint32(e.hdr.Mode), Size: e.hdr.Size, LinkTarget: e.hdr.Linkname}
		switch e.hdr.Typeflag {
		case tar.TypeReg:
			ei.Type, ei.SHA256 = TypeFile, sumHex(e.body)
		case tar.TypeDir:
			ei.Type = TypeDir
		case tar.TypeSymlink:
			ei.Type = TypeSymlink
		}
		infos = append(infos, ei)
	}
	return craft(t, manifestJSON(t, 1, infos...), all, true)
}

func symlinkEntry(name, target string) craftEntry {
	return craftEntry{tar.Header{Name: name, Typeflag: tar.TypeSymlink, Mode: 0o777, Linkname: target}, nil}
}

func fileEntry(name, body string) craftEntry {
	return craftEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, []byte(body)}
}

// TestExtract runs the one read path over what every reader relies on:
// traversal and symlink parents refused, plain archives refused without
// Insecure, truncation and cancellation reported as such, and nothing
// left behind by a failure but a partial kube dir staging tree.
func TestExtract(t *testing.T) {
	t.Parallel()
	id := newX25519(t)
	enc := ReaderOptions{Identities: []age.Identity{id}}
	plain := ReaderOptions{Insecure: true}
	snap := randBytes(t, 200<<10)
	kube := makeKubeDir(t)
	arch := writeArchive(t, archiveSpec{snapshot: snap, kubeDir: kube, opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})
	outside := t.TempDir()
	big := strings.Repeat("x", maxKeptSize+1)

	type dirs struct{ stage, kube, outside string }
	tests := []struct {
		name   string
		data   []byte
		opts   ReaderOptions
		x      ExtractOptions // SnapshotTo and KubeDirTo are filled in
		setup  func(t *testing.T, d dirs)
		cancel int // cancel the context after this many bytes (-1: before)
		want   error
		check  func(t *testing.T, res *Extracted, d dirs)
	}{
		{name: "encrypted, everything", data: arch, opts: enc,
			x: ExtractOptions{SHA256: true, Keep: func(rel string) bool { return strings.HasSuffix(rel, ".yaml") || rel == "admin.conf" }},
			check: func(t *testing.T, res *Extracted, d dirs) {
				if got, _ := os.ReadFile(res.Snapshot); !bytes.Equal(got, snap) {
					t.Error("snapshot differs")
				}
				if st, _ := os.Stat(res.Snapshot); st.Mode().Perm() != 0o600 {
					t.Errorf("snapshot mode %v", st.Mode().Perm())
				}
				if sum := sha256.Sum256(arch); res.ArchiveSHA256 != fmt.Sprintf("%x", sum) || res.ArchiveBytes != int64(len(arch)) {
					t.Errorf("archive %d bytes sha256 %s, want %d %x", res.ArchiveBytes, res.ArchiveSHA256, len(arch), sum)
				}
				if !res.Encrypted || res.Entries != 1+1+len(testTree) {
					t.Errorf("encrypted %v, %d entries", res.Encrypted, res.Entries)
				}
				if want := []string{"admin.conf", "manifests/etcd.yaml"}; !slices.Equal(slices.Sorted(mapKeys(res.Kept)), want) ||
					string(res.Kept["admin.conf"]) != "apiVersion: v1\nkind: Config\n" {
					t.Errorf("kept %q, want %v", res.Kept, want)
				}
				for _, f := range testTree {
					st, err := os.Lstat(filepath.Join(d.kube, f.rel))
					switch {
					case err != nil:
						t.Errorf("%s not staged: %v", f.rel, err)
					case f.link != "":
						if l, _ := os.Readlink(filepath.Join(d.kube, f.rel)); l != f.link {
							t.Errorf("%s: link %q", f.rel, l)
						}
					case f.isDir && st.Mode().Perm() != 0o700, !f.isDir && st.Mode().Perm() != 0o600:
						t.Errorf("%s staged with mode %v, want private", f.rel, st.Mode())
					}
				}
			}},
		{name: "symlink parent made by the archive", opts: plain,
			data: craftKube(t, snap, symlinkEntry("kubernetes/evil", outside), fileEntry("kubernetes/evil/passwd", "pwned")),
			want: ErrTampered},
		{name: "relative symlink parent", opts: plain,
			data: craftKube(t, snap, symlinkEntry("kubernetes/up", "../../.."), fileEntry("kubernetes/up/passwd", "pwned")),
			want: ErrTampered},
		{name: "symlink parent within the destination", opts: plain,
			data: craftKube(t, snap, craftEntry{tar.Header{Name: "kubernetes/real/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
				symlinkEntry("kubernetes/link", "real"), fileEntry("kubernetes/link/x", "through the link")),
			want: ErrTampered,
			check: func(t *testing.T, _ *Extracted, d dirs) {
				if _, err := os.Lstat(filepath.Join(d.kube, "real", "x")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("written through a symlink: %v", err)
				}
			}},
		{name: "symlink already in the destination", opts: plain,
			data:  craftKube(t, snap, fileEntry("kubernetes/pki/passwd", "pwned")),
			setup: func(t *testing.T, d dirs) { mustSymlink(t, d.outside, filepath.Join(d.kube, "pki")) },
			want:  ErrTampered},
		{name: "file where a dir was made", opts: plain,
			data: craftKube(t, snap, fileEntry("kubernetes/a/b", "x"), fileEntry("kubernetes/a", "y")),
			want: ErrTampered},
		{name: "plain archive without Insecure", data: craftKube(t, snap), opts: ReaderOptions{}, want: ErrUnencrypted},
		{name: "wrong key", data: arch, opts: ReaderOptions{Identities: []age.Identity{newX25519(t)}}, want: ErrWrongKey},
		{name: "truncated", data: arch[:len(arch)-100], opts: enc, want: ErrTruncated},
		{name: "no snapshot", data: craft(t, manifestJSON(t, 1), nil, true), opts: plain, want: ErrTampered},
		{name: "cancelled before", data: arch, opts: enc, cancel: -1, want: context.Canceled},
		{name: "cancelled while reading", data: arch, opts: enc, cancel: len(arch) / 2, want: context.Canceled},
		{name: "named", data: arch[:len(arch)-100], opts: enc, x: ExtractOptions{Name: "nightly.tar.zst.age"}, want: ErrTruncated,
			check: func(t *testing.T, _ *Extracted, _ dirs) {}},
		{name: "large file not kept", opts: plain,
			data: craftKube(t, snap, fileEntry("kubernetes/big.yaml", big), fileEntry("kubernetes/small.yaml", "s")),
			x:    ExtractOptions{Keep: func(string) bool { return true }},
			check: func(t *testing.T, res *Extracted, d dirs) {
				if _, ok := res.Kept["big.yaml"]; ok || string(res.Kept["small.yaml"]) != "s" {
					t.Errorf("kept %v", slices.Sorted(mapKeys(res.Kept)))
				}
				if st, err := os.Stat(filepath.Join(d.kube, "big.yaml")); err != nil || st.Size() != int64(len(big)) {
					t.Errorf("big.yaml not staged whole: %v", err)
				}
			}},
		{name: "OnStaged stops it", data: arch, opts: enc, want: errStop,
			x: ExtractOptions{OnStaged: func(e *EntryInfo) error {
				if e.Path == SnapshotPath {
					return errStop
				}
				return nil
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dirs{stage: t.TempDir(), kube: t.TempDir(), outside: outside}
			if tc.setup != nil {
				tc.setup(t, d)
			}
			x := tc.x
			x.SnapshotTo, x.KubeDirTo = filepath.Join(d.stage, "snapshot.db"), d.kube
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var src io.Reader = bytes.NewReader(tc.data)
			switch {
			case tc.cancel < 0:
				cancel()
			case tc.cancel > 0:
				src = &cancelAfter{r: src, n: tc.cancel, cancel: cancel}
			}
			res, err := Extract(ctx, src, tc.opts, x)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if !errors.Is(err, tc.want) || res != nil {
					t.Fatalf("Extract: %v, want %v", err, tc.want)
				}
				if errors.Is(tc.want, context.Canceled) && isAny(err, []error{ErrTampered, ErrTruncated}) {
					t.Fatalf("a cancellation reported as damage: %v", err)
				}
				if x.Name != "" && !strings.HasPrefix(err.Error(), "archive "+x.Name+": ") {
					t.Errorf("error %q does not name the archive", err)
				}
				if left, _ := os.ReadDir(d.stage); len(left) != 0 {
					t.Errorf("snapshot staging dir holds %v after the failure", left)
				}
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Fatalf("written outside the destination: %v", left)
			}
			if tc.check != nil {
				tc.check(t, res, d)
			}
		})
	}
}

var errStop = errors.New("stop")

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestExtractExplains: given the archive's path, Extract tells a flip in
// age's last chunk (the file has its sidecar's size) from a cut, and a
// damaged recipient stanza from a wrong key; on a stream it cannot.
func TestExtractExplains(t *testing.T) {
	t.Parallel()
	id := newX25519(t)
	arch := writeArchive(t, archiveSpec{snapshot: randBytes(t, 100<<10), opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})
	// line 2 is "-> X25519 <share>", line 3 the wrapped file key (base64)
	lines := bytes.SplitN(arch, []byte("\n"), 4)
	stanza := len(lines[0]) + 1 + len(lines[1]) + 1 + 5
	damaged := bytes.Clone(arch)
	damaged[stanza] = map[bool]byte{true: 'B', false: 'A'}[damaged[stanza] == 'A']
	tests := []struct {
		name       string
		data       []byte
		stream     error // without Path
		file       error // with Path and a sidecar
		notFileErr error
	}{
		{"flip in the last chunk", flip(arch, len(arch)-5), ErrTruncated, ErrTampered, ErrTruncated},
		{"changed wrapped key", damaged, ErrWrongKey, ErrTampered, ErrWrongKey},
		{"cut", arch[:len(arch)-5], ErrTruncated, ErrTruncated, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.tar.zst.age")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			sc := &Sidecar{Version: SidecarVersion, Archive: "a.tar.zst.age", ArchiveSize: int64(len(arch)),
				ArchiveSHA256: sumHex(arch), Recipients: []string{RecipientFingerprint(id.Recipient().String())}}
			b, err := sc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(SidecarPath(p), b, 0o600); err != nil {
				t.Fatal(err)
			}
			opts := ReaderOptions{Identities: []age.Identity{id}}
			if _, err := Extract(context.Background(), bytes.NewReader(tc.data), opts, ExtractOptions{}); !errors.Is(err, tc.stream) {
				t.Errorf("stream: %v, want %v", err, tc.stream)
			}
			_, err = Extract(context.Background(), bytes.NewReader(tc.data), opts, ExtractOptions{Path: p, Name: p})
			if !errors.Is(err, tc.file) || tc.notFileErr != nil && errors.Is(err, tc.notFileErr) {
				t.Errorf("file: %v, want %v and not %v", err, tc.file, tc.notFileErr)
			}
		})
	}
}
