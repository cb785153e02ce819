package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/etcdsafe/etcdsafe/internal/ctxio"
)

// TrailerSize is the length of the SHA-256 trailer etcd appends to a
// streamed snapshot.
const TrailerSize = sha256.Size

// trailerAlign is the alignment etcd's own check uses: a file with a
// trailer has size%512 == 32 (bbolt files are whole pages).
const trailerAlign = 512

var (
	// ErrTrailerMismatch means the file ends with a 32-byte trailer that is
	// not the SHA-256 of the bytes before it: the file is damaged.
	ErrTrailerMismatch = errors.New("snapshot sha256 trailer does not match its contents")
	// ErrNoTrailer means a stream that should end with a trailer does not
	// (its length is not a multiple of 512 plus 32).
	ErrNoTrailer = errors.New("snapshot has no sha256 trailer")
)

// TrailerStatus says what [VerifyTrailer] found at the end of a file.
type TrailerStatus int

const (
	// TrailerNone: the size is not 512·k+32, so the file has no trailer (a
	// raw copy of member/snap/db).
	TrailerNone TrailerStatus = iota
	// TrailerValid: the last 32 bytes are the SHA-256 of the rest.
	TrailerValid
	// TrailerMismatch: the size says there is a trailer, but it does not
	// match the contents.
	TrailerMismatch
)

// String returns "none", "valid" or "mismatch".
func (s TrailerStatus) String() string {
	switch s {
	case TrailerNone:
		return "none"
	case TrailerValid:
		return "valid"
	case TrailerMismatch:
		return "mismatch"
	}
	return fmt.Sprintf("TrailerStatus(%d)", int(s))
}

// HasTrailerSize reports whether a file of n bytes would carry a trailer
// by etcd's rule (n % 512 == 32).
func HasTrailerSize(n int64) bool { return n >= TrailerSize && n%trailerAlign == TrailerSize }

// VerifyTrailer reads the file at path once and tells whether it ends with
// a valid trailer. A mismatch is returned as [TrailerMismatch] together
// with an error wrapping [ErrTrailerMismatch]; I/O errors return
// [TrailerNone] and the error. The file is opened read-only.
func VerifyTrailer(path string) (TrailerStatus, error) {
	return VerifyTrailerContext(context.Background(), path)
}

// VerifyTrailerContext is [VerifyTrailer] that stops, with ctx's error,
// at the next 256 KiB once ctx is done.
func VerifyTrailerContext(ctx context.Context, path string) (TrailerStatus, error) {
	f, err := os.Open(path)
	if err != nil {
		return TrailerNone, fmt.Errorf("open snapshot %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return TrailerNone, fmt.Errorf("stat snapshot %q: %w", path, err)
	}
	if !HasTrailerSize(st.Size()) {
		return TrailerNone, nil
	}
	h := sha256.New()
	body := st.Size() - TrailerSize
	n, err := io.CopyBuffer(h, ctxio.NewReader(ctx, io.NewSectionReader(f, 0, body)), make([]byte, 256<<10))
	if err != nil {
		return TrailerNone, fmt.Errorf("read snapshot %q: %w", path, err)
	}
	if n != body {
		return TrailerNone, fmt.Errorf("read snapshot %q: short read %d of %d bytes: %w", path, n, body, io.ErrUnexpectedEOF)
	}
	want := make([]byte, TrailerSize)
	if _, err := f.ReadAt(want, body); err != nil {
		return TrailerNone, fmt.Errorf("read trailer of %q: %w", path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return TrailerMismatch, fmt.Errorf("verify %q: trailer %s, contents hash to %s: %w",
			path, hex.EncodeToString(want), hex.EncodeToString(got), ErrTrailerMismatch)
	}
	return TrailerValid, nil
}

// trailerWriter hashes everything written to it except the last 32 bytes,
// which it keeps as the candidate trailer. It never buffers more than 32
// bytes beyond the current write.
type trailerWriter struct {
	h    hash.Hash
	tail []byte // last min(n, 32) bytes seen
	n    int64
}

func newTrailerWriter() *trailerWriter {
	return &trailerWriter{h: sha256.New(), tail: make([]byte, 0, TrailerSize)}
}

func (w *trailerWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if len(p) >= TrailerSize {
		w.h.Write(w.tail)
		w.h.Write(p[:len(p)-TrailerSize])
		w.tail = append(w.tail[:0], p[len(p)-TrailerSize:]...)
		return len(p), nil
	}
	// Short write: hash the oldest bytes that fall out of the 32-byte window.
	if over := len(w.tail) + len(p) - TrailerSize; over > 0 {
		w.h.Write(w.tail[:over])
		w.tail = append(w.tail[:0], w.tail[over:]...)
	}
	w.tail = append(w.tail, p...)
	return len(p), nil
}

// check verifies the stream seen so far ends with a valid trailer and
// returns its hex form.
func (w *trailerWriter) check() (string, error) {
	if !HasTrailerSize(w.n) {
		return "", fmt.Errorf("stream of %d bytes: %w", w.n, ErrNoTrailer)
	}
	got := w.h.Sum(nil)
	if !bytes.Equal(got, w.tail) {
		return "", fmt.Errorf("stream of %d bytes: trailer %s, contents hash to %s: %w",
			w.n, hex.EncodeToString(w.tail), hex.EncodeToString(got), ErrTrailerMismatch)
	}
	return hex.EncodeToString(w.tail), nil
}

// wholeSum returns the hex SHA-256 of the whole stream, trailer included:
// the body's hash state goes on with the tail (Sum does not change it), so
// the stream is hashed once for both. Call it last.
func (w *trailerWriter) wholeSum() string {
	w.h.Write(w.tail)
	return hex.EncodeToString(w.h.Sum(nil))
}
