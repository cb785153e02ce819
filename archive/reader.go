package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Decoder bounds: a hostile archive cannot make the reader allocate more.
const (
	maxDecoderWindow = 64 << 20
	maxDecoderMemory = 256 << 20
)

var (
	ageMagic  = []byte("age-encryption.org/v1\n")
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// ReaderOptions configures a [Reader].
type ReaderOptions struct {
	// Identities decrypt the archive.
	Identities []age.Identity
	// Insecure allows reading an unencrypted (tar.zst) archive.
	Insecure bool
}

// Reader reads an archive entry by entry, checking each against the
// manifest as it goes. Entries are returned in archive order by
// [Reader.Next]; content is read with [Reader.Read]. Nothing is verified
// until Next returns io.EOF: only then are all hashes, the entry list, the
// end of the age stream and the absence of trailing data checked.
//
// A Reader is not safe for concurrent use. After any error other than
// io.EOF it keeps returning that error.
type Reader struct {
	src   *probeReader
	tap   *errTap // between age and zstd; nil when unencrypted
	zr    *zstd.Decoder
	tr    *tar.Reader
	m     *Manifest
	plain bool

	next int        // index of the next manifest entry
	cur  *EntryInfo // current file entry being read, or nil
	h    hash.Hash
	n    int64
	err  error
}

// NewReader opens an archive read from src. It decrypts the age header
// (failing with [ErrWrongKey] if no identity matches), then reads and
// validates MANIFEST.json. The caller closes src; call [Reader.Close] to
// release the decoder.
func NewReader(src io.Reader, opts ReaderOptions) (*Reader, error) {
	r := &Reader{src: &probeReader{r: src}}
	head := make([]byte, len(ageMagic))
	n, err := io.ReadFull(r.src, head)
	head = head[:n]
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	rest := io.MultiReader(bytes.NewReader(head), r.src)
	var payload io.Reader
	switch {
	case bytes.Equal(head, ageMagic):
		if len(opts.Identities) == 0 {
			return nil, fmt.Errorf("archive is encrypted and no identity was given: %w", ErrWrongKey)
		}
		dec, err := age.Decrypt(rest, opts.Identities...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			switch {
			case errors.As(err, &nm):
				return nil, fmt.Errorf("decrypt archive: %w", ErrWrongKey)
			case r.src.atEOF():
				return nil, fmt.Errorf("read age header: %w: %w", ErrTruncated, err)
			default:
				return nil, fmt.Errorf("read age header: %w: %w", ErrTampered, err)
			}
		}
		r.tap = &errTap{r: dec}
		payload = r.tap
	case bytes.HasPrefix(head, zstdMagic):
		if !opts.Insecure {
			return nil, fmt.Errorf("open archive: %w", ErrUnencrypted)
		}
		r.plain = true
		payload = rest
	case len(head) < len(ageMagic) && bytes.HasPrefix(ageMagic, head):
		// Includes an empty file: the usual remains of a failed upload.
		return nil, fmt.Errorf("read archive header: %w", ErrTruncated)
	default:
		return nil, fmt.Errorf("unknown file header: %w", ErrNotArchive)
	}
	r.zr, err = zstd.NewReader(payload,
		zstd.WithDecoderMaxWindow(maxDecoderWindow),
		zstd.WithDecoderMaxMemory(maxDecoderMemory),
		zstd.WithDecoderConcurrency(2))
	if err != nil {
		return nil, fmt.Errorf("start zstd decoder: %w", err)
	}
	r.tr = tar.NewReader(r.zr)
	hdr, err := r.tr.Next()
	if err != nil {
		r.Close()
		return nil, r.classify("read first entry", err, ErrNotArchive)
	}
	if hdr.Name != ManifestPath || hdr.Typeflag != tar.TypeReg {
		r.Close()
		return nil, fmt.Errorf("first entry is %q, not %s: %w", hdr.Name, ManifestPath, ErrNotArchive)
	}
	if hdr.Size > MaxManifestSize {
		r.Close()
		return nil, fmt.Errorf("manifest of %d bytes exceeds %d: %w", hdr.Size, MaxManifestSize, ErrNotArchive)
	}
	b, err := io.ReadAll(io.LimitReader(r.tr, MaxManifestSize))
	if err != nil {
		r.Close()
		return nil, r.classify("read manifest", err, ErrNotArchive)
	}
	if r.m, err = ParseManifest(b); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Manifest returns the archive's manifest. It is read before any entry, so
// it is not verified until [Reader.Next] returns io.EOF.
func (r *Reader) Manifest() *Manifest { return r.m }

// Encrypted reports whether the archive is age-encrypted.
func (r *Reader) Encrypted() bool { return !r.plain }

// ArchiveBytes returns the number of archive bytes consumed so far.
func (r *Reader) ArchiveBytes() int64 { return r.src.n }

// Next verifies the rest of the current entry (reading it if the caller did
// not) and advances to the next one, returning its manifest record. At the
// end of the archive it checks that no manifest entry is missing, that the
// encrypted stream ended properly and that no data follows, and only then
// returns io.EOF.
func (r *Reader) Next() (*EntryInfo, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.cur != nil {
		if _, err := io.CopyBuffer(io.Discard, readerOnly{r}, make([]byte, 64<<10)); err != nil {
			return nil, err
		}
	}
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		if r.next < len(r.m.Entries) {
			return nil, r.fail(fmt.Errorf("entry %q listed in the manifest is missing: %w", r.m.Entries[r.next].Path, ErrTampered))
		}
		return nil, r.finish()
	}
	if err != nil {
		return nil, r.fail(r.classify("read entry header", err, ErrTampered))
	}
	if r.next >= len(r.m.Entries) {
		return nil, r.fail(fmt.Errorf("entry %q is not in the manifest: %w", hdr.Name, ErrTampered))
	}
	e := r.m.Entries[r.next]
	r.next++
	if err := matchHeader(hdr, &e); err != nil {
		return nil, r.fail(err)
	}
	if e.Type == TypeFile {
		r.cur, r.h, r.n = &e, sha256.New(), 0
	}
	return &e, nil
}

// Read reads the current file entry's content. At the entry's end it
// checks the size and SHA-256 against the manifest and returns an error
// wrapping [ErrTampered] instead of io.EOF on a mismatch.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil {
		return 0, io.EOF
	}
	n, err := r.tr.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.n > r.cur.Size {
		return n, r.fail(fmt.Errorf("entry %q is longer than the manifest says: %w", r.cur.Path, ErrTampered))
	}
	if errors.Is(err, io.EOF) {
		e := r.cur
		r.cur = nil
		if r.n != e.Size || hex.EncodeToString(r.h.Sum(nil)) != e.SHA256 {
			return n, r.fail(fmt.Errorf("entry %q: content does not match the manifest sha256: %w", e.Path, ErrTampered))
		}
		return n, io.EOF
	}
	if err != nil {
		return n, r.fail(r.classify(fmt.Sprintf("read entry %q", r.cur.Path), err, ErrTampered))
	}
	return n, nil
}

