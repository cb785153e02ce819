package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	snap := randBytes(t, 5<<20)
	kube := makeKubeDir(t)
	id := newX25519(t)
	var skipped []string
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Manifest:   Manifest{Tool: "etcdsafe", ToolVersion: "v0", Host: "m0", Revision: 7, EtcdVersion: "3.7.3"},
		OnSkip:     func(p string, _ error) { skipped = append(skipped, filepath.Base(p)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(kube, testExcludes); err != nil {
		t.Fatal(err)
	}
	if err := w.AddSnapshot(bytes.NewReader(snap), int64(len(snap)), sumHex(snap)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != "kubelet.sock" {
		t.Errorf("skipped %v, want [kubelet.sock]", skipped)
	}
	arch := buf.Bytes()
	opts := ReaderOptions{Identities: []age.Identity{id}}

	rep, err := Extract(context.Background(), bytes.NewReader(arch), opts, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// snapshot + root dir + every tree entry; excluded and socket absent.
	if want := 1 + 1 + len(testTree); rep.Entries != want {
		t.Errorf("verified %d entries, want %d", rep.Entries, want)
	}
	if rep.ArchiveBytes != int64(len(arch)) || !rep.Encrypted {
		t.Errorf("report %+v, archive is %d bytes", rep, len(arch))
	}
	m := rep.Manifest
	if m.FormatVersion != 1 || m.DBSize != int64(len(snap)) || m.Revision != 7 || m.Host != "m0" || m.Created.Location().String() != "UTC" {
		t.Errorf("manifest metadata: %+v", m)
	}
	for _, bad := range []string{"kubernetes/admin.conf.bak", "kubernetes/tmp", "kubernetes/tmp/scratch", "kubernetes/kubelet.sock"} {
		if m.Entry(bad) != nil {
			t.Errorf("manifest lists %s", bad)
		}
	}

	dst := t.TempDir()
	p, m2, err := extractSnapshot(bytes.NewReader(arch), opts, dst)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, snap) {
		t.Fatalf("extracted snapshot differs (err %v)", err)
	}
	if m2.DBSize != int64(len(snap)) {
		t.Errorf("manifest db size %d", m2.DBSize)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v", st.Mode().Perm())
	}
	if filepath.Dir(p) != dst {
		t.Errorf("snapshot written to %s, not into %s", p, dst)
	}

	out := t.TempDir()
	if err := extractKubeDir(bytes.NewReader(arch), opts, out); err != nil {
		t.Fatal(err)
	}
	compareTree(t, kube, out)
	if _, err := os.Lstat(filepath.Join(out, "admin.conf.bak")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("excluded file restored")
	}
}

// compareTree checks that every testTree entry in got matches want:
// type, content, permission bits, mtime (to the nanosecond) and link target.
func compareTree(t *testing.T, want, got string) {
	t.Helper()
	for _, f := range testTree {
		wp, gp := filepath.Join(want, f.rel), filepath.Join(got, f.rel)
		ws, err := os.Lstat(wp)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := os.Lstat(gp)
		if err != nil {
			t.Errorf("%s: %v", f.rel, err)
			continue
		}
		if ws.Mode() != gs.Mode() {
			t.Errorf("%s: mode %v, want %v", f.rel, gs.Mode(), ws.Mode())
		}
		if f.link != "" {
			if l, _ := os.Readlink(gp); l != f.link {
				t.Errorf("%s: link %q, want %q", f.rel, l, f.link)
			}
			continue
		}
		if !ws.ModTime().Equal(gs.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", f.rel, gs.ModTime(), ws.ModTime())
		}
		if !f.isDir {
			b, _ := os.ReadFile(gp)
			if string(b) != f.data {
				t.Errorf("%s: content %q, want %q", f.rel, b, f.data)
			}
		}
	}
}

// TestStockTools opens an archive exactly as `age -d | zstd -d | tar -x`
// would: age.Decrypt, a default zstd decoder, archive/tar.
func TestStockTools(t *testing.T) {
	t.Parallel()
	snap := randBytes(t, 2*frameSize+300<<10) // three zstd frames, read as one stream
	kube := makeKubeDir(t)
	id := newX25519(t)
	arch := writeArchive(t, archiveSpec{snapshot: snap, kubeDir: kube, opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})

	dec, err := age.Decrypt(bytes.NewReader(arch), id)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(dec)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	files := map[string][]byte{}
	hdrs := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		hdrs[h.Name] = h
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	if len(names) < 3 || names[0] != "MANIFEST.json" || names[1] != "etcd/snapshot.db" || names[2] != "kubernetes/" {
		t.Fatalf("entry order %v", names)
	}
	if !bytes.Equal(files["etcd/snapshot.db"], snap) {
		t.Fatal("etcd/snapshot.db is not byte-identical to the snapshot")
	}
	m, err := ParseManifest(files["MANIFEST.json"])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != len(names)-1 {
		t.Fatalf("manifest has %d entries, tar has %d after it", len(m.Entries), len(names)-1)
	}
	for i, e := range m.Entries {
		name := names[i+1]
		if strings.TrimSuffix(name, "/") != e.Path {
			t.Errorf("manifest entry %d is %q, tar has %q", i, e.Path, name)
		}
		if e.Type == TypeFile && sumHex(files[name]) != e.SHA256 {
			t.Errorf("%s: manifest sha256 differs from content", name)
		}
	}
	if h := hdrs["kubernetes/pki/current.crt"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "ca.crt" {
		t.Errorf("symlink header %+v", h)
	}
	if h := hdrs["kubernetes/bin/"]; h == nil || h.Mode != 0o2755 {
		t.Errorf("setgid dir header %+v", h)
	}
	if h := hdrs["kubernetes/pki/ca.key"]; h == nil || h.Mode != 0o600 || h.Uid != os.Getuid() {
		t.Errorf("ca.key header %+v", h)
	}
}

// chunkedReader returns at most n bytes per Read.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestSizeBoundaries(t *testing.T) {
	t.Parallel()
	const chunk = 64 << 10 // age's STREAM chunk
	sizes := []int{0, 1, chunk - 1, chunk, chunk + 1, 2*chunk + 7, 1<<20 + 3}
	steps := []int{1 << 20, 4097, 7}
	id := newX25519(t)
	for _, size := range sizes {
		for _, step := range steps {
			if step == 7 && size > 2*chunk+7 {
				continue // slow and adds nothing
			}
			name := "size=" + strconv.Itoa(size) + "/step=" + strconv.Itoa(step)
			t.Run(name, func(t *testing.T) {
				snap := randBytes(t, size)
				var buf bytes.Buffer
				w, err := NewWriter(&buf, WriterOptions{Recipients: []age.Recipient{id.Recipient()}})
				if err != nil {
					t.Fatal(err)
				}
				add := w.AddSnapshot
				if step == 4097 { // the caller that hashed and checksummed in one pass
					add = func(r io.Reader, size int64, sum string) error {
						return w.AddSnapshotCRC(r, size, sum, crc32.Checksum(snap, castagnoli))
					}
				}
				if err := add(&chunkedReader{bytes.NewReader(snap), step}, int64(size), sumHex(snap)); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				// Read back through a source that also returns odd sizes.
				src := &chunkedReader{iotest.HalfReader(bytes.NewReader(buf.Bytes())), step}
				r, err := NewReader(src, ReaderOptions{Identities: []age.Identity{id}})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				e, err := r.Next()
				if err != nil || e.Path != SnapshotPath || e.Size != int64(size) {
					t.Fatalf("first entry %+v, %v", e, err)
				}
				got, err := io.ReadAll(&chunkedReader{readerOnly{r}, step})
				if err != nil || !bytes.Equal(got, snap) {
					t.Fatalf("content differs (len %d, err %v)", len(got), err)
				}
				if _, err := r.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("end: %v", err)
				}
			})
		}
	}
}

func TestWriterRejects(t *testing.T) {
	t.Parallel()
	id := newX25519(t)
	recips := []age.Recipient{id.Recipient()}
	snap := randBytes(t, 1000)
	tests := []struct {
		name string
		opts WriterOptions
		src  []byte
		size int64
		sum  string
		// withCRC: added with AddSnapshotCRC and crc
		crc     uint32
		withCRC bool
	}{
		{name: "no recipients", opts: WriterOptions{}},
		{name: "insecure with recipients", opts: WriterOptions{Insecure: true, Recipients: recips}},
		{name: "short snapshot", opts: WriterOptions{Recipients: recips}, src: snap[:999], size: 1000, sum: sumHex(snap)},
		{name: "long snapshot", opts: WriterOptions{Recipients: recips}, src: append(append([]byte{}, snap...), 1), size: 1000, sum: sumHex(snap)},
		{name: "wrong sha", opts: WriterOptions{Recipients: recips}, src: snap, size: 1000, sum: sumHex(snap[1:])},
		{name: "bad sha syntax", opts: WriterOptions{Recipients: recips}, src: snap, size: 1000, sum: "ABC"},
		{name: "content not what the crc says", opts: WriterOptions{Recipients: recips}, src: snap, size: 1000, sum: sumHex(snap), crc: crc32.Checksum(snap[1:], castagnoli), withCRC: true},
		{name: "short snapshot, crc", opts: WriterOptions{Recipients: recips}, src: snap[:999], size: 1000, sum: sumHex(snap), crc: crc32.Checksum(snap, castagnoli), withCRC: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, tc.opts)
			if tc.src == nil {
				if err == nil {
					t.Fatal("NewWriter accepted the options")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.withCRC {
				err = w.AddSnapshotCRC(bytes.NewReader(tc.src), tc.size, tc.sum, tc.crc)
			} else {
				err = w.AddSnapshot(bytes.NewReader(tc.src), tc.size, tc.sum)
			}
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				t.Fatal("bad snapshot accepted")
			}
			// Whatever reached buf must not verify.
			if _, verr := Extract(context.Background(), bytes.NewReader(buf.Bytes()), ReaderOptions{Identities: []age.Identity{id}}, ExtractOptions{}); verr == nil {
				t.Fatal("output of a failed Close verifies")
			}
		})
	}
}

