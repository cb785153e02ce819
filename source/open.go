package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// StagingPrefix names the private directories an archive's or standard
// input's snapshot is staged in, under [Options.TmpDir].
const StagingPrefix = fsx.ReadStagingPrefix

// ErrSpecialFile is wrapped by the [*SpecialFileError] of a SOURCE that is
// a fifo, socket or device: the user's mistake, not the file's.
var ErrSpecialFile = errors.New("not a regular file")

// SpecialFileError is a SOURCE that is neither a regular file, a
// directory nor "-".
type SpecialFileError struct {
	// Path is the SOURCE as given; Type names what it is ("named pipe
	// (fifo)", "socket", ...).
	Path, Type string
}

// Error says what the file is and what a SOURCE may be.
func (e *SpecialFileError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file: SOURCE is a snapshot, a db, a data dir, an archive, or - for standard input", e.Path, e.Type)
}

// Unwrap returns [ErrSpecialFile].
func (e *SpecialFileError) Unwrap() error { return ErrSpecialFile }

// Options configure [Open]. The zero value opens a snapshot, a data dir or
// an encrypted archive without identities (which then fails with
// [archive.ErrWrongKey]).
type Options struct {
	// DecryptionConfig is the content of an EncryptionConfiguration with
	// the keys of values encrypted at rest. When nil, DecryptionConfigPath
	// is read if set; with neither, an archive's own (the one its
	// kube-apiserver manifest names, else the first by name) is used.
	DecryptionConfig []byte
	// DecryptionConfigPath is the file DecryptionConfig was read from, or
	// the file to read; it names the config in errors.
	DecryptionConfigPath string
	// KMS, when set, reaches the KMS v2 plugins that decrypt kms values
	// (see package kms); nil leaves them undecrypted ([decode.ErrKMS]).
	// The caller closes it after [Source.Close].
	KMS decode.KMSConnector
	// Prefix is kube-apiserver's --etcd-prefix ("/registry"); a trailing
	// slash is dropped.
	Prefix string
	// LockTimeout is how long to wait for a db another process holds
	// (0: the [inspect.Open] default).
	LockTimeout time.Duration
	// Check also runs bbolt's page check over the whole file as part of
	// the verdict.
	Check bool
	// Identities, called only for an encrypted or plain archive, returns
	// what decrypts it; nil means none. Its error is returned as is.
	Identities func() ([]age.Identity, error)
	// AllowUnencrypted reads an unencrypted (plain tar.zst) archive.
	AllowUnencrypted bool
	// TmpDir is where an archive's or standard input's snapshot is staged
	// (a new 0700 directory, removed by Close); empty is the system temp
	// dir.
	TmpDir string
	// Stdin is read when the path is "-"; nil is os.Stdin.
	Stdin io.Reader
	// Input, when set, is read instead of opening the path, which then
	// only names it in messages: an object of a store (the path its
	// s3:// URL), or any stream. It is staged as standard input is.
	Input *Input

	// OnSwept, if not nil, is told of each staging directory a killed run
	// left in TmpDir and Open removed.
	OnSwept func(dir string)
	// OnSweepError, if not nil, is told when such a directory could not
	// be removed; Open goes on.
	OnSweepError func(err error)
	// OnUnencrypted, if not nil, is told that the archive named name was
	// read although it is not encrypted (AllowUnencrypted).
	OnUnencrypted func(name string)
	// OnUnchecked, if not nil, is told that the db named name has no
	// SHA-256 trailer and Check is off: nothing checks its integrity. why
	// says which db it is ("has no SHA-256 trailer (a copy of
	// member/snap/db)", "is a data dir: its db has no SHA-256 trailer").
	OnUnchecked func(name, why string)
}

// Input is a SOURCE read from a stream rather than a file: a snapshot or
// an archive, told apart by its first bytes as standard input is.
type Input struct {
	// R is read by [Open] to its end, or to the first error; the caller
	// closes it once Open has returned. An error R returns at its end (a
	// store's checksum mismatch) fails Open, wrapped.
	R io.Reader
	// Sidecar, if set, returns the sidecar of the archive R holds, which
	// tells a damaged archive from a cut one and from a wrong key (see
	// archive.ExtractOptions.Sidecar). It is called only to explain an
	// error.
	Sidecar func() (*archive.Sidecar, error)
}

// Source is an opened SOURCE with what is needed to decode its objects.
// Close it.
type Source struct {
	// Snapshot is the open db (for an archive or standard input, the
	// staged copy).
	Snapshot *inspect.Snapshot
	// Decoder decodes the file's values, with the decryption config.
	Decoder *decode.Decoder
	// Table maps types and keys to resources (the built-in ones; a
	// [inspect.Selector] adds the file's CRDs).
	Table *decode.ResourceTable
	// Prefix is [Options.Prefix] without trailing slash.
	Prefix string
	// Name is the SOURCE as the user knows it, for messages.
	Name string
	// Archive reports that the db was extracted from a backup archive.
	Archive bool
	// EtcdManifest is the archive's kubernetes/manifests/etcd.yaml (etcd's
	// static pod manifest, whose flags say its quota), nil when the
	// source is no archive or the archive holds none.
	EtcdManifest []byte
	// APIServerManifest is the archive's
	// kubernetes/manifests/kube-apiserver.yaml, nil when the source is no
	// archive or the archive holds none.
	APIServerManifest []byte
	// Manifest is the archive's verified MANIFEST.json (its cluster and
	// member IDs when the backup was taken from a live member), nil when
	// the source is no archive.
	Manifest *archive.Manifest

	cleanup func()
	integ   *integrity
}

type kind int

const (
	kindDB kind = iota // a snapshot, a raw db or a data dir
	kindArchive
	kindStream // standard input or [Options.Input]
)

