package keyindex

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
)

// Suffix is appended to an archive's name to name its index.
const Suffix = ".index"

// Version is the index layout this package writes. [Read] reads every
// version up to it.
const Version = 1

// HashName names the value hash of [Record.ValueHash]. SHA-256: an
// attacker who can write objects into the cluster cannot make two values
// with one hash (a 64-bit or non-cryptographic hash they could), and with
// the SHA extensions of current x86 and arm64 cores it is as fast as
// BLAKE2b or faster (BenchmarkValueHash).
const HashName = "sha256"

// magic starts the payload (inside age and zstd).
var magic = []byte("etcdsafe-keyindex\n")

// Bounds of what a reader accepts.
const (
	// maxKey is larger than any key etcd accepts (its request limit is
	// 1.5 MiB by default).
	maxKey = 2 << 20
	// maxMeta bounds the JSON header and trailer.
	maxMeta = 64 << 10
	// maxDecoderWindow and maxDecoderMemory bound zstd; the writer uses a
	// 1 MiB window.
	maxDecoderWindow = 8 << 20
	maxDecoderMemory = 64 << 20
)

// Record tags.
const (
	tagPut    = 'p'
	tagDelete = 'd'
	tagEnd    = 'e'
)

// Header is what is known of the snapshot before its records: the
// figures the archive's manifest holds of it.
type Header struct {
	// Version is [Version].
	Version int `json:"index_version"`
	// Hash is [HashName].
	Hash string `json:"hash"`
	// Created is the backup's time (the manifest's), UTC.
	Created time.Time `json:"created"`
	// Revision and CompactRevision are the snapshot's newest revision and
	// the last compaction (0 when unknown).
	Revision        int64 `json:"revision"`
	CompactRevision int64 `json:"compact_revision,omitempty"`
	// SnapshotSize and SnapshotSHA256 (lowercase hex) are those of the
	// archive's etcd/snapshot.db.
	SnapshotSize   int64  `json:"snapshot_size"`
	SnapshotSHA256 string `json:"snapshot_sha256"`
}

// Trailer closes the records: their count and hash, and the archive
// written beside the index.
type Trailer struct {
	// Records counts the records; Problems the key bucket's records that
	// could not be parsed and are not in the index.
	Records  int64 `json:"records"`
	Problems int64 `json:"problems,omitempty"`
	// RecordsSHA256 is the SHA-256 of the records' bytes, from the first
	// record's tag to the end tag (included): what [Digest] of the
	// snapshot gives.
	RecordsSHA256 string `json:"records_sha256"`
	// ArchiveSize and ArchiveSHA256 describe the archive file, as its
	// sidecar does.
	ArchiveSize   int64  `json:"archive_size"`
	ArchiveSHA256 string `json:"archive_sha256"`
}

// Record is one record of the key bucket: a put, or a deletion
// (Revision.Tombstone, with no value and zero create revision and
// version).
type Record struct {
	Key            []byte
	Revision       decode.Revision
	CreateRevision int64
	Version        int64
	Lease          int64
	// ValueSize is the value's length in bytes; ValueHash its SHA-256.
	ValueSize int64
	ValueHash [sha256.Size]byte
}

// Matches reports whether value is the value r describes.
func (r *Record) Matches(value []byte) bool {
	return int64(len(value)) == r.ValueSize && sha256.Sum256(value) == r.ValueHash
}

// HashHex is ValueHash in lowercase hex.
func (r *Record) HashHex() string { return hex.EncodeToString(r.ValueHash[:]) }

// Sentinels. Every error of [Read] wraps one of them and the archive
// package's sentinel of the same meaning.
var (
	// ErrNotIndex: not an etcdsafe key index (archive.ErrNotArchive).
	ErrNotIndex = errors.New("not an etcdsafe key index")
	// ErrUnsupportedVersion: written by a newer etcdsafe
	// (archive.ErrUnsupportedVersion).
	ErrUnsupportedVersion = errors.New("unsupported key index version")
	// ErrTruncated: the index ends early, or its last age chunk is
	// damaged (archive.ErrTruncated).
	ErrTruncated = errors.New("key index is truncated")
	// ErrCorrupt: a MAC, a record, a count or a hash failed
	// (archive.ErrTampered).
	ErrCorrupt = errors.New("key index is corrupted or was tampered with")
	// ErrWrongKey: no identity opens the index (archive.ErrWrongKey).
	ErrWrongKey = errors.New("no identity matches the key index")
	// ErrMismatch: a valid index of another archive or snapshot
	// (archive.ErrTampered).
	ErrMismatch = errors.New("key index does not match its archive")
)

var archiveSentinel = map[error]error{
	ErrNotIndex:           archive.ErrNotArchive,
	ErrUnsupportedVersion: archive.ErrUnsupportedVersion,
	ErrTruncated:          archive.ErrTruncated,
	ErrCorrupt:            archive.ErrTampered,
	ErrWrongKey:           archive.ErrWrongKey,
	ErrMismatch:           archive.ErrTampered,
}

// Error is an index that cannot be used: Kind is one of the sentinels.
type Error struct {
	// Name is the index as messages call it (a path or URL).
	Name string
	// Kind is ErrNotIndex, ErrTruncated, ...; Reason says what was found.
	Kind   error
	Reason string
}

func (e *Error) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s: %v", e.Reason, e.Kind)
	}
	return fmt.Sprintf("key index %s: %s: %v", e.Name, e.Reason, e.Kind)
}

// Unwrap returns Kind and the archive package's sentinel of that meaning.
func (e *Error) Unwrap() []error {
	if a := archiveSentinel[e.Kind]; a != nil {
		return []error{e.Kind, a}
	}
	return []error{e.Kind}
}

// CheckArchive compares the index's binding with what describes its
// archive: size and SHA-256 of the archive (its sidecar, or the bytes
// read), and, when snapshotSHA256 is not empty, the snapshot's SHA-256
// (the archive's manifest or its object metadata). A difference is an
// [*Error] of kind [ErrMismatch].
func (ix *Index) CheckArchive(archiveSize int64, archiveSHA256, snapshotSHA256 string) error {
	switch {
	case ix.Trailer.ArchiveSize != archiveSize || ix.Trailer.ArchiveSHA256 != archiveSHA256:
		return &Error{Name: ix.Name, Kind: ErrMismatch, Reason: fmt.Sprintf("it describes an archive of %d bytes, sha256 %s, not this one (%d bytes, sha256 %s)",
			ix.Trailer.ArchiveSize, ix.Trailer.ArchiveSHA256, archiveSize, archiveSHA256)}
	case snapshotSHA256 != "" && ix.Header.SnapshotSHA256 != snapshotSHA256:
		return &Error{Name: ix.Name, Kind: ErrMismatch, Reason: fmt.Sprintf("it describes snapshot sha256 %s, the archive holds %s", ix.Header.SnapshotSHA256, snapshotSHA256)}
	}
	return nil
}
