package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

const encChunk = 64<<10 + 16 // age STREAM chunk plus Poly1305 tag

// ageLayout returns the end of the age header and the start of the first
// payload chunk (after the 16-byte nonce).
func ageLayout(t *testing.T, arch []byte) (hdrEnd, payload int) {
	t.Helper()
	i := bytes.Index(arch, []byte("\n--- "))
	if i < 0 {
		t.Fatal("no age header footer")
	}
	hdrEnd = i + 1 + bytes.IndexByte(arch[i+1:], '\n') + 1
	return hdrEnd, hdrEnd + 16
}

func flip(b []byte, off int) []byte {
	c := append([]byte{}, b...)
	c[off] ^= 0x01
	return c
}

func TestEncryptedCorruption(t *testing.T) {
	t.Parallel()
	id := newX25519(t)
	snap := randBytes(t, 200<<10)
	arch := writeArchive(t, archiveSpec{snapshot: snap, kubeDir: makeKubeDir(t), opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})
	hdrEnd, p := ageLayout(t, arch)
	lastChunk := p + (len(arch)-p-1)/encChunk*encChunk
	if lastChunk < p+2*encChunk {
		t.Fatalf("archive too small for the test: %d bytes", len(arch))
	}
	stanza := bytes.Index(arch, []byte("-> X25519 ")) + 12
	tests := []struct {
		name string
		data []byte
		want []error // any of these
	}{
		{"empty", nil, []error{ErrTruncated}},
		{"cut in magic", arch[:5], []error{ErrTruncated}},
		{"cut in header", arch[:hdrEnd-10], []error{ErrTruncated}},
		{"cut in nonce", arch[:hdrEnd+8], []error{ErrTruncated}},
		{"cut in first chunk", arch[:p+100], []error{ErrTruncated}},
		{"cut at chunk boundary", arch[:p+encChunk], []error{ErrTruncated}},
		{"cut at second boundary", arch[:p+2*encChunk], []error{ErrTruncated}},
		{"cut in last chunk", arch[:len(arch)-17], []error{ErrTruncated}},
		{"cut last byte", arch[:len(arch)-1], []error{ErrTruncated}},
		{"flip magic", flip(arch, 0), []error{ErrNotArchive}},
		{"flip stanza", flip(arch, stanza), []error{ErrWrongKey, ErrTampered}},
		{"flip header mac", flip(arch, hdrEnd-6), []error{ErrTampered}},
		{"flip nonce", flip(arch, hdrEnd+3), []error{ErrTampered}},
		{"flip first chunk", flip(arch, p+10), []error{ErrTampered}},
		{"flip second chunk", flip(arch, p+encChunk+4000), []error{ErrTampered}},
		{"flip tag of second chunk", flip(arch, p+2*encChunk-1), []error{ErrTampered}},
		// age cannot tell a damaged final chunk from a cut one.
		{"flip last chunk", flip(arch, lastChunk+5), []error{ErrTruncated}},
		// Bytes appended to age's output corrupt its final chunk: age
		// cannot see where the real end was (see docs/FORMAT.md).
		{"appended byte", append(append([]byte{}, arch...), 0), []error{ErrTruncated}},
		{"appended archive", append(append([]byte{}, arch...), arch...), []error{ErrTampered}},
		{"trailing data inside the encryption", encryptExtra(t, id, arch, []byte("extra")), []error{ErrTrailingData}},
	}
	opts := ReaderOptions{Identities: []age.Identity{id}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFails(t, tc.data, opts, tc.want)
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		checkFails(t, arch, ReaderOptions{Identities: []age.Identity{newX25519(t)}}, []error{ErrWrongKey})
	})
	t.Run("intact", func(t *testing.T) {
		if _, err := Extract(context.Background(), bytes.NewReader(arch), opts, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// checkFails requires Extract, verifying only and extracting the snapshot,
// to fail with one of want, and the extraction to leave nothing behind.
func checkFails(t *testing.T, data []byte, opts ReaderOptions, want []error) {
	t.Helper()
	_, err := Extract(context.Background(), bytes.NewReader(data), opts, ExtractOptions{})
	if !isAny(err, want) {
		t.Fatalf("Verify: %v, want one of %v", err, want)
	}
	dst := t.TempDir()
	p, m, err := extractSnapshot(bytes.NewReader(data), opts, dst)
	if !isAny(err, want) || p != "" || m != nil {
		t.Fatalf("extract the snapshot: %q %v, want one of %v", p, err, want)
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Fatalf("extracting the snapshot left %v behind", left)
	}
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func TestPlainCorruption(t *testing.T) {
	t.Parallel()
	snap := randBytes(t, 300<<10)
	arch := writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Insecure: true}})
	opts := ReaderOptions{Insecure: true}
	tests := []struct {
		name string
		data []byte
		want []error
	}{
		{"cut in magic", arch[:2], []error{ErrNotArchive, ErrTruncated}},
		{"cut early", arch[:1000], []error{ErrTruncated}},
		{"cut middle", arch[:len(arch)/2], []error{ErrTruncated}},
		{"cut last byte", arch[:len(arch)-1], []error{ErrTruncated}},
		{"flip middle", flip(arch, len(arch)/2), []error{ErrTampered}},
		{"trailing", append(append([]byte{}, arch...), "garbage"...), []error{ErrTrailingData}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkFails(t, tc.data, opts, tc.want) })
	}
}