// Open opens path: a snapshot or db file, a data dir, a backup archive
// (extracted and verified to its end first), or "-" for [Options.Stdin]
// holding a snapshot or an archive; with [Options.Input], that stream,
// which path names. The integrity verdict is worked out in
// the background from here on (see [Source.Verdict]). On error nothing
// staged is left behind. Errors wrap [ErrSpecialFile], the sentinels of
// archive, inspect and decode, and [snapshot.ErrTrailerMismatch] when a
// db that does not open has a trailer that does not match.
func Open(ctx context.Context, path string, o Options) (_ *Source, err error) {
	dcr, err := o.decrypter()
	if err != nil {
		return nil, err
	}
	k := kindStream
	if o.Input == nil {
		if k, err = sourceKind(path); err != nil {
			return nil, err
		}
	}
	name := path
	if path == "-" && o.Input == nil {
		name = "standard input"
	}
	dbPath, cleanup, etcdPod, apiPod, manifest := path, func() {}, []byte(nil), []byte(nil), (*archive.Manifest)(nil)
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if k == kindArchive || k == kindStream {
		o.sweep()
		st, err := openStaged(ctx, path, name, &o)
		if err != nil {
			return nil, err
		}
		dbPath, cleanup, etcdPod, apiPod, manifest = st.dbPath, st.cleanup, st.etcdPod, st.apiPod, st.manifest
		if st.archive && dcr == nil && st.encConfig != nil {
			// the cluster's own keys, from the backed-up kube dir
			if dcr, err = decode.ParseEncryptionConfig(st.encConfig); err != nil {
				return nil, fmt.Errorf("archive's kubernetes/%s: %w", st.encName, err)
			}
		}
		if st.archive {
			k, name = kindArchive, name+" (its etcd/snapshot.db)"
		}
	}
	snap, err := inspect.Open(dbPath, inspect.OpenOptions{LockTimeout: o.LockTimeout, Name: name})
	if err != nil {
		// A bit flip in the meta page reads as "truncated" or "not a
		// db"; the trailer, when there is one, tells the damage as it is.
		if ts, _ := snapshot.VerifyTrailer(dbPath); ts == snapshot.TrailerMismatch {
			return nil, fmt.Errorf("%s is damaged: %w (%w)", name, snapshot.ErrTrailerMismatch, err)
		}
		return nil, err
	}
	if o.KMS != nil {
		dcr = dcr.WithKMS(o.KMS)
	}
	s := &Source{Snapshot: snap, Decoder: decode.NewDecoder(dcr), Table: decode.BuiltinResources(),
		Prefix: strings.TrimSuffix(o.Prefix, "/"), Name: name, Archive: k == kindArchive, EtcdManifest: etcdPod, APIServerManifest: apiPod, Manifest: manifest, cleanup: cleanup}
	s.integ = startIntegrity(ctx, snap, name, o.Check)
	if !snapshot.HasTrailerSize(snap.FileSize) && !o.Check && o.OnUnchecked != nil {
		why := "has no SHA-256 trailer (a copy of member/snap/db)"
		if snap.DBPath != path && k == kindDB {
			why = "is a data dir: its db has no SHA-256 trailer"
		}
		o.OnUnchecked(name, why)
	}
	return s, nil
}

// Close closes the db and removes the staged copy, if any. The verdict's
// work may still be running on an interrupted command: it sees an error.
func (s *Source) Close() error {
	// the verdict's page check reads the db: stop it, then close
	s.integ.cancel()
	<-s.integ.done
	err := s.Snapshot.Close()
	s.cleanup()
	return err
}

// Selector returns the selection engine over the source's db, with its
// table, decoder and prefix; o's other fields are kept.
func (s *Source) Selector(o inspect.SelectorOptions) *inspect.Selector {
	o.Table, o.Decoder, o.Prefix = s.Table, s.Decoder, s.Prefix
	return inspect.NewSelector(s.Snapshot, o)
}

// decrypter parses the decryption config the options give, if any.
func (o *Options) decrypter() (*decode.Decrypter, error) {
	b := o.DecryptionConfig
	if b == nil {
		if o.DecryptionConfigPath == "" {
			return nil, nil
		}
		var err error
		if b, err = os.ReadFile(o.DecryptionConfigPath); err != nil {
			return nil, fmt.Errorf("read decryption config: %w", err)
		}
	}
	dcr, err := decode.ParseEncryptionConfig(b)
	if err != nil {
		if o.DecryptionConfigPath == "" {
			return nil, fmt.Errorf("decryption config: %w", err)
		}
		return nil, fmt.Errorf("decryption config %s: %w", o.DecryptionConfigPath, err)
	}
	return dcr, nil
}

// sweep removes what runs killed before their cleanup left in TmpDir.
func (o *Options) sweep() {
	removed, err := fsx.SweepStaging(o.TmpDir, StagingPrefix)
	if o.OnSwept != nil {
		for _, d := range removed {
			o.OnSwept(d)
		}
	}
	if err != nil && o.OnSweepError != nil {
		o.OnSweepError(err)
	}
}

// sourceKind refuses what is neither a regular file, a directory nor "-":
// opening a fifo blocks until a writer comes, beyond the reach of signals.
func sourceKind(path string) (kind, error) {
	if path == "-" {
		return kindStream, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	switch {
	case st.IsDir():
		return kindDB, nil
	case !st.Mode().IsRegular():
		return 0, &SpecialFileError{Path: path, Type: fsx.KindName(st.Mode())}
	}
	if a, _, err := archive.SniffFile(path); err != nil {
		return 0, fmt.Errorf("source: %w", err)
	} else if a {
		return kindArchive, nil
	}
	return kindDB, nil
}
