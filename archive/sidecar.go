package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// SidecarSuffix is appended to an archive's file name to name its sidecar.
const SidecarSuffix = ".json"

// SidecarVersion is the sidecar schema this package writes.
const SidecarVersion = 1

// maxSidecarSize bounds a sidecar read from disk.
const maxSidecarSize = 1 << 20

// Sidecar is the small unencrypted JSON file written beside an archive so
// that listing, retention and a quick integrity check work without the
// key. It holds no secret: no key material, no file content, only figures
// that the archive's own manifest also holds, plus the archive's size and
// hash and the fingerprints of its recipients. It is not authenticated:
// anyone who can write the directory can change it, so it can detect
// damage but not prove authenticity (only decryption does that).
type Sidecar struct {
	// Version is [SidecarVersion].
	Version int `json:"sidecar_version"`
	// Archive is the archive's base file name.
	Archive string `json:"archive"`
	// FormatVersion is the archive's [FormatVersion].
	FormatVersion int `json:"format_version"`
	// Created is when the backup was taken, in UTC.
	Created time.Time `json:"created"`
	// Host and Cluster name where the backup was taken; Cluster may be
	// empty.
	Host    string `json:"host,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// Source is the etcd endpoint or file the snapshot came from.
	Source string `json:"source,omitempty"`
	// Revision and EtcdVersion describe the snapshot, when known.
	Revision    int64  `json:"revision,omitempty"`
	EtcdVersion string `json:"etcd_version,omitempty"`
	// DBSize is the snapshot size in bytes; ContentBytes the total size of
	// all file entries (snapshot and kube dir) before compression.
	DBSize       int64 `json:"db_size"`
	ContentBytes int64 `json:"content_bytes"`
	// Entries is the number of archive entries besides MANIFEST.json.
	Entries int `json:"entries"`
	// ArchiveSize and ArchiveSHA256 (lowercase hex) describe the archive
	// file itself.
	ArchiveSize   int64  `json:"archive_size"`
	ArchiveSHA256 string `json:"archive_sha256"`
	// Encrypted is false only for --insecure-no-encryption archives.
	Encrypted bool `json:"encrypted"`
	// Recipients are fingerprints of the recipients, from
	// [RecipientFingerprint]; never the keys themselves.
	Recipients []string `json:"recipients,omitempty"`
}

// SidecarPath returns the sidecar path of the archive at archivePath.
func SidecarPath(archivePath string) string { return archivePath + SidecarSuffix }

// RecipientFingerprint returns a short, non-secret label for a recipient
// line as given to [ParseRecipients]: its type and the first 16 hex digits
// of the SHA-256 of the line, e.g. "x25519:sha256:3f1c...". "scrypt" stands
// for a passphrase recipient (pass an empty line).
func RecipientFingerprint(line string) string {
	line = strings.TrimSpace(line)
	if line == "" {
		return "scrypt"
	}
	typ := "unknown"
	switch {
	case strings.HasPrefix(line, "age1pq1"):
		typ = "mlkem768x25519"
	case strings.HasPrefix(line, "age1"):
		typ = "x25519"
	case strings.HasPrefix(line, "ssh-ed25519 "):
		typ = "ssh-ed25519"
		line = sshKeyField(line)
	case strings.HasPrefix(line, "ssh-rsa "):
		typ = "ssh-rsa"
		line = sshKeyField(line)
	}
	sum := sha256.Sum256([]byte(line))
	return typ + ":sha256:" + hex.EncodeToString(sum[:8])
}

// sshKeyField drops an ssh public key's comment, which does not change
// the key.
func sshKeyField(line string) string {
	f := strings.Fields(line)
	if len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return line
}

// Marshal returns the sidecar as indented JSON with a final newline.
func (s *Sidecar) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal sidecar: %w", err)
	}
	return append(b, '\n'), nil
}

// ReadSidecar reads and parses the sidecar at path (at most 1 MiB).
// Malformed content wraps [ErrNotArchive]; a newer schema wraps
// [ErrUnsupportedVersion].
func ReadSidecar(path string) (*Sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open sidecar: %w", err)
	}
	defer f.Close()
	return DecodeSidecar(f, path)
}

// DecodeSidecar reads and parses a sidecar from r (at most 1 MiB), as
// [ReadSidecar] does for a file; name is what messages call it. The
// caller closes r.
func DecodeSidecar(r io.Reader, name string) (*Sidecar, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSidecarSize+1))
	if err != nil {
		return nil, fmt.Errorf("read sidecar %q: %w", name, err)
	}
	if len(b) > maxSidecarSize {
		return nil, fmt.Errorf("sidecar %q is larger than %d bytes: %w", name, maxSidecarSize, ErrNotArchive)
	}
	var s Sidecar
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse sidecar %q: %w: %w", name, err, ErrNotArchive)
	}
	switch {
	case s.Version > SidecarVersion:
		return nil, fmt.Errorf("sidecar %q has version %d, this build reads up to %d: %w", name, s.Version, SidecarVersion, ErrUnsupportedVersion)
	case s.Version < 1 || s.Archive == "" || len(s.ArchiveSHA256) != 64 || s.ArchiveSize < 0:
		return nil, fmt.Errorf("sidecar %q lacks version, archive name, size or hash: %w", name, ErrNotArchive)
	}
	return &s, nil
}

// errSizeMismatch is wrapped with ErrTruncated or ErrTampered.
var errSizeMismatch = errors.New("archive size differs from its sidecar")

// VerifyAgainstSidecar hashes the archive file at path and compares its
// size and SHA-256 with s. A shorter file wraps [ErrTruncated], any other
// difference [ErrTampered]. It needs no key and proves only that the file
// is the one the backup wrote, not that the sidecar is genuine.
func VerifyAgainstSidecar(path string, s *Sidecar) error {
	size, sum, err := HashFile(path)
	if err != nil {
		return err
	}
	switch {
	case size < s.ArchiveSize:
		return fmt.Errorf("%q is %d bytes, sidecar says %d: %w: %w", path, size, s.ArchiveSize, errSizeMismatch, ErrTruncated)
	case size > s.ArchiveSize:
		return fmt.Errorf("%q is %d bytes, sidecar says %d: %w: %w", path, size, s.ArchiveSize, errSizeMismatch, ErrTampered)
	case sum != s.ArchiveSHA256:
		return fmt.Errorf("%q hashes to sha256 %s, sidecar says %s: %w", path, sum, s.ArchiveSHA256, ErrTampered)
	}
	return nil
}