// craft builds a plain archive by hand: a manifest entry then the given
// entries, so tests can disagree with the manifest.
type craftEntry struct {
	hdr  tar.Header
	body []byte
}

func craft(t *testing.T, manifest []byte, entries []craftEntry, manifestFirst bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	mEnt := craftEntry{tar.Header{Name: ManifestPath, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(manifest))}, manifest}
	if manifestFirst {
		entries = append([]craftEntry{mEnt}, entries...)
	} else {
		entries = append(entries, mEnt)
	}
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func manifestJSON(t *testing.T, version int, entries ...EntryInfo) []byte {
	t.Helper()
	m := Manifest{FormatVersion: version, Tool: "test", Created: time.Unix(0, 0).UTC(), Entries: entries}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifestMismatch(t *testing.T) {
	t.Parallel()
	body := []byte("snapshot bytes")
	good := EntryInfo{Path: SnapshotPath, Type: TypeFile, Mode: 0o600, Size: int64(len(body)), SHA256: sumHex(body)}
	goodTar := craftEntry{tar.Header{Name: SnapshotPath, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(body))}, body}
	other := craftEntry{tar.Header{Name: "kubernetes/x", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}, []byte("x")}
	badSum := good
	badSum.SHA256 = sumHex([]byte("other"))
	badMode := good
	badMode.Mode = 0o644
	tests := []struct {
		name     string
		manifest []byte
		entries  []craftEntry
		first    bool
		want     error
	}{
		{"consistent", manifestJSON(t, 1, good), []craftEntry{goodTar}, true, nil},
		{"sha mismatch", manifestJSON(t, 1, badSum), []craftEntry{goodTar}, true, ErrTampered},
		{"mode mismatch", manifestJSON(t, 1, badMode), []craftEntry{goodTar}, true, ErrTampered},
		{"extra entry", manifestJSON(t, 1, good), []craftEntry{goodTar, other}, true, ErrTampered},
		{"missing entry", manifestJSON(t, 1, good), nil, true, ErrTampered},
		{"manifest not first", manifestJSON(t, 1, good), []craftEntry{goodTar}, false, ErrNotArchive},
		{"newer version", manifestJSON(t, 2, good), []craftEntry{goodTar}, true, ErrUnsupportedVersion},
		{"version zero", manifestJSON(t, 0, good), []craftEntry{goodTar}, true, ErrNotArchive},
		{"manifest not json", []byte("{"), []craftEntry{goodTar}, true, ErrNotArchive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arch := craft(t, tc.manifest, tc.entries, tc.first)
			_, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Insecure: true}, ExtractOptions{})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseManifestRejects(t *testing.T) {
	t.Parallel()
	sum := sumHex(nil)
	tests := []struct {
		name string
		e    EntryInfo
	}{
		{"dotdot", EntryInfo{Path: "../x", Type: TypeDir}},
		{"absolute", EntryInfo{Path: "/etc/passwd", Type: TypeDir}},
		{"unclean", EntryInfo{Path: "a//b", Type: TypeDir}},
		{"nul", EntryInfo{Path: "a\x00b", Type: TypeDir}},
		{"unknown type", EntryInfo{Path: "a", Type: "fifo"}},
		{"file without sha", EntryInfo{Path: "a", Type: TypeFile}},
		{"uppercase sha", EntryInfo{Path: "a", Type: TypeFile, SHA256: fmt.Sprintf("%X", sum)}},
		{"dir with content", EntryInfo{Path: "a", Type: TypeDir, Size: 3}},
		{"symlink without target", EntryInfo{Path: "a", Type: TypeSymlink}},
		{"mode bits", EntryInfo{Path: "a", Type: TypeDir, Mode: 0o170000}},
		{"negative size", EntryInfo{Path: "a", Type: TypeFile, Size: -1, SHA256: sum}},
		{"manifest path", EntryInfo{Path: ManifestPath, Type: TypeFile, SHA256: sum}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(manifestJSON(t, 1, tc.e))
			if !errors.Is(err, ErrNotArchive) || m != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
		})
	}
	if _, err := ParseManifest(bytes.Repeat([]byte(" "), MaxManifestSize+1)); !errors.Is(err, ErrNotArchive) {
		t.Fatalf("oversized manifest: %v", err)
	}
}

// encryptExtra re-encrypts arch's plaintext (tar.zst) with extra appended,
// as a key holder could.
func encryptExtra(t *testing.T, id *age.X25519Identity, arch, extra []byte) []byte {
	t.Helper()
	dec, err := age.Decrypt(bytes.NewReader(arch), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	aw, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aw.Write(append(plain, extra...)); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
