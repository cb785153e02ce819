package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// Info describes a snapshot written by [Save].
type Info struct {
	// Size is the file size in bytes, trailer included.
	Size int64
	// SHA256 is the hex trailer: the SHA-256 of the first Size-32 bytes.
	SHA256 string
	// FileSHA256 is the hex SHA-256 of the whole file, trailer included,
	// computed while saving (what archive.Writer.AddSnapshot needs, so
	// the file is not read a second time).
	FileSHA256 string
	// FileCRC32C is the CRC-32C (Castagnoli) of the whole file, computed in
	// the same pass (for archive.Writer.AddSnapshotCRC).
	FileCRC32C uint32
	// EtcdVersion is the server version the member reported for the
	// snapshot, e.g. "3.7.0"; empty if it did not say.
	EtcdVersion string
}

// testOnlyAfterWrite, when set, is called after each chunk is written to
// the temp file with the running byte count.
var testOnlyAfterWrite func(n int64)

// Save streams a snapshot from the member c is connected to (the
// Maintenance Snapshot RPC goes to one endpoint) into path. The file is
// created 0600 only after the whole stream has arrived and its trailer has
// been verified; on any error nothing exists under path. Save refuses to
// replace an existing path (the error wraps [fs.ErrExist]). It may be
// retried after an error.
func Save(ctx context.Context, c *clientv3.Client, path string) (info Info, err error) {
	if _, err := os.Lstat(path); err == nil {
		return Info{}, fmt.Errorf("save snapshot to %q: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("save snapshot to %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part-*")
	if err != nil {
		return Info{}, fmt.Errorf("create temp file for %q: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()

	info, err = receive(ctx, c, tmp)
	if err != nil {
		return Info{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync %q: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("close %q: %w", tmpName, err)
	}
	// Link instead of Rename: it fails rather than replace a file that
	// appeared at path while we were streaming.
	if err := os.Link(tmpName, path); err != nil {
		return Info{}, fmt.Errorf("commit snapshot to %q: %w", path, err)
	}
	if err := os.Remove(tmpName); err != nil {
		_ = os.Remove(path)
		return Info{}, fmt.Errorf("remove temp file %q: %w", tmpName, err)
	}
	if err := fsx.SyncDir(dir); err != nil {
		_ = os.Remove(path)
		return Info{}, err
	}
	return info, nil
}

// receive streams a snapshot from c into dst, hashing the plaintext on the
// way, and verifies its trailer at EOF.
func receive(ctx context.Context, c *clientv3.Client, dst io.Writer) (Info, error) {
	resp, err := c.SnapshotWithVersion(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("request snapshot: %w", err)
	}
	defer resp.Snapshot.Close()

	tw := newTrailerWriter()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	w := io.MultiWriter(dst, tw, crc)
	if testOnlyAfterWrite != nil {
		w = hookWriter{w: w, tw: tw}
	}
	n, err := io.CopyBuffer(w, resp.Snapshot, make([]byte, 1<<20))
	if err != nil {
		return Info{}, fmt.Errorf("receive snapshot after %d bytes: %w", n, err)
	}
	// The stream may end "cleanly" when the context is cancelled between
	// messages; never trust a stream the caller abandoned.
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("receive snapshot: %w", err)
	}
	sum, err := tw.check()
	if err != nil {
		return Info{}, fmt.Errorf("verify snapshot stream: %w", err)
	}
	return Info{Size: n, SHA256: sum, FileSHA256: tw.wholeSum(), FileCRC32C: crc.Sum32(), EtcdVersion: resp.Version}, nil
}

type hookWriter struct {
	w  io.Writer
	tw *trailerWriter
}

func (h hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	testOnlyAfterWrite(h.tw.n)
	return n, err
}
