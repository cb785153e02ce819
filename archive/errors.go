package archive

import "errors"

var (
	// ErrTruncated means the archive ends early. Because age cannot tell a
	// cut-off final chunk from a damaged one, a corrupt last chunk is also
	// reported as truncation, as are bytes appended after it.
	ErrTruncated = errors.New("archive is truncated")
	// ErrTampered means authenticated data failed its check: an age chunk
	// or header MAC, an entry's SHA-256 or size, or an entry missing from or
	// added to the manifest.
	ErrTampered = errors.New("archive is corrupted or was tampered with")
	// ErrTrailingData means bytes follow the end of the archive: after the
	// zstd frame of an unencrypted archive, or after the tar stream inside
	// the encryption. Bytes appended to an encrypted archive break age's
	// final chunk and are reported as [ErrTruncated] (or [ErrTampered]),
	// since age cannot tell where the real end was.
	ErrTrailingData = errors.New("archive has trailing data")
	// ErrWrongKey means none of the identities opens the archive, or no
	// identity was given for an encrypted archive. A damaged recipient
	// stanza in the age header also looks like this.
	ErrWrongKey = errors.New("no identity matches the archive")
	// ErrNotArchive means the input is not an etcdsafe archive.
	ErrNotArchive = errors.New("not an etcdsafe archive")
	// ErrUnencrypted means the archive is not encrypted and the reader did
	// not set Insecure.
	ErrUnencrypted = errors.New("archive is not encrypted")
	// ErrUnsupportedVersion means the archive's FormatVersion is newer than
	// this build understands.
	ErrUnsupportedVersion = errors.New("unsupported archive format version")
)
