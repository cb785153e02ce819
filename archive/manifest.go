package archive

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// FormatVersion is the archive format this package writes. Readers refuse
// larger versions with [ErrUnsupportedVersion]. Bump it on any change to the
// layout or the manifest schema.
const FormatVersion = 1

// MaxManifestSize bounds MANIFEST.json; larger manifests are refused.
const MaxManifestSize = 16 << 20

// Entry names fixed by the format.
const (
	ManifestPath = "MANIFEST.json"
	SnapshotPath = "etcd/snapshot.db"
	KubeDirPath  = "kubernetes"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Manifest is the content of MANIFEST.json, the first entry of an archive.
// Fields describing the source may be empty when unknown.
type Manifest struct {
	// FormatVersion is [FormatVersion] when written by this package.
	FormatVersion int `json:"format_version"`
	// Tool and ToolVersion name the program that wrote the archive.
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version"`
	// Created is when the backup was taken, in UTC.
	Created time.Time `json:"created"`
	// Host is the host name the backup ran on.
	Host string `json:"host,omitempty"`
	// Endpoint is the etcd client URL the snapshot came from, or the file
	// it was copied from.
	Endpoint string `json:"endpoint,omitempty"`
	// MemberID and ClusterID are etcd's hex ids.
	MemberID  string `json:"member_id,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
	// EtcdVersion is the server version, e.g. "3.7.3".
	EtcdVersion string `json:"etcd_version,omitempty"`
	// Revision is etcd's revision at snapshot time.
	Revision int64 `json:"revision,omitempty"`
	// DBSize is the snapshot size in bytes (trailer included).
	DBSize int64 `json:"db_size"`
	// Entries lists every tar entry after MANIFEST.json, in archive order.
	Entries []EntryInfo `json:"entries"`
}

// EntryInfo describes one tar entry.
type EntryInfo struct {
	// Path is the slash-separated name inside the archive, without a
	// trailing slash (the tar name of a directory has one).
	Path string `json:"path"`
	// Type is [TypeFile], [TypeDir] or [TypeSymlink].
	Type string `json:"type"`
	// Mode holds the Unix permission bits plus setuid (04000), setgid
	// (02000) and sticky (01000), as in tar's mode field.
	Mode uint32 `json:"mode"`
	// UID and GID are the numeric owner.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// ModTime is the modification time.
	ModTime time.Time `json:"mtime"`
	// Size and SHA256 (lowercase hex) describe a file's content; both are
	// zero values for directories and symlinks.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	// LinkTarget is a symlink's target, stored as is and never followed.
	LinkTarget string `json:"link_target,omitempty"`
}

// Marshal returns the manifest as indented JSON with a final newline.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Entry returns the entry named p, or nil.
func (m *Manifest) Entry(p string) *EntryInfo {
	for i := range m.Entries {
		if m.Entries[i].Path == p {
			return &m.Entries[i]
		}
	}
	return nil
}

// ReadManifest parses a manifest from r, reading at most
// [MaxManifestSize] bytes.
func ReadManifest(r io.Reader) (*Manifest, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest larger than %d bytes: %w", MaxManifestSize, ErrNotArchive)
	}
	return ParseManifest(b)
}

// ParseManifest parses and validates MANIFEST.json. It checks the version
// first, so a newer archive fails with [ErrUnsupportedVersion] even if its
// schema changed; other problems wrap [ErrNotArchive].
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest larger than %d bytes: %w", MaxManifestSize, ErrNotArchive)
	}
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse manifest: %w: %w", ErrNotArchive, err)
	}
	switch {
	case v.FormatVersion == nil || *v.FormatVersion < 1:
		return nil, fmt.Errorf("manifest has no valid format_version: %w", ErrNotArchive)
	case *v.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("archive format %d, this build reads up to %d: %w", *v.FormatVersion, FormatVersion, ErrUnsupportedVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w: %w", ErrNotArchive, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse manifest: data after the JSON object: %w", ErrNotArchive)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w: %w", ErrNotArchive, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.DBSize < 0 {
		return fmt.Errorf("negative db_size")
	}
	seen := make(map[string]bool, len(m.Entries))
	for i, e := range m.Entries {
		if err := validPath(e.Path); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[e.Path] || e.Path == ManifestPath {
			return fmt.Errorf("entry %d %q: duplicate path", i, e.Path)
		}
		seen[e.Path] = true
		if e.Mode&^0o7777 != 0 {
			return fmt.Errorf("entry %q: mode %o has bits beyond 07777", e.Path, e.Mode)
		}
		switch e.Type {
		case TypeFile:
			if e.Size < 0 {
				return fmt.Errorf("entry %q: negative size", e.Path)
			}
			if len(e.SHA256) != 64 || strings.ToLower(e.SHA256) != e.SHA256 {
				return fmt.Errorf("entry %q: sha256 is not 64 lowercase hex digits", e.Path)
			}
			if _, err := hex.DecodeString(e.SHA256); err != nil {
				return fmt.Errorf("entry %q: sha256 is not hex", e.Path)
			}
			if e.LinkTarget != "" {
				return fmt.Errorf("entry %q: file with a link target", e.Path)
			}
		case TypeDir, TypeSymlink:
			if e.Size != 0 || e.SHA256 != "" {
				return fmt.Errorf("entry %q: %s with content", e.Path, e.Type)
			}
			if (e.Type == TypeSymlink) != (e.LinkTarget != "") {
				return fmt.Errorf("entry %q: link target must be set exactly for symlinks", e.Path)
			}
			if strings.ContainsRune(e.LinkTarget, 0) {
				return fmt.Errorf("entry %q: NUL in link target", e.Path)
			}
		default:
			return fmt.Errorf("entry %q: unknown type %q", e.Path, e.Type)
		}
	}
	return nil
}

// validPath accepts clean, relative, slash-separated paths with no ".."
// segment and no NUL.
func validPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("empty path")
	case strings.ContainsRune(p, 0) || strings.ContainsRune(p, '\\'):
		return fmt.Errorf("path %q has NUL or backslash", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q escapes the archive root", p)
	}
	return nil
}

// FileMode is the entry's permission bits (setuid, setgid and sticky
// included) as an fs.FileMode, for restoring it.
func (e *EntryInfo) FileMode() fs.FileMode { return fileMode(e.Mode) }
