package timeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store"
)

// Opener opens a SOURCE (a path or URL) whole.
type Opener func(ctx context.Context, where string) (*source.Source, error)

// Discover returns the backups on t (a directory, a bucket prefix) with
// their sidecars and the key indexes beside them, as [backup.List] finds
// them; open opens one whole.
func Discover(ctx context.Context, t store.Target, open Opener) ([]Backup, error) {
	entries, err := backup.List(ctx, t)
	if err != nil {
		return nil, err
	}
	out := make([]Backup, 0, len(entries))
	for _, e := range entries {
		b := Backup{Name: e.Name, Where: e.Where, Time: e.Time, Sidecar: e.Sidecar}
		if e.Sidecar != nil {
			b.Revision = e.Sidecar.Revision
		}
		b.Open = func(ctx context.Context) (*source.Source, error) { return open(ctx, b.Where) }
		if e.Index {
			name := e.Name + keyindex.Suffix
			b.Index = func(ctx context.Context) (io.ReadCloser, error) { return t.Get(ctx, name) }
		}
		out = append(out, b)
	}
	return out, nil
}

// File is one SOURCE file given by path: an archive (with its sidecar and
// key index when they lie beside it), a snapshot or a db, dated by its
// sidecar or else its modification time.
func File(path string, open Opener) (Backup, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Backup{}, fmt.Errorf("source: %w", err)
	}
	b := Backup{Name: filepath.Base(path), Where: path, Time: st.ModTime().UTC()}
	b.Open = func(ctx context.Context) (*source.Source, error) { return open(ctx, path) }
	if !st.Mode().IsRegular() {
		return b, nil
	}
	sc, err := archive.ReadSidecar(archive.SidecarPath(path))
	switch {
	case err == nil && sc.Archive == b.Name:
		b.Sidecar, b.Time, b.Revision = sc, sc.Created.UTC(), sc.Revision
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return b, nil // an unreadable sidecar: no index is bound either
	}
	if _, err := os.Stat(path + keyindex.Suffix); err == nil {
		b.Index = func(context.Context) (io.ReadCloser, error) { return os.Open(path + keyindex.Suffix) }
	}
	return b, nil
}
