package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/etcdsafe/etcdsafe/internal/ctxio"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// maxKeptSize bounds a kube dir file handed back in [Extracted.Kept];
// larger files are never kept.
const maxKeptSize = 1 << 20

// ExtractOptions says what [Extract] writes and keeps besides verifying.
// The zero value writes nothing: the archive is only verified.
type ExtractOptions struct {
	// Path is the archive's file, when it is one. A failure age cannot
	// pin down is then told apart by the file's sidecar: a damaged final
	// chunk from a cut one ([ErrTampered] instead of [ErrTruncated]) and
	// a damaged recipient stanza from a wrong key ([ErrTampered] instead
	// of [ErrWrongKey]). Empty for a stream such as standard input.
	Path string
	// Sidecar, used when Path is empty, returns the sidecar of the archive
	// read from the stream (an object's, fetched from its store), for the
	// same explanations: the archive's size is then the bytes read from
	// src. It is called only when an error needs explaining; its errors
	// (no sidecar among them) leave the error as it was. nil for a stream
	// without one, such as standard input.
	Sidecar func() (*Sidecar, error)
	// Name, when set, names the archive in errors: "archive NAME: …".
	Name string
	// SnapshotTo, when set, is the new file etcd/snapshot.db is written
	// to (0600, O_EXCL, see [fsx.WriteNew]), and the archive must hold
	// one. Its directory must be private and swept when a run is killed:
	// an fsx.Staging directory. The file is removed on any error.
	SnapshotTo string
	// KubeDirTo, when set, is an existing private directory the
	// kubernetes/ entries are staged under: files 0600, directories 0700,
	// symlinks as links. Modes, owners and times are not applied (see
	// [EntryInfo.ApplyMeta]). No entry is written outside it or through a
	// symlink ([CheckParents]). On error it may hold a partial tree.
	KubeDirTo string
	// Keep selects kube dir files, by path relative to kubernetes/, to be
	// returned in [Extracted.Kept]: regular files of at most 1 MiB
	// (larger ones are staged but not kept).
	Keep func(rel string) bool
	// OnStaged, if set, is called after the snapshot or a kube dir entry
	// has been written; an error stops the extraction.
	OnStaged func(e *EntryInfo) error
	// SHA256 computes [Extracted.ArchiveSHA256].
	SHA256 bool
}

// Extracted is what a successful [Extract] read.
type Extracted struct {
	// Manifest is the verified manifest.
	Manifest *Manifest
	// Encrypted reports whether the archive was age-encrypted.
	Encrypted bool
	// Entries is the number of entries checked, MANIFEST.json excluded.
	Entries int
	// ArchiveBytes is the size of the archive as read from src.
	ArchiveBytes int64
	// ArchiveSHA256 is the hex SHA-256 of those bytes, when
	// [ExtractOptions.SHA256] asked for it.
	ArchiveSHA256 string
	// Snapshot is [ExtractOptions.SnapshotTo], now holding the snapshot.
	Snapshot string
	// Kept holds the content of the files [ExtractOptions.Keep] selected,
	// by path relative to kubernetes/.
	Kept map[string][]byte
}

// Extract reads the whole archive from src, once, and is the one read
// path of every etcdsafe reader (verify, the read commands, restore). It
// decrypts, decompresses and checks every entry's size and SHA-256
// against the manifest, the entry list, the end of the encrypted stream
// and the absence of trailing data, writing and keeping what x asks for
// on the way. Plain archives need [ReaderOptions.Insecure].
//
// Content is written as it is decrypted, which age has already
// authenticated chunk by chunk, but nothing is verified until the end: it
// returns a result only when the whole archive verified. Errors wrap the
// package's sentinels, or ctx's error once ctx is done (checked between
// buffers). The caller closes src.
func Extract(ctx context.Context, src io.Reader, opts ReaderOptions, x ExtractOptions) (res *Extracted, err error) {
	named := false // err names the archive already
	var counted countingReader
	defer func() {
		if err == nil {
			return
		}
		if x.SnapshotTo != "" {
			_ = os.Remove(x.SnapshotTo)
		}
		cerr := ctx.Err()
		if cerr != nil && !errors.Is(err, cerr) {
			// A read cut by the cancellation can look like damage to age:
			// the cause is the cancellation, not a sentinel.
			err = fmt.Errorf("%w (%v)", cerr, err) //nolint:errorlint // not %w: the sentinel age's error may carry would name damage that is not there
		}
		if x.Name != "" && !named {
			err = fmt.Errorf("archive %s: %w", x.Name, err)
		}
		if cerr == nil {
			sc := sidecarOf{name: x.Path, path: x.Path, sidecar: x.Sidecar, n: counted.n}
			if x.Path == "" {
				sc.name = x.Name
				if sc.name == "" {
					sc.name = "the archive"
				}
			}
			err = explainKey(sc, opts.Identities, explainCut(sc, err))
		}
	}()
	ex, err := newExtractor(x)
	if err != nil {
		return nil, err
	}
	defer ex.close()
	var h hash.Hash
	src = ctxio.NewReader(ctx, counted.wrap(src))
	if x.SHA256 {
		h = sha256.New()
		src = io.TeeReader(src, h)
	}
	res, err = walk(ctx, src, opts, ex.entry)
	if err != nil {
		return nil, err
	}
	if x.SnapshotTo != "" && !ex.snapshot {
		named = true
		what := "archive"
		if x.Name != "" {
			what += " " + x.Name
		}
		return nil, fmt.Errorf("%s holds no %s: %w", what, SnapshotPath, ErrTampered)
	}
	if h != nil {
		res.ArchiveSHA256 = hex.EncodeToString(h.Sum(nil))
	}
	res.Snapshot, res.Kept = x.SnapshotTo, ex.kept
	return res, nil
}