func TestFileChangedDuringBackup(t *testing.T) {
	t.Parallel()
	kube := makeKubeDir(t)
	w, err := NewWriter(io.Discard, WriterOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(kube, testExcludes); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kube, "admin.conf"), []byte("apiVersion: v2\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "changed during backup") {
		t.Fatalf("Close: %v, want a changed-file error", err)
	}
}

func TestPlainArchive(t *testing.T) {
	t.Parallel()
	snap := randBytes(t, 200<<10)
	arch := writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Insecure: true}})
	if _, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{}, ExtractOptions{}); !errors.Is(err, ErrUnencrypted) {
		t.Fatalf("plain archive without Insecure: %v", err)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Insecure: true}, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	// A plain archive is tar.zst: a default zstd decoder and tar open it.
	zr, err := zstd.NewReader(bytes.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	h, err := tar.NewReader(zr).Next()
	if err != nil || h.Name != ManifestPath {
		t.Fatalf("first entry %v %v", h, err)
	}
}

func TestKeysAndPassphrase(t *testing.T) {
	t.Parallel()
	snap := randBytes(t, 70<<10)
	pq, err := GenerateIdentity(true)
	if err != nil {
		t.Fatal(err)
	}
	classic, err := GenerateIdentity(false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pq.Recipient(), "age1pq1") || !strings.HasPrefix(classic.Recipient(), "age1") || strings.HasPrefix(classic.Recipient(), "age1pq1") {
		t.Fatalf("recipients %s %s", pq.Recipient(), classic.Recipient())
	}
	if pq.String() != "redacted" {
		t.Fatal("identity String leaks")
	}
	passR, err := PassphraseRecipient([]byte("correct horse"), 10)
	if err != nil {
		t.Fatal(err)
	}
	passI, _ := PassphraseIdentity([]byte("correct horse"))
	wrongI, _ := PassphraseIdentity([]byte("wrong horse"))
	pqR, _ := ParseRecipients([]string{pq.Recipient()})
	clR, _ := ParseRecipients([]string{"# comment", "", classic.Recipient()})
	tests := []struct {
		name    string
		recips  []age.Recipient
		ids     []age.Identity
		wantErr error
	}{
		{name: "pq hybrid", recips: pqR, ids: []age.Identity{pq.Age()}},
		{name: "x25519", recips: clR, ids: []age.Identity{classic.Age()}},
		{name: "pq archive, classic key", recips: pqR, ids: []age.Identity{classic.Age()}, wantErr: ErrWrongKey},
		{name: "passphrase", recips: []age.Recipient{passR}, ids: []age.Identity{passI}},
		{name: "wrong passphrase", recips: []age.Recipient{passR}, ids: []age.Identity{wrongI}, wantErr: ErrWrongKey},
		{name: "no identity", recips: clR, ids: nil, wantErr: ErrWrongKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arch := writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Recipients: tc.recips}})
			_, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Identities: tc.ids}, ExtractOptions{})
			if !errors.Is(err, tc.wantErr) && (tc.wantErr != nil || err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestIdentityFile(t *testing.T) {
	t.Parallel()
	for _, pq := range []bool{true, false} {
		t.Run(map[bool]string{true: "pq", false: "x25519"}[pq], func(t *testing.T) {
			id, err := GenerateIdentity(pq)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "key.txt")
			if err := WriteIdentityFile(p, id); err != nil {
				t.Fatal(err)
			}
			if err := WriteIdentityFile(p, id); !errors.Is(err, os.ErrExist) {
				t.Fatalf("second write: %v, want ErrExist", err)
			}
			st, _ := os.Stat(p)
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", st.Mode().Perm())
			}
			b, _ := os.ReadFile(p)
			ids, err := ParseIdentities(b)
			if err != nil || len(ids) != 1 {
				t.Fatalf("parse back: %v", err)
			}
			if !strings.Contains(string(b), "# public key: "+id.Recipient()) {
				t.Errorf("file lacks the public key comment")
			}
			recips, _ := ParseRecipients([]string{id.Recipient()})
			arch := writeArchive(t, archiveSpec{snapshot: []byte("x"), opts: WriterOptions{Recipients: recips}})
			if _, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Identities: ids}, ExtractOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := WriteIdentityFile(filepath.Join(t.TempDir(), "no", "such"), &Identity{}); err == nil {
		t.Error("write into a missing dir succeeded")
	}
}

func TestParseRecipientsRejects(t *testing.T) {
	t.Parallel()
	id, _ := GenerateIdentity(false)
	secret := string(id.File(time.Now()))
	tests := []struct {
		name  string
		lines []string
	}{
		{name: "empty", lines: nil},
		{name: "only comments", lines: []string{"# x", "  "}},
		{name: "secret key", lines: []string{strings.Split(secret, "\n")[2]}},
		{name: "garbage", lines: []string{"hello"}},
		{name: "bad age1", lines: []string{"age1qqqq"}},
		{name: "bad ssh", lines: []string{"ssh-ed25519 AAAA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecipients(tc.lines)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Fatal("error leaks the secret key")
			}
		})
	}
}

func TestSniffFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id := newX25519(t)
	snap := randBytes(t, 4096)
	files := map[string][]byte{
		"enc":   writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}}),
		"plain": writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Insecure: true}}),
		"db":    snap,
		"short": []byte("age-encr"),
		"empty": nil,
	}
	want := map[string][2]bool{"enc": {true, true}, "plain": {true, false}, "db": {false, false}, "short": {false, false}, "empty": {false, false}}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		a, e, err := SniffFile(p)
		if err != nil || [2]bool{a, e} != want[name] {
			t.Errorf("%s: archive=%v encrypted=%v err=%v, want %v", name, a, e, err, want[name])
		}
	}
	if a, _, err := SniffFile(dir); a || err != nil {
		t.Errorf("directory: archive=%v err=%v", a, err)
	}
	if _, _, err := SniffFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
