package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// VerifyReport summarises a successful [Verify].
type VerifyReport struct {
	// Manifest is the verified manifest.
	Manifest *Manifest
	// Encrypted reports whether the archive was age-encrypted.
	Encrypted bool
	// Entries is the number of entries checked, MANIFEST.json excluded.
	Entries int
	// ContentBytes is the total size of the file entries checked.
	ContentBytes int64
	// ArchiveBytes is the size of the archive as read from src.
	ArchiveBytes int64
}

// Verify reads the whole archive from src: it decrypts, decompresses and
// checks every entry's size and SHA-256 against the manifest, the entry
// list, the end of the encrypted stream and the absence of trailing data.
// It writes nothing. Errors wrap the package's sentinels; ctx cancels
// between blocks.
func Verify(ctx context.Context, src io.Reader, opts ReaderOptions) (*VerifyReport, error) {
	r, err := NewReader(&ctxReader{ctx: ctx, r: src}, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &VerifyReport{Manifest: r.Manifest(), Encrypted: r.Encrypted()}
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rep.Entries++
		rep.ContentBytes += e.Size
	}
	rep.ArchiveBytes = r.ArchiveBytes()
	return rep, nil
}

// ExtractSnapshot writes the archive's etcd/snapshot.db as the new 0600
// file dstDir/snapshot.db, and reads the rest of the archive to verify it.
// dstDir must exist and be private: an fsx.Staging directory, which a
// later run can sweep if this one is killed (internal/fsx). It returns the file's path
// only when the whole archive verified; on error the file is removed.
func ExtractSnapshot(ctx context.Context, src io.Reader, opts ReaderOptions, dstDir string) (p string, m *Manifest, err error) {
	r, err := NewReader(&ctxReader{ctx: ctx, r: src}, opts)
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	dst := filepath.Join(dstDir, "snapshot.db")
	defer func() {
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	found := false
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		if e.Path != SnapshotPath {
			continue
		}
		found = true
		if err := writeNewFile(dst, r, 0o600); err != nil {
			return "", nil, err
		}
	}
	if !found {
		return "", nil, fmt.Errorf("archive holds no %s", SnapshotPath)
	}
	return dst, r.Manifest(), nil
}

// writeNewFile copies r into a new file at p (O_EXCL) and syncs it.
func writeNewFile(p string, r io.Reader, perm os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %q: %w", p, err)
	}
	_, err = io.CopyBuffer(f, readerOnly{r}, make([]byte, copyBufSize))
	if err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %q: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %q: %w", p, err)
	}
	return nil
}

// ExtractKubeDir restores the archive's kubernetes/ entries under dstRoot,
// which must exist; existing files are never overwritten. filter, if not
// nil, is given each entry's path relative to kubernetes/ and returns
// whether to restore it (skipped entries are still verified). Modes, times
// and symlinks (as links) are restored, owners only when running as root;
// symlink times are not. Entries that would land outside dstRoot or be
// written through a symlink are refused with [ErrTampered].
//
// Content is written as it is decrypted, which age has already
// authenticated chunk by chunk, but the archive as a whole is verified only
// at the end: on error dstRoot may hold a partial tree, so extract into a
// fresh directory and remove it on failure.
func ExtractKubeDir(ctx context.Context, src io.Reader, opts ReaderOptions, dstRoot string, filter func(rel string) bool) error {
	root, err := os.OpenRoot(dstRoot)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	r, err := NewReader(&ctxReader{ctx: ctx, r: src}, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	var dirs []*EntryInfo // modes and times applied last, deepest first
	asRoot := os.Geteuid() == 0
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		rel, ok := strings.CutPrefix(e.Path, KubeDirPath+"/")
		if !ok || (filter != nil && !filter(rel)) {
			continue
		}
		if err := checkParents(root, rel); err != nil {
			return err
		}
		if parent := path.Dir(rel); parent != "." {
			if err := root.MkdirAll(parent, 0o700); err != nil {
				return fmt.Errorf("create %q: %w", parent, err)
			}
		}
		switch e.Type {
		case TypeDir:
			if err := root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("create dir %q: %w", rel, err)
			}
			if st, err := root.Lstat(rel); err != nil || !st.IsDir() {
				return fmt.Errorf("create dir %q: exists and is not a directory", rel)
			}
			dirs = append(dirs, e)
			continue
		case TypeSymlink:
			if err := root.Symlink(e.LinkTarget, rel); err != nil {
				return fmt.Errorf("create symlink %q: %w", rel, err)
			}
			if asRoot {
				if err := root.Lchown(rel, e.UID, e.GID); err != nil {
					return fmt.Errorf("chown %q: %w", rel, err)
				}
			}
			continue
		}
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create %q: %w", rel, err)
		}
		_, err = io.CopyBuffer(f, readerOnly{r}, make([]byte, 256<<10))
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %q: %w", rel, cerr)
		}
		if err != nil {
			return err
		}
		if err := e.ApplyMeta(root, rel, asRoot); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		rel := strings.TrimPrefix(dirs[i].Path, KubeDirPath+"/")
		if err := dirs[i].ApplyMeta(root, rel, asRoot); err != nil {
			return err
		}
	}
	return nil
}

// checkParents refuses rel if any existing parent is not a real directory.
// os.Root already stops escapes; this also stops an archive from writing
// through a symlink it created itself.
func checkParents(root *os.Root, rel string) error {
	dir := path.Dir(rel)
	for dir != "." {
		st, err := root.Lstat(dir)
		if err == nil && !st.IsDir() {
			return fmt.Errorf("entry %q would be written through %q, which is not a directory: %w", rel, dir, ErrTampered)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("check %q: %w", dir, err)
		}
		dir = path.Dir(dir)
	}
	return nil
}

// ApplyMeta gives the file or directory rel under root e's mode and times,
// and (asRoot) its owner: what extracting e ends with.
func (e *EntryInfo) ApplyMeta(root *os.Root, rel string, asRoot bool) error {
	if asRoot {
		if err := root.Lchown(rel, e.UID, e.GID); err != nil {
			return fmt.Errorf("chown %q: %w", rel, err)
		}
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err := root.Chmod(rel, e.FileMode()); err != nil {
		return fmt.Errorf("chmod %q: %w", rel, err)
	}
	if err := root.Chtimes(rel, e.ModTime, e.ModTime); err != nil {
		return fmt.Errorf("set times of %q: %w", rel, err)
	}
	return nil
}
