package keyindex

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// ReadOptions configures [Read].
type ReadOptions struct {
	// Name is the index as messages call it (a path or URL).
	Name string
	// Identities decrypt the index: those of its archive.
	Identities []age.Identity
	// Match, if set, picks the records [Index.Records] keeps (the others
	// are read, hashed and counted only). It is called with a key valid
	// only during the call.
	Match func(key []byte) bool
}

// Index is an index read to its end and checked.
type Index struct {
	Name    string
	Header  Header
	Trailer Trailer
	// Records are the records Match kept, in bucket (revision) order.
	Records []Record
}

// Read reads an index from r to its end: it decrypts it, checks the
// layout, every bound, the record count and the records' SHA-256 in the
// trailer, and that nothing follows. The caller closes r. Errors are
// [*Error] values (see the sentinels), or ctx's error, or r's own error
// wrapped.
func Read(ctx context.Context, r io.Reader, o ReadOptions) (*Index, error) {
	if len(o.Identities) == 0 {
		return nil, &Error{Name: o.Name, Kind: ErrWrongKey, Reason: "no identity given"}
	}
	src := &eofReader{r: r}
	ar, err := age.Decrypt(src, o.Identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		switch {
		case errors.As(err, &nm):
			return nil, &Error{Name: o.Name, Kind: ErrWrongKey, Reason: "decrypt"}
		case src.readErr != nil:
			return nil, fmt.Errorf("read key index %s: %w", o.Name, src.readErr)
		case len(src.head) < len(ageMagic) && bytes.HasPrefix(ageMagic, src.head):
			return nil, &Error{Name: o.Name, Kind: ErrTruncated, Reason: "cut inside the age header"}
		case !bytes.HasPrefix(src.head, ageMagic):
			return nil, &Error{Name: o.Name, Kind: ErrNotIndex, Reason: "not age-encrypted"}
		case src.eof:
			return nil, &Error{Name: o.Name, Kind: ErrTruncated, Reason: "age header: " + err.Error()}
		}
		return nil, &Error{Name: o.Name, Kind: ErrCorrupt, Reason: "age header: " + err.Error()}
	}
	zr, err := zstd.NewReader(ar, zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(maxDecoderMemory),
		zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("key index %s: %w", o.Name, err)
	}
	defer zr.Close()
	d := &decoder{r: bufio.NewReaderSize(zr, 64<<10), h: sha256.New(), name: o.Name, src: src, ctx: ctx}
	ix, err := d.read(o.Match)
	if err != nil {
		return nil, d.classify(err)
	}
	return ix, nil
}

var ageMagic = []byte("age-encryption.org/v1\n")

// eofReader records the first bytes, whether the source reached its end,
// and the source's own errors (not the index's fault).
type eofReader struct {
	r       io.Reader
	head    []byte
	eof     bool
	readErr error
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if len(e.head) < 64 {
		e.head = append(e.head, p[:min(n, 64-len(e.head))]...)
	}
	switch {
	case errors.Is(err, io.EOF):
		e.eof = true
	case err != nil:
		e.readErr = err
	}
	return n, err
}

// decoder parses the payload.
type decoder struct {
	r    *bufio.Reader
	h    hash.Hash
	name string
	src  *eofReader
	ctx  context.Context
	off  int64
	// hashing is on between the header and the end tag
	hashing bool
}

// formatError is a layout problem found in the plaintext.
type formatError struct{ reason string }

func (e *formatError) Error() string { return e.reason }

func bad(format string, args ...any) error { return &formatError{fmt.Sprintf(format, args...)} }

// classify turns an error of the decoding stack into an [*Error].
func (d *decoder) classify(err error) error {
	var fe *formatError
	var ie *Error
	switch {
	case errors.As(err, &ie):
		return err
	case d.ctx.Err() != nil:
		return d.ctx.Err()
	case d.src.readErr != nil:
		return fmt.Errorf("read key index %s: %w", d.name, d.src.readErr)
	case errors.As(err, &fe):
		return &Error{Name: d.name, Kind: ErrCorrupt, Reason: fmt.Sprintf("at byte %d: %s", d.off, fe.reason)}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &Error{Name: d.name, Kind: ErrTruncated, Reason: fmt.Sprintf("ends at byte %d", d.off)}
	case d.src.eof:
		// age fails its final chunk: a cut or a damaged last chunk
		return &Error{Name: d.name, Kind: ErrTruncated, Reason: "ends early or its last chunk is damaged: " + err.Error()}
	}
	return &Error{Name: d.name, Kind: ErrCorrupt, Reason: err.Error()}
}

func (d *decoder) readFull(p []byte) error {
	n, err := io.ReadFull(d.r, p)
	d.off += int64(n)
	if d.hashing {
		d.h.Write(p[:n])
	}
	return err
}