// walk reads the archive to its verified end, handing each entry and its
// content to fn, which may read all, part or none of it.
func walk(ctx context.Context, src io.Reader, opts ReaderOptions, fn func(e *EntryInfo, r io.Reader) error) (*Extracted, error) {
	r, err := NewReader(src, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res := &Extracted{Manifest: r.Manifest(), Encrypted: r.Encrypted()}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		res.Entries++
		if err := fn(e, readerOnly{r}); err != nil {
			return nil, err
		}
	}
	res.ArchiveBytes = r.ArchiveBytes()
	return res, nil
}

// countingReader counts the bytes read from r: a stream's size, for the
// explanations.
type countingReader struct {
	r     io.Reader
	count int64
}

func (c *countingReader) wrap(r io.Reader) io.Reader { c.r = r; return c }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count += int64(n)
	return n, err
}

func (c *countingReader) n() int64 { return c.count }

// extractor carries out an [ExtractOptions] entry by entry.
type extractor struct {
	x        ExtractOptions
	snapDir  *os.Root // SnapshotTo's directory
	kube     *os.Root // KubeDirTo
	snapshot bool     // the snapshot was written
	kept     map[string][]byte
}

func newExtractor(x ExtractOptions) (ex *extractor, err error) {
	ex = &extractor{x: x}
	defer func() {
		if err != nil {
			ex.close()
		}
	}()
	if x.SnapshotTo != "" {
		if ex.snapDir, err = os.OpenRoot(filepath.Dir(x.SnapshotTo)); err != nil {
			return nil, fmt.Errorf("open staging dir: %w", err)
		}
	}
	if x.KubeDirTo != "" {
		if ex.kube, err = os.OpenRoot(x.KubeDirTo); err != nil {
			return nil, fmt.Errorf("open staging dir: %w", err)
		}
	}
	return ex, nil
}

func (ex *extractor) close() {
	if ex.snapDir != nil {
		_ = ex.snapDir.Close()
	}
	if ex.kube != nil {
		_ = ex.kube.Close()
	}
}

func (ex *extractor) entry(e *EntryInfo, r io.Reader) error {
	if e.Path == SnapshotPath {
		if ex.snapDir == nil {
			return nil
		}
		if _, err := fsx.WriteNew(ex.snapDir, filepath.Base(ex.x.SnapshotTo), r); err != nil {
			return fmt.Errorf("extract the snapshot: %w", err)
		}
		ex.snapshot = true
		return ex.staged(e)
	}
	rel, ok := strings.CutPrefix(e.Path, KubeDirPath+"/")
	if !ok {
		return nil
	}
	if ex.x.Keep != nil && e.Type == TypeFile && e.Size <= maxKeptSize && ex.x.Keep(rel) {
		b, err := io.ReadAll(io.LimitReader(r, maxKeptSize))
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if ex.kept == nil {
			ex.kept = map[string][]byte{}
		}
		ex.kept[rel], r = b, bytes.NewReader(b)
	}
	if ex.kube == nil {
		return nil
	}
	if err := stageEntry(ex.kube, rel, e, r); err != nil {
		return err
	}
	return ex.staged(e)
}

func (ex *extractor) staged(e *EntryInfo) error {
	if ex.x.OnStaged == nil {
		return nil
	}
	return ex.x.OnStaged(e)
}

// stageEntry writes one kube dir entry under root, privately: modes and
// owners are applied when the entry is put in place.
func stageEntry(root *os.Root, rel string, e *EntryInfo, r io.Reader) error {
	if err := CheckParents(root, rel); err != nil {
		return err
	}
	if parent := path.Dir(rel); parent != "." {
		if err := root.MkdirAll(parent, 0o700); err != nil {
			return fmt.Errorf("stage %q: %w: %w", rel, ErrTampered, err)
		}
	}
	switch e.Type {
	case TypeDir:
		if err := root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("stage dir %q: %w: %w", rel, ErrTampered, err)
		}
		if st, err := root.Lstat(rel); err != nil || !st.IsDir() {
			return fmt.Errorf("stage dir %q: exists and is not a directory: %w", rel, ErrTampered)
		}
		return nil
	case TypeSymlink:
		if err := root.Symlink(e.LinkTarget, rel); err != nil {
			return fmt.Errorf("stage symlink %q: %w: %w", rel, ErrTampered, err)
		}
		return nil
	}
	if _, err := fsx.WriteNew(root, rel, r); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %w", ErrTampered, err)
		}
		return fmt.Errorf("stage %q: %w", rel, err)
	}
	return nil
}

// CheckParents refuses rel if any existing parent under root is not a
// real directory, with an error wrapping [ErrTampered]. os.Root already
// stops escapes; this also stops an archive from writing through a
// symlink it created itself, and restore from writing through one in the
// kube dir.
func CheckParents(root *os.Root, rel string) error {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		st, err := root.Lstat(dir)
		if err == nil && !st.IsDir() {
			return fmt.Errorf("entry %q would be written through %q, which is not a directory: %w", rel, dir, ErrTampered)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %q: %w", dir, err)
		}
	}
	return nil
}

// ApplyMeta gives the file or directory rel under root e's mode and times,
// and (asRoot) its owner: what putting a staged entry in place ends with.
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
