package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// sourceOptions are the flags every read command shares.
type sourceOptions struct {
	decryptionConfig string
	prefix           string
	lockTimeout      time.Duration
	check            bool
	// for backup archives
	identity         string
	passFile         string
	tmpDir           string
	allowUnencrypted bool
}

func (o *sourceOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.decryptionConfig, "decryption-config", decryptionConfigDefault(),
		"EncryptionConfiguration file with the keys of values encrypted at rest (env ETCDSAFE_DECRYPTION_CONFIG)")
	fs.StringVar(&o.prefix, "etcd-prefix", "/registry", "kube-apiserver's --etcd-prefix")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 2*time.Second, "how long to wait for a db another process holds")
	fs.BoolVar(&o.check, "check", false, "also run bbolt's page check over the whole file (the only check a db without SHA-256 trailer can have)")
	fs.StringVarP(&o.identity, "identity", "i", "", "for a backup archive: age identity file or unencrypted ssh key [$ETCDSAFE_IDENTITY]")
	fs.StringVar(&o.passFile, "passphrase-file", "", "for a backup archive: file holding its passphrase (or set ETCDSAFE_PASSPHRASE)")
	fs.StringVar(&o.tmpDir, "tmp-dir", "", "for a backup archive or standard input: where the snapshot is staged (0700 dir, removed on exit)")
	fs.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "read an unencrypted (.tar.zst) archive: nothing proves who wrote it")
}

// source is an opened SOURCE with what is needed to decode its objects.
type source struct {
	snap    *inspect.Snapshot
	dec     *decode.Decoder
	table   *decode.ResourceTable
	prefix  string
	cleanup func()
	archive bool // the db was extracted from a backup archive
	integ   *integrity
}

// readStagingPrefix names the private dirs an archive's or standard
// input's snapshot is staged in.
const readStagingPrefix = "etcdsafe-read-"

func openSource(cmd *cobra.Command, path string, o *sourceOptions) (_ *source, err error) {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	var dcr *decode.Decrypter
	if o.decryptionConfig != "" {
		b, err := os.ReadFile(o.decryptionConfig)
		if err != nil {
			return nil, fmt.Errorf("read decryption config: %w", err)
		}
		if dcr, err = decode.ParseEncryptionConfig(b); err != nil {
			return nil, fmt.Errorf("decryption config %s: %w", o.decryptionConfig, err)
		}
	}
	kind, err := sourceKind(path)
	if err != nil {
		return nil, err
	}
	name := path
	if path == "-" {
		name = "standard input"
	}
	dbPath, cleanup := path, func() {}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if kind == kindArchive || kind == kindStdin {
		sweepReadStaging(o.tmpDir, stderr)
		st, err := openStaged(ctx, path, o, cmd.InOrStdin(), stderr)
		if err != nil {
			return nil, err
		}
		dbPath, cleanup = st.dbPath, st.cleanup
		if st.archive && dcr == nil && st.encConfig != nil {
			// the cluster's own keys, from the backed-up kube dir
			if dcr, err = decode.ParseEncryptionConfig(st.encConfig); err != nil {
				return nil, fmt.Errorf("archive's kubernetes/%s: %w", st.encName, err)
			}
		}
		if st.archive {
			kind, name = kindArchive, name+" (its etcd/snapshot.db)"
		}
	}
	snap, err := inspect.Open(dbPath, inspect.OpenOptions{LockTimeout: o.lockTimeout, Name: name})
	if err != nil {
		// A bit flip in the meta page reads as "truncated" or "not a
		// db"; the trailer, when there is one, tells the damage as it is.
		if ts, _ := snapshot.VerifyTrailer(dbPath); ts == snapshot.TrailerMismatch {
			return nil, fmt.Errorf("%s is damaged: %w (%w)", name, snapshot.ErrTrailerMismatch, err)
		}
		return nil, err
	}
	s := &source{snap: snap, dec: decode.NewDecoder(dcr), table: decode.BuiltinResources(),
		prefix: strings.TrimSuffix(o.prefix, "/"), cleanup: cleanup, archive: kind == kindArchive}
	s.integ = startIntegrity(ctx, snap, name, o.check)
	if !snapshot.HasTrailerSize(snap.FileSize) && !o.check {
		what := "has no SHA-256 trailer (a copy of member/snap/db)"
		if snap.DBPath != path && kind == kindDB {
			what = "is a data dir: its db has no SHA-256 trailer"
		}
		fmt.Fprintf(stderr, "etcdsafe: warning: %s %s: its integrity is unchecked; --check runs bbolt's page check\n", termtext.Clean(name), what)
	}
	return s, nil
}

// Close closes the db and removes what an archive was extracted to.
func (s *source) Close() error {
	err := s.snap.Close()
	s.cleanup()
	return err
}

// out is the command's stdout held back until the integrity verdict.
func (s *source) out(ctx context.Context, w io.Writer) io.Writer {
	return &gateWriter{ctx: ctx, in: s.integ, w: w}
}

// settle returns the integrity error, if any, instead of err.
func (s *source) settle(ctx context.Context, err error) error {
	return s.integ.settle(ctx, err)
}

type srcKind int

const (
	kindDB srcKind = iota // a snapshot, a raw db or a data dir
	kindArchive
	kindStdin
)

// sourceKind refuses what is neither a regular file, a directory nor "-":
// opening a fifo blocks until a writer comes, beyond the reach of signals.
func sourceKind(path string) (srcKind, error) {
	if path == "-" {
		return kindStdin, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	switch {
	case st.IsDir():
		return kindDB, nil
	case !st.Mode().IsRegular():
		return 0, usagef("%s is a %s, not a regular file: SOURCE is a snapshot, a db, a data dir, an archive, or - for standard input", path, fileType(st.Mode()))
	}
	if a, _, err := archive.SniffFile(path); err != nil {
		return 0, fmt.Errorf("source: %w", err)
	} else if a {
		return kindArchive, nil
	}
	return kindDB, nil
}

func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe (fifo)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// sweepReadStaging removes what read commands killed before their cleanup
// left in the staging parent, saying so.
func sweepReadStaging(parent string, stderr io.Writer) {
	removed, err := fsx.SweepStaging(parent, readStagingPrefix)
	for _, d := range removed {
		fmt.Fprintf(stderr, "etcdsafe: removed %s, left by an interrupted run\n", termtext.Clean(d))
	}
	if err != nil {
		fmt.Fprintf(stderr, "etcdsafe: warning: %v\n", err)
	}
}

// selector is the selection engine over s for one command: it learns
// the file's CRDs once; CRDs it cannot learn and records it cannot read go
// to fails, and a revision older than the last compaction is warned of.
func (s *source) selector(cmd *cobra.Command, fails *failures) *inspect.Selector {
	stderr := cmd.ErrOrStderr()
	return inspect.NewSelector(s.snap, inspect.SelectorOptions{Table: s.table, Decoder: s.dec, Prefix: s.prefix,
		OnProblem: fails.add,
		OnCompacted: func(rev, c int64) {
			fmt.Fprintf(stderr, "etcdsafe: warning: revision %d is older than the last compaction (%d): the file no longer holds the objects that changed between the two, so they are missing here\n", rev, c)
		}})
}