// Close releases the zstd decoder. It does not close the source and does
// not verify anything.
func (r *Reader) Close() error {
	if r.zr != nil {
		r.zr.Close()
	}
	return nil
}

// finish checks the end of the stream after tar's end marker.
func (r *Reader) finish() error {
	n, err := io.Copy(io.Discard, r.zr)
	if err != nil {
		return r.fail(r.classify("read past the end of the tar stream", err, ErrTrailingData))
	}
	if n > 0 {
		return r.fail(fmt.Errorf("%d bytes after the end of the tar stream: %w", n, ErrTrailingData))
	}
	r.err = io.EOF
	return io.EOF
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// classify maps an error from the tar/zstd/age stack to a sentinel. age
// exports no sentinels for payload failures, so its messages are
// recognised here, in this one place.
func (r *Reader) classify(step string, err error, fallback error) error {
	var re *readError
	if errors.As(err, &re) || (r.tap != nil && errors.As(r.tap.err, &re)) {
		// The source itself failed (disk, network): not an integrity
		// verdict either way.
		return fmt.Errorf("%s: %w", step, re.err)
	}
	if r.tap != nil && r.tap.err != nil {
		aerr := r.tap.err
		switch {
		case errors.Is(aerr, io.ErrUnexpectedEOF):
			return fmt.Errorf("%s: %w", step, ErrTruncated)
		case strings.Contains(aerr.Error(), "trailing data"):
			return fmt.Errorf("%s: %w", step, ErrTrailingData)
		case r.src.atEOF():
			// The chunk that failed was the file's last: a cut-off archive
			// or a damaged final chunk, which age cannot tell apart.
			return fmt.Errorf("%s: archive ends early or its last chunk is damaged: %w", step, ErrTruncated)
		default:
			return fmt.Errorf("%s: %w: %w", step, ErrTampered, aerr)
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", step, ErrTruncated)
	}
	return fmt.Errorf("%s: %w: %w", step, fallback, err)
}

func matchHeader(h *tar.Header, e *EntryInfo) error {
	name := strings.TrimSuffix(h.Name, "/")
	var typ string
	switch h.Typeflag {
	case tar.TypeReg:
		typ = TypeFile
	case tar.TypeDir:
		typ = TypeDir
	case tar.TypeSymlink:
		typ = TypeSymlink
	}
	if name != e.Path || typ != e.Type || h.Size != e.Size || h.Linkname != e.LinkTarget || h.Mode != int64(e.Mode) {
		return fmt.Errorf("entry %q does not match manifest entry %q: %w", h.Name, e.Path, ErrTampered)
	}
	return nil
}

// readerOnly hides Reader's other methods from io.CopyBuffer.
type readerOnly struct{ io.Reader }

// readError marks an I/O error of the underlying source.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// probeReader counts bytes and remembers whether its source reached EOF.
type probeReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (p *probeReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if errors.Is(err, io.EOF) {
		p.eof = true
	} else if err != nil {
		err = &readError{err}
	}
	return n, err
}

// atEOF reports whether the source is exhausted, reading one more byte if
// it has not said so yet. Only call it once the stream has failed.
func (p *probeReader) atEOF() bool {
	if p.eof {
		return true
	}
	var b [1]byte
	n, err := io.ReadFull(p, b[:])
	return n == 0 && errors.Is(err, io.EOF)
}

// errTap records the first error other than io.EOF from age's reader, so
// that classify sees age's own error whatever zstd makes of it.
type errTap struct {
	r   io.Reader
	err error
}

func (t *errTap) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

// SniffLen is how many leading bytes [Sniff] needs.
const SniffLen = 22 // len("age-encryption.org/v1\n")

// Sniff tells a backup archive from a snapshot by its first bytes (at
// least [SniffLen] of them, fewer only if the input is that short):
// archive is true for an age-encrypted or plain zstd stream, encrypted for
// an age one. A file cut inside age's first line (at least "age-encry")
// counts as an encrypted archive, so that reading it reports truncation.
func Sniff(head []byte) (archive, encrypted bool) {
	encrypted = bytes.HasPrefix(head, ageMagic) ||
		len(head) >= 9 && len(head) < len(ageMagic) && bytes.HasPrefix(ageMagic, head)
	return encrypted || bytes.HasPrefix(head, zstdMagic), encrypted
}

// SniffFile tells a backup archive from a snapshot or data dir by the
// file's first bytes: archive is true for an age-encrypted or plain zstd
// file, encrypted for an age one. A directory or unreadable file is not
// an archive; err reports a file that cannot be opened.
func SniffFile(path string) (archive, encrypted bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	head := make([]byte, SniffLen)
	n, _ := io.ReadFull(f, head)
	archive, encrypted = Sniff(head[:n])
	return archive, encrypted, nil
}