func (d *decoder) byte1() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	d.off++
	if d.hashing {
		d.h.Write([]byte{b})
	}
	return b, nil
}

// uvarint and varint hash the bytes they read.
func (d *decoder) uvarint() (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := d.byte1()
		if err != nil {
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, bad("varint overflows")
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, bad("varint overflows")
}

func (d *decoder) varint() (int64, error) {
	ux, err := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, err
}

func (d *decoder) meta(what string, v any) error {
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	if n > maxMeta {
		return bad("%s of %d bytes (at most %d)", what, n, maxMeta)
	}
	b := make([]byte, n)
	if err := d.readFull(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad("%s: %v", what, err)
	}
	return nil
}

func (d *decoder) read(match func([]byte) bool) (*Index, error) {
	m := make([]byte, len(magic))
	if err := d.readFull(m); err != nil || !bytes.Equal(m, magic) {
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, &Error{Name: d.name, Kind: ErrNotIndex, Reason: "no key index magic"}
		}
		return nil, err
	}
	ix := &Index{Name: d.name}
	// the version first: a newer index may have other fields
	var v struct {
		Version int `json:"index_version"`
	}
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > maxMeta {
		return nil, bad("header of %d bytes (at most %d)", n, maxMeta)
	}
	hb := make([]byte, n)
	if err := d.readFull(hb); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(hb, &v); err != nil {
		return nil, &Error{Name: d.name, Kind: ErrNotIndex, Reason: "header: " + err.Error()}
	}
	switch {
	case v.Version > Version:
		return nil, &Error{Name: d.name, Kind: ErrUnsupportedVersion, Reason: fmt.Sprintf("version %d, this build reads up to %d", v.Version, Version)}
	case v.Version < 1:
		return nil, &Error{Name: d.name, Kind: ErrNotIndex, Reason: "header without index_version"}
	}
	hd := json.NewDecoder(bytes.NewReader(hb))
	hd.DisallowUnknownFields()
	if err := hd.Decode(&ix.Header); err != nil {
		return nil, bad("header: %v", err)
	}
	if ix.Header.Hash != HashName {
		return nil, bad("value hash %q, want %q", ix.Header.Hash, HashName)
	}
	d.hashing = true
	var count, prevMain int64
	key := make([]byte, 0, 256)
	var hsum [sha256.Size]byte
	for {
		if count&0xfff == 0 && d.ctx.Err() != nil {
			return nil, d.ctx.Err()
		}
		tag, err := d.byte1()
		if err != nil {
			return nil, err
		}
		if tag == tagEnd {
			break
		}
		if tag != tagPut && tag != tagDelete {
			return nil, bad("record tag 0x%02x", tag)
		}
		var rec Record
		delta, err := d.varint()
		if err != nil {
			return nil, err
		}
		sub, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		kl, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if delta < 0 || prevMain+delta < prevMain || sub > 1<<62 || kl > maxKey {
			return nil, bad("record %d: revision delta %d, sub %d, key length %d", count, delta, sub, kl)
		}
		prevMain += delta
		rec.Revision.Main, rec.Revision.Sub, rec.Revision.Tombstone = prevMain, int64(sub), tag == tagDelete
		if tag == tagPut {
			var vs uint64
			if rec.CreateRevision, err = d.varint(); err == nil {
				if rec.Version, err = d.varint(); err == nil {
					if rec.Lease, err = d.varint(); err == nil {
						vs, err = d.uvarint()
					}
				}
			}
			if err != nil {
				return nil, err
			}
			if vs > 1<<40 {
				return nil, bad("record %d: value size %d", count, vs)
			}
			rec.ValueSize = int64(vs)
			if err := d.readFull(hsum[:]); err != nil {
				return nil, err
			}
			rec.ValueHash = hsum
		}
		key = key[:kl]
		if err := d.readFull(key); err != nil {
			return nil, err
		}
		if match != nil && match(key) {
			rec.Key = bytes.Clone(key)
			ix.Records = append(ix.Records, rec)
		}
		count++
	}
	d.hashing = false // the end tag was hashed
	sum := hex.EncodeToString(d.h.Sum(nil))
	if err := d.meta("trailer", &ix.Trailer); err != nil {
		return nil, err
	}
	switch {
	case ix.Trailer.Records != count:
		return nil, bad("trailer counts %d records, the index holds %d", ix.Trailer.Records, count)
	case ix.Trailer.RecordsSHA256 != sum:
		return nil, bad("records hash to %s, the trailer says %s", sum, ix.Trailer.RecordsSHA256)
	}
	// nothing after the trailer, and the end of zstd and age
	if n, err := d.r.Read(make([]byte, 1)); n > 0 || !errors.Is(err, io.EOF) {
		if n > 0 {
			return nil, bad("data after the trailer")
		}
		return nil, err
	}
	return ix, nil
}
