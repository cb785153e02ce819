package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// source is a snapshot ready to be archived.
type source struct {
	reader      io.Reader // the whole snapshot, read once more by the archive writer
	size        int64
	sha256      string
	crc32c      uint32 // of the whole file, from the same read as sha256
	endpoint    string
	memberID    string
	clusterID   string
	etcdVersion string
	revision    int64
	// snap is the snapshot opened read-only, for the key index; a live
	// snapshot has none (its spool is encrypted: bbolt cannot open it),
	// but spool, which the index walks through ReadAt
	snap    *inspect.Snapshot
	spool   io.ReaderAt
	cleanup []func()
}

func (s *source) close() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

func openSource(ctx context.Context, o *Options, log *slog.Logger) (_ *source, err error) {
	src := &source{}
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	if o.DB != "" || o.DataDir != "" {
		err = openFile(ctx, o, log, src)
	} else {
		err = openLive(ctx, o, log, src)
	}
	if err != nil {
		return nil, err
	}
	return src, nil
}

// openFile opens a db or snapshot file, or a stopped member's data dir.
func openFile(ctx context.Context, o *Options, log *slog.Logger, src *source) error {
	p := o.DB
	if p == "" {
		var err error
		if p, err = inspect.ResolveDBPath(o.DataDir); err != nil {
			return err
		}
	}
	// Hold bbolt's shared lock while archiving: a running etcd holds it
	// exclusively (so we refuse), and etcd cannot start and change the
	// file under us.
	db, rev, err := openDB(p)
	if err != nil {
		return err
	}
	src.cleanup = append(src.cleanup, func() { _ = db.Close() })
	h, err := snapshot.HashFile(p)
	if err != nil {
		return err
	}
	if h.Trailer == snapshot.TrailerMismatch {
		return fmt.Errorf("%s: %w", p, snapshot.ErrTrailerMismatch)
	}
	if h.Trailer == snapshot.TrailerNone {
		// No checksum vouches for a raw db: bbolt's page check must, or a
		// zeroed page would be archived as a good backup.
		t0 := time.Now()
		if err := db.Check(ctx); err != nil {
			return fmt.Errorf("check %s before backup: %w", p, err)
		}
		log.Info("page check passed", "path", p, "duration", time.Since(t0).Round(time.Millisecond).String())
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	src.cleanup = append(src.cleanup, func() { _ = f.Close() })
	src.reader, src.size, src.sha256, src.crc32c, src.revision = f, h.Size, h.SHA256, h.CRC32C, rev
	src.snap = db
	src.endpoint = "file://" + absPath(p)
	log.Info("snapshot from file", "path", p, "bytes", h.Size, "revision", rev, "trailer", h.Trailer.String())
	return nil
}

// openLive streams a snapshot from the first endpoint that answers into an
// encrypted spool in a locked staging dir under TmpDir.
func openLive(ctx context.Context, o *Options, log *slog.Logger, src *source) error {
	c, ep, status, err := connect(ctx, o)
	if err != nil {
		return err
	}
	src.cleanup = append(src.cleanup, func() { _ = c.Close() })
	stage, err := fsx.NewStaging(o.TmpDir, StagingPrefix)
	if err != nil {
		return fmt.Errorf("create snapshot staging dir: %w", err)
	}
	src.cleanup = append(src.cleanup, func() { _ = stage.Remove() })
	t0 := time.Now()
	spool, err := snapshot.SaveSpool(ctx, c, stage.Path)
	if err != nil {
		return fmt.Errorf("snapshot from %s: %w", ep, err)
	}
	src.cleanup = append(src.cleanup, func() { _ = spool.Close() })
	info := spool.Info
	rev, err := snapshot.NewestRevision(spool, info.Size)
	if err != nil {
		return fmt.Errorf("snapshot from %s: %w: %w", ep, inspect.ErrNotSnapshot, err)
	}
	src.reader, src.size, src.sha256, src.crc32c, src.revision = spool.NewReader(), info.Size, info.FileSHA256, info.FileCRC32C, rev
	src.spool = spool
	src.endpoint = ep
	src.etcdVersion = info.EtcdVersion
	if status != nil {
		src.memberID = fmt.Sprintf("%x", status.Header.GetMemberId())
		src.clusterID = fmt.Sprintf("%x", status.Header.GetClusterId())
		if src.etcdVersion == "" {
			src.etcdVersion = status.Version
		}
	}
	log.Info("snapshot saved", "endpoint", ep, "bytes", info.Size, "revision", rev,
		"member", src.memberID, "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// connect returns a client for the first endpoint that answers.
func connect(ctx context.Context, o *Options) (*clientv3.Client, string, *clientv3.StatusResponse, error) {
	var errs []error
	for _, ep := range o.Endpoints {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		co := snapshot.ConnectOptions{Endpoint: ep, DialTimeout: o.DialTimeout, CommandTimeout: o.CommandTimeout}
		if strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unixs://") {
			for _, f := range []string{o.TLS.CACert, o.TLS.Cert, o.TLS.Key} {
				if _, err := os.Stat(f); err != nil {
					return nil, "", nil, fmt.Errorf("etcd client certificate files: %w", err)
				}
			}
			tlsCfg, err := transport.TLSInfo{CertFile: o.TLS.Cert, KeyFile: o.TLS.Key, TrustedCAFile: o.TLS.CACert}.ClientConfig()
			if err != nil {
				return nil, "", nil, fmt.Errorf("load etcd client certificates: %w", err)
			}
			co.TLS = tlsCfg
		}
		c, st, err := snapshot.Connect(ctx, co)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", nil, ctx.Err()
			}
			errs = append(errs, err) // a *snapshot.DialError names the endpoint
			continue
		}
		return c, ep, st, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, "", nil, err
	}
	if len(errs) == 0 {
		return nil, "", nil, &OptionsError{"no etcd endpoint given"}
	}
	return nil, "", nil, fmt.Errorf("no etcd endpoint answered: %w", errors.Join(errs...))
}

// openDB opens p read-only (bbolt's shared lock held until the snapshot is
// closed) and returns its newest revision. A db a running etcd holds gives
// inspect.ErrLocked; a damaged or foreign file an integrity error.
func openDB(p string) (*inspect.Snapshot, int64, error) {
	s, err := inspect.Open(p, inspect.OpenOptions{})
	if err != nil {
		return nil, 0, err
	}
	rev, err := s.Revision()
	if err != nil {
		_ = s.Close()
		if errors.Is(err, inspect.ErrCorrupt) {
			return nil, 0, err
		}
		// The newest key of the key bucket is not a revision: a damaged
		// page, or not etcd's db.
		return nil, 0, fmt.Errorf("%w: %w", inspect.ErrCorrupt, err)
	}
	return s, rev, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
