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

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// encoder writes records in the index layout to w, hashing them.
type encoder struct {
	w        *bufio.Writer
	h        hash.Hash
	n        int64
	problems int64
	prevMain int64
	buf      []byte
}

func newEncoder(w io.Writer) *encoder {
	return &encoder{w: bufio.NewWriterSize(w, 64<<10), h: sha256.New(), buf: make([]byte, 0, 128)}
}

// add encodes one record of the key bucket, hashing its value.
func (e *encoder) add(rec inspect.Record) error {
	if len(rec.Key) > maxKey {
		return fmt.Errorf("key of %d bytes at revision %s: longer than an index holds (%d)", len(rec.Key), rec.Rev, maxKey)
	}
	b := e.buf[:0]
	tag := byte(tagPut)
	if rec.Rev.Tombstone {
		tag = tagDelete
	}
	b = append(b, tag)
	b = binary.AppendVarint(b, rec.Rev.Main-e.prevMain)
	b = binary.AppendUvarint(b, uint64(rec.Rev.Sub))
	b = binary.AppendUvarint(b, uint64(len(rec.Key)))
	e.prevMain = rec.Rev.Main
	if tag == tagPut {
		// key and value go after the fixed fields
		b = binary.AppendVarint(b, rec.CreateRevision)
		b = binary.AppendVarint(b, rec.Version)
		b = binary.AppendVarint(b, rec.Lease)
		b = binary.AppendUvarint(b, uint64(len(rec.Value)))
		sum := sha256.Sum256(rec.Value)
		b = append(b, sum[:]...)
	}
	e.buf = b
	e.h.Write(b)
	e.h.Write(rec.Key)
	e.n++
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	_, err := e.w.Write(rec.Key)
	return err
}

// end writes the end tag and the trailer, and flushes.
func (e *encoder) end(t *Trailer) error {
	t.Records, t.Problems, t.RecordsSHA256 = e.n, e.problems, e.sum()
	if err := e.w.WriteByte(tagEnd); err != nil {
		return err
	}
	if err := writeMeta(e.w, t); err != nil {
		return err
	}
	return e.w.Flush()
}

// sum is the records' SHA-256, the end tag included.
func (e *encoder) sum() string {
	e.h.Write([]byte{tagEnd})
	return hex.EncodeToString(e.h.Sum(nil))
}

// writeMeta writes v as a uvarint length and its JSON.
func writeMeta(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(j)))); err != nil {
		return err
	}
	_, err = w.Write(j)
	return err
}

// WriterOptions configures [NewWriter].
type WriterOptions struct {
	// Recipients encrypt the index: the archive's. At least one.
	Recipients []age.Recipient
	// Header describes the snapshot; Version and Hash are set by NewWriter.
	Header Header
}

// Writer writes one index: [Writer.Add] (or [Build]) for every record of
// the key bucket in bucket order, then [Writer.Close] with the archive's
// size and hash. Nothing written is an index until Close returns nil.
// A Writer is not safe for concurrent use.
type Writer struct {
	age io.WriteCloser
	zw  *zstd.Encoder
	enc *encoder
}

// NewWriter starts an index written to w (which the caller closes).
func NewWriter(w io.Writer, o WriterOptions) (*Writer, error) {
	if len(o.Recipients) == 0 {
		return nil, errors.New("key index: no recipient")
	}
	aw, err := age.Encrypt(w, o.Recipients...)
	if err != nil {
		return nil, fmt.Errorf("key index: %w", err)
	}
	zw, err := newZstd(aw)
	if err != nil {
		return nil, fmt.Errorf("key index: %w", err)
	}
	h := o.Header
	h.Version, h.Hash, h.Created = Version, HashName, h.Created.UTC()
	ix := &Writer{age: aw, zw: zw, enc: newEncoder(zw)}
	if _, err := ix.enc.w.Write(magic); err != nil {
		return nil, err
	}
	if err := writeMeta(ix.enc.w, &h); err != nil {
		return nil, fmt.Errorf("key index header: %w", err)
	}
	return ix, nil
}

// newZstd is the index's compression: fastest, one core (the archive's
// compression runs meanwhile), a 1 MiB window, frame checksums.
func newZstd(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20), zstd.WithEncoderCRC(true))
}

// Add adds one record of the key bucket; records come in bucket
// (revision) order.
func (w *Writer) Add(rec inspect.Record) error { return w.enc.add(rec) }

// Records counts the records added so far.
func (w *Writer) Records() int64 { return w.enc.n }

// Close writes the trailer with the archive's size and SHA-256 (hex) and
// ends the compression and the encryption. The index is valid only if it
// returns nil.
func (w *Writer) Close(archiveSize int64, archiveSHA256 string) error {
	t := Trailer{ArchiveSize: archiveSize, ArchiveSHA256: archiveSHA256}
	if err := w.enc.end(&t); err != nil {
		return fmt.Errorf("key index: %w", err)
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("key index: %w", err)
	}
	if err := w.age.Close(); err != nil {
		return fmt.Errorf("key index: %w", err)
	}
	return nil
}

// Build adds every record of snap's key bucket to w, and returns the
// records it could not read (counted in the trailer, left out of the
// index). It does not close w.
func Build(ctx context.Context, snap *inspect.Snapshot, w *Writer) ([]inspect.Problem, error) {
	problems, err := snap.Records(ctx, w.enc.add)
	w.enc.problems += int64(len(problems))
	if err != nil {
		return problems, fmt.Errorf("key index: %w", err)
	}
	return problems, nil
}

// BuildFrom is [Build] for a snapshot bbolt cannot open because it is not
// a plain file (the encrypted spool of a live backup): the first size
// bytes of r, walked with snapshot.WalkKeyBucket. It gives the index
// Build gives of the same file.
func BuildFrom(ctx context.Context, r io.ReaderAt, size int64, w *Writer) ([]inspect.Problem, error) {
	var problems []inspect.Problem
	err := snapshot.WalkKeyBucket(ctx, r, size, func(k, v []byte) error {
		rev, err := decode.ParseRevision(k)
		if err == nil && len(v) == 0 {
			// etcdutl's --bump-revision marks the bumped revision with an
			// empty record, which inspect skips too
			return nil
		}
		if err == nil {
			var kv decode.KeyValue
			if kv, err = decode.ParseKeyValue(v); err == nil {
				err = w.enc.add(inspect.Record{Rev: rev, KeyValue: kv})
			}
		}
		if err != nil {
			problems = append(problems, inspect.Problem{Revision: bytes.Clone(k), Err: err})
		}
		return nil
	})
	w.enc.problems += int64(len(problems))
	if err != nil {
		return problems, fmt.Errorf("key index: %w", err)
	}
	return problems, nil
}

// Digest returns the record count and [Trailer.RecordsSHA256] an index of
// snap would have, without writing one: verify compares them with an
// index's trailer.
func Digest(ctx context.Context, snap *inspect.Snapshot) (records int64, sha string, err error) {
	e := newEncoder(io.Discard)
	problems, err := snap.Records(ctx, e.add)
	if err != nil {
		return 0, "", err
	}
	e.problems = int64(len(problems))
	return e.n, e.sum(), nil
}
