package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RevisionLen is the length of a revision key in etcd's "key" bucket: an
// 8-byte big-endian main revision, the byte '_', an 8-byte big-endian sub
// revision. A tombstone (deletion) carries one more byte, 't'.
const RevisionLen = 17

// ErrBadRevision is wrapped by every error about a malformed revision key.
var ErrBadRevision = errors.New("malformed revision key")

// Revision is one position in etcd's multi-version store.
type Revision struct {
	Main      int64
	Sub       int64
	Tombstone bool
}

// ParseRevision decodes a revision key from the "key" bucket. It returns an
// error wrapping [ErrBadRevision] for any other length or shape; it never
// panics.
func ParseRevision(b []byte) (Revision, error) {
	switch {
	case len(b) == RevisionLen:
	case len(b) == RevisionLen+1 && b[RevisionLen] == 't':
	default:
		return Revision{}, &FormatError{What: "revision key", Reason: fmt.Sprintf("length %d, want %d or %d", len(b), RevisionLen, RevisionLen+1), Err: ErrBadRevision}
	}
	if b[8] != '_' {
		return Revision{}, &FormatError{What: "revision key", Offset: 8, Reason: fmt.Sprintf("separator 0x%02x, want '_'", b[8]), Err: ErrBadRevision}
	}
	main := binary.BigEndian.Uint64(b[0:8])
	sub := binary.BigEndian.Uint64(b[9:17])
	if main > 1<<63-1 || sub > 1<<63-1 {
		return Revision{}, &FormatError{What: "revision key", Reason: "revision out of range", Err: ErrBadRevision}
	}
	return Revision{Main: int64(main), Sub: int64(sub), Tombstone: len(b) == RevisionLen+1}, nil
}

// Bytes encodes r the way etcd does, with the 't' marker for a tombstone.
func (r Revision) Bytes() []byte {
	n := RevisionLen
	if r.Tombstone {
		n++
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b[0:8], uint64(r.Main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:17], uint64(r.Sub))
	if r.Tombstone {
		b[17] = 't'
	}
	return b
}

// String prints r as "main_sub", with a trailing "t" for a tombstone.
func (r Revision) String() string {
	s := fmt.Sprintf("%d_%d", r.Main, r.Sub)
	if r.Tombstone {
		s += "t"
	}
	return s
}

// FormatError reports bytes that are not in the expected format.
type FormatError struct {
	What   string // what was being decoded: "revision key", "KeyValue", ...
	Offset int    // byte offset of the problem, when known
	Reason string
	Err    error // sentinel or cause; may be nil
}

func (e *FormatError) Error() string {
	s := "decode " + e.What
	if e.Offset > 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	s += ": " + e.Reason
	if e.Err != nil && e.Err.Error() != e.Reason {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }
