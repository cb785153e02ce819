package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/store"
)

// IndexInfo describes the key index written beside an archive.
type IndexInfo struct {
	// Bytes is the index's size; Records the key bucket's records in it.
	Bytes   int64
	Records int64
	// Build is how long the index took to build, while the archive was
	// being compressed.
	Build time.Duration
}

// indexBuild is the key index being built from the snapshot on a
// goroutine of its own while the archive is written, into an unlinked
// temp file under TmpDir (an index is 5% to 10% of the archive: 47 MB for
// a million objects, which memory need not hold; its bytes are age
// ciphertext already).
type indexBuild struct {
	f      *os.File
	n      countWriter
	w      *keyindex.Writer
	done   chan struct{}
	cancel context.CancelFunc
	err    error
	took   time.Duration
}

// startIndex starts building the key index of src (a db file through
// bbolt, a live snapshot's encrypted spool through its ReadAt), or returns
// nil (and logs why) when none is written: NoIndex, an unencrypted
// archive, the archive on standard output.
func (r *run) startIndex(ctx context.Context, src *source) *indexBuild {
	o := &r.o
	switch {
	case o.NoIndex || o.Stdout != nil:
		return nil
	case o.Insecure:
		r.log.Info("no key index for an unencrypted archive")
		return nil
	case src.snap == nil && src.spool == nil:
		return nil
	}
	var compact int64
	if src.snap != nil {
		compact = src.snap.CompactRevision()
	}
	b := &indexBuild{done: make(chan struct{})}
	var err error
	if b.f, err = os.CreateTemp(o.TmpDir, ".etcdsafe-index-*"); err != nil {
		r.log.Warn("no key index", "err", err.Error())
		return nil
	}
	// unlinked at once: a killed run leaves nothing
	if err := os.Remove(b.f.Name()); err != nil {
		r.log.Warn("no key index", "err", err.Error())
		_ = b.f.Close()
		return nil
	}
	b.n.w = b.f
	b.w, err = keyindex.NewWriter(&b.n, keyindex.WriterOptions{Recipients: o.Recipients, Header: keyindex.Header{
		Created: r.created, Revision: src.revision, CompactRevision: compact,
		SnapshotSize: src.size, SnapshotSHA256: src.sha256,
	}})
	if err != nil {
		r.log.Warn("no key index", "err", err.Error())
		_ = b.f.Close()
		return nil
	}
	ctx, b.cancel = context.WithCancel(ctx)
	go func() {
		defer close(b.done)
		t0 := time.Now()
		var problems []inspect.Problem
		if src.snap != nil {
			problems, b.err = keyindex.Build(ctx, src.snap, b.w)
		} else {
			problems, b.err = keyindex.BuildFrom(ctx, src.spool, src.size, b.w)
		}
		if len(problems) > 0 {
			r.log.Warn("records left out of the key index", "count", len(problems), "first", problems[0].Error())
		}
		b.took = time.Since(t0)
	}()
	return b
}

// stop ends a build whose archive failed.
func (b *indexBuild) stop() {
	if b != nil {
		b.cancel()
		<-b.done
		_ = b.f.Close()
	}
}

// indexData is a finished index: its n bytes at r.
type indexData struct {
	r io.ReaderAt
	n int64
}

// close releases the index's temp file; nil is a no-op.
func (b *indexBuild) close() {
	if b != nil {
		_ = b.f.Close()
	}
}

// countWriter counts what passes to w.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// finish waits for the build and closes the index with the archive's
// size and SHA-256; nil (logged) when it failed: the archive is good
// without it. The caller calls close once the index is published.
func (b *indexBuild) finish(r *run, archiveSize int64, archiveSHA256 string) (*IndexInfo, *indexData) {
	if b == nil {
		return nil, nil
	}
	<-b.done
	b.cancel()
	err := b.err
	if err == nil {
		err = b.w.Close(archiveSize, archiveSHA256)
	}
	if err != nil {
		r.log.Warn("no key index: timeline will read this archive whole", "err", err.Error())
		return nil, nil
	}
	return &IndexInfo{Bytes: b.n.n, Records: b.w.Records(), Build: b.took}, &indexData{r: b.f, n: b.n.n}
}

// putIndex publishes the index beside archive name, replacing any stale
// one.
func putIndex(ctx context.Context, t store.Target, name string, idx *indexData, lock *store.Retention) error {
	up, err := t.Put(ctx, name+keyindex.Suffix, store.PutOptions{Retention: lock})
	if err != nil {
		return fmt.Errorf("write key index: %w", err)
	}
	defer up.Abort()
	if _, err := io.Copy(up, io.NewSectionReader(idx.r, 0, idx.n)); err != nil {
		return fmt.Errorf("write key index: %w", err)
	}
	if err := up.Commit(idx.n); err != nil {
		return fmt.Errorf("write key index: %w", err)
	}
	return nil
}

// Index verdicts of [VerifyReport.Index].
const (
	IndexMatches = "matches"
	IndexNone    = "none"
	IndexBad     = "BAD"
)

// checkIndex reads the archive's key index, if it has one, with the
// archive's identities, and checks it against the archive verified (size,
// SHA-256, the snapshot's SHA-256) and against the snapshot extracted
// (every record: the count and hash of the records an index of it would
// hold). A damaged or foreign index is an error wrapping
// archive.ErrTampered (or the index's own kind).
func (r *VerifyReport) checkIndex(ctx context.Context, open func() (io.ReadCloser, error), ids []age.Identity, snapPath string) error {
	r.Index = IndexNone
	if open == nil {
		return nil
	}
	rc, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	r.Index = IndexBad
	if err != nil {
		return fmt.Errorf("key index of %s: %w", r.Archive, err)
	}
	defer rc.Close()
	ix, err := keyindex.Read(ctx, rc, keyindex.ReadOptions{Name: r.Archive + keyindex.Suffix, Identities: ids})
	if err != nil {
		return err
	}
	snapSHA := ""
	if e := r.Manifest.Entry(archive.SnapshotPath); e != nil {
		snapSHA = e.SHA256
	}
	if err := ix.CheckArchive(r.ArchiveBytes, r.SHA256, snapSHA); err != nil {
		return err
	}
	snap, err := inspect.Open(snapPath, inspect.OpenOptions{Name: r.Archive + " (its etcd/snapshot.db)"})
	if err != nil {
		return fmt.Errorf("snapshot in %s: %w", r.Archive, err)
	}
	defer snap.Close()
	n, sum, err := keyindex.Digest(ctx, snap)
	if err != nil {
		return fmt.Errorf("snapshot in %s: %w", r.Archive, err)
	}
	if n != ix.Trailer.Records || sum != ix.Trailer.RecordsSHA256 {
		return &keyindex.Error{Name: ix.Name, Kind: keyindex.ErrMismatch,
			Reason: fmt.Sprintf("it lists %d records (sha256 %s), the snapshot holds %d (sha256 %s)", ix.Trailer.Records, ix.Trailer.RecordsSHA256, n, sum)}
	}
	r.Index = IndexMatches
	return nil
}

// fileIndex opens the key index beside the archive at path.
func fileIndex(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path + keyindex.Suffix) }
}
