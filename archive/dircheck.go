package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrDirTooLarge means a directory has too many entries (or too long
// names) for the manifest an archive can hold ([MaxManifestSize]).
var ErrDirTooLarge = errors.New("directory too large for one archive manifest")

// manifestHeadroom covers the manifest's fields besides the kube dir
// entries: tool, host, endpoint, ids (a few hundred bytes in practice) and
// the snapshot's entry.
const manifestHeadroom = 4 << 10

// DirStats is what [CheckDir] counted.
type DirStats struct {
	// Entries is every file, directory and symlink that would be archived;
	// Files the regular files among them and Bytes their total size.
	Entries, Files int
	Bytes          int64
	// ManifestBytes is the size MANIFEST.json would have with these
	// entries (exact for the entries, plus a small allowance for the rest).
	ManifestBytes int64
}

// DirTooLargeError is returned by [CheckDir] for a directory whose entries
// would not fit in the manifest. It wraps [ErrDirTooLarge].
type DirTooLargeError struct {
	Root string
	DirStats
	// Limit is [MaxManifestSize].
	Limit int64
}

func (e *DirTooLargeError) Error() string {
	return fmt.Sprintf("%s holds %d entries (%d files, %d bytes): their manifest would be %d bytes, over the archive format's limit of %d bytes",
		e.Root, e.Entries, e.Files, e.Bytes, e.ManifestBytes, e.Limit)
}

// Unwrap returns [ErrDirTooLarge].
func (e *DirTooLargeError) Unwrap() error { return ErrDirTooLarge }

// CheckDir walks root as [Writer.AddDir] would (same excludes, symlinks
// not followed, sockets and devices left out), reading metadata only, and
// tells whether its entries fit in an archive's manifest. Call it before
// the expensive part of a backup (the snapshot), so that a directory that
// cannot be archived is refused first. It returns the counts, and a
// [*DirTooLargeError] when they do not fit; walk errors are returned as
// AddDir would return them. It reads no file content and costs one lstat
// per entry.
func CheckDir(root string, excludes []string) (DirStats, error) {
	var st DirStats
	rootInfo, err := statKubeDir("check dir", root, excludes)
	if err != nil {
		return st, err
	}
	st.ManifestBytes = manifestHeadroom
	placeholder := strings.Repeat("0", 64)
	err = walkKubeDir(root, rootInfo, excludes, func(_ string, fi fs.FileInfo, e EntryInfo) error {
		switch e.Type {
		case TypeFile:
			e.Size, e.SHA256 = fi.Size(), placeholder
			st.Files++
			st.Bytes += fi.Size()
		case "":
			return nil
		}
		st.Entries++
		n, err := entryJSONSize(&e)
		if err != nil {
			return err
		}
		st.ManifestBytes += n
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("check dir %q: %w", root, err)
	}
	if st.ManifestBytes > MaxManifestSize {
		return st, &DirTooLargeError{Root: root, DirStats: st, Limit: MaxManifestSize}
	}
	return st, nil
}

// statKubeDir checks the exclude patterns and that root is a directory,
// and returns its info; what names the step in errors.
func statKubeDir(what, root string, excludes []string) (fs.FileInfo, error) {
	for _, p := range excludes {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", p, err)
		}
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s %q: not a directory", what, root)
	}
	return st, nil
}

// walkKubeDir walks root as an archive holds it, for both [CheckDir] and
// [Writer.AddDir]: entries matched by excludes are left out (an excluded
// directory with its content) and symlinks are not followed; rootInfo is
// root's own info (root may be a symlink to the directory the user
// named). fn gets each entry's path on disk, its info, and its entry with
// Path, Mode, ModTime, owner, Type and LinkTarget set; Type is empty for
// sockets, devices and FIFOs, which an archive leaves out.
func walkKubeDir(root string, rootInfo fs.FileInfo, excludes []string, fn func(p string, fi fs.FileInfo, e EntryInfo) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		rel = filepath.ToSlash(rel)
		name := KubeDirPath
		fi := rootInfo
		if rel != "." {
			name = KubeDirPath + "/" + rel
			if excluded(rel, excludes) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if fi, err = d.Info(); err != nil {
				return fmt.Errorf("stat %q: %w", p, err)
			}
		}
		e := EntryInfo{Path: name, Mode: unixMode(fi.Mode()), ModTime: fi.ModTime().UTC()}
		e.UID, e.GID = owner(fi)
		switch m := fi.Mode(); {
		case m.IsDir():
			e.Type = TypeDir
		case m.Type() == fs.ModeSymlink:
			e.Type = TypeSymlink
			if e.LinkTarget, err = os.Readlink(p); err != nil {
				return fmt.Errorf("read link %q: %w", p, err)
			}
		case m.IsRegular():
			e.Type = TypeFile
		}
		return fn(p, fi, e)
	})
}

// entryJSONSize is the number of bytes e takes in the "entries" array of
// an indented manifest ([Manifest.Marshal]): the object at depth 2, the
// newline and indent before it and the comma after it.
func entryJSONSize(e *EntryInfo) (int64, error) {
	b, err := json.MarshalIndent(e, "    ", "  ")
	if err != nil {
		return 0, fmt.Errorf("size manifest entry %q: %w", e.Path, err)
	}
	return int64(len(b)) + int64(len("\n    ,")), nil
}
