package backup

import (
	"github.com/etcdsafe/etcdsafe/store"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// Staging dir name prefixes: the live snapshot's spool dir under TmpDir,
// and the one older versions made inside the backup dir.
const (
	StagingPrefix       = "etcdsafe-backup-"
	legacyStagingPrefix = ".etcdsafe-snapshot-"
)

// TLSFiles are the PEM files of a live etcd's client TLS.
type TLSFiles struct {
	CACert, Cert, Key string
}

// Options configures [Run]. The snapshot comes from exactly one of DB,
// DataDir and Endpoints; the archive goes to exactly one of Target and
// Stdout.
type Options struct {
	// DB is a snapshot or db file to archive.
	DB string
	// DataDir is a stopped member's data dir; its member/snap/db is
	// archived.
	DataDir string
	// Endpoints are live etcd client URLs; the first that answers gives
	// the snapshot, over TLS with TLS's client certificate for https.
	Endpoints   []string
	TLS         TLSFiles
	DialTimeout time.Duration

	// KubeDir is the control plane's config directory to archive ("" for
	// none), less the paths Excludes matches (see archive.Writer.AddDir).
	// A missing KubeDir is an error unless KubeDirOptional, when it is
	// skipped with a warning.
	KubeDir         string
	KubeDirOptional bool
	Excludes        []string

	// Recipients encrypt the archive; Fingerprints (archive.RecipientFingerprint)
	// go into the sidecar. Insecure writes an unencrypted archive instead.
	Recipients   []age.Recipient
	Fingerprints []string
	Insecure     bool

	// Target receives the archive and its sidecar, under Name or, when
	// Name is empty, [ArchiveName] (with "_NN" when taken).
	Target store.Target
	Name   string
	// Stdout, instead of Target, receives the archive alone.
	Stdout io.Writer

	// Cluster and Host name the backup; Host defaults to os.Hostname.
	Cluster string
	Host    string
	// Keep, if not empty, prunes the backups of this run's group (GroupBy
	// of Cluster and Host) on Target after a successful run, never the
	// archive just written. The zero GroupBy is a single group.
	Keep    archive.RetentionPolicy
	GroupBy archive.GroupBy

	// Level is the zstd level (0: zstd.SpeedDefault).
	Level zstd.EncoderLevel
	// TmpDir holds the live snapshot's encrypted spool (default: the
	// system temp dir). It may not be inside a [store.Local] Target.
	TmpDir string
	// ToolVersion goes into the manifest.
	ToolVersion string
	// Now names the archive and stamps the manifest; default time.Now.
	Now func() time.Time
	// Logger receives the run's log; default none.
	Logger *slog.Logger
	// Progress, if set, follows the archive as it is written.
	Progress Progress
}

// Progress follows a backup. Its methods are called from the goroutine
// that runs [Run].
type Progress interface {
	// Start is called once the snapshot is open (a live one fully
	// spooled), with its size: a rough upper bound of the archive.
	Start(snapshotBytes int64)
	// Written is called after every write to the archive with the bytes
	// written so far.
	Written(n int64)
	// Done is called when the archive is complete, before it is published.
	Done(n int64)
}

// Result is what a run wrote.
type Result struct {
	// Archive is the archive's name on the target ("" with Stdout) and
	// Where where it is (a path).
	Archive string
	Where   string
	// Sidecar describes the archive (with Stdout too, though not written).
	Sidecar *archive.Sidecar
	// Duration is the time the run took.
	Duration time.Duration
	// Pruned is what Keep removed, when set.
	Pruned *PruneResult
}

// OptionsError is a problem with the options (a usage error), as opposed
// to a failure of the backup itself. Its message names the CLI flag.
type OptionsError struct{ Msg string }

func (e *OptionsError) Error() string { return e.Msg }

// Run takes a snapshot, archives it with the kube dir (tar, zstd, age) and
// publishes the archive and its sidecar on the target, then applies Keep.
//
// Before the snapshot it takes the target's lock, sweeps the partial
// archives and staging dirs that killed runs left (logging each), and
// checks that the kube dir fits the manifest, so that a kube dir that
// cannot be archived fails before any work on etcd. A raw db (no
// trailer) is page-checked; a live snapshot is spooled encrypted in a
// locked staging dir under TmpDir, never in the target.
//
// Nothing appears under the archive's name before it is complete and
// durable; on error the partial archive is removed (a killed run's is swept
// by the next). If the archive was written but Keep failed, Run returns the
// Result with the error.
func Run(ctx context.Context, o Options) (*Result, error) {
	r, err := newRun(o)
	if err != nil {
		return nil, err
	}
	if o.Target != nil {
		unlock, err := o.Target.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		r.sweepTarget(ctx)
	}
	removed, err := fsx.SweepStaging(o.TmpDir, StagingPrefix)
	r.logSwept("snapshot staging dir", removed, err, "sweep snapshot staging dirs", "dir", o.TmpDir)
	// The kube dir is checked before the snapshot is taken: one that
	// cannot be archived fails now, not after minutes of work on etcd.
	kd, err := r.kubeDir()
	if err != nil {
		return nil, err
	}
	src, err := openSource(ctx, &r.o, r.log)
	if err != nil {
		return nil, err
	}
	defer src.close()
	res, err := r.write(ctx, src, kd)
	if err != nil || o.Keep.Empty() || o.Target == nil {
		return res, err
	}
	return res, r.prune(ctx, res)
}

// run is one backup's state.
type run struct {
	o       Options
	log     *slog.Logger
	start   time.Time
	created time.Time
}

func newRun(o Options) (*run, error) {
	switch {
	case (o.Target == nil) == (o.Stdout == nil):
		return nil, errors.New("backup: exactly one of Target and Stdout must be set")
	case o.DB != "" && o.DataDir != "":
		return nil, &OptionsError{"--from-db and --from-data-dir exclude each other"}
	case o.Insecure && len(o.Recipients) > 0:
		return nil, &OptionsError{"--insecure-no-encryption excludes -r, -R and --passphrase-file"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	r := &run{o: o, log: o.Logger, start: time.Now(), created: o.Now().UTC().Truncate(time.Second)}
	if l, ok := o.Target.(*store.Local); ok && o.TmpDir != "" {
		if inside, err := fsx.Within(o.TmpDir, l.Dir()); err != nil {
			return nil, fmt.Errorf("--tmp-dir: %w", err)
		} else if inside {
			return nil, &OptionsError{fmt.Sprintf("--tmp-dir %s is inside the output directory %s: put it outside any backup directory", o.TmpDir, l.Dir())}
		}
	}
	return r, nil
}

// sweepTarget removes what killed runs left on the target; the caller
// holds its lock, so every partial archive is a killed run's.
func (r *run) sweepTarget(ctx context.Context) {
	removed, err := r.o.Target.SweepPartials(ctx, isPartialName, false)
	for _, p := range removed {
		r.log.Info("removed a killed run's partial archive", "path", p)
	}
	if err != nil {
		r.log.Warn("sweep partial archives", "err", err.Error())
	}
	if l, ok := r.o.Target.(*store.Local); ok {
		// Staging dirs of etcdsafe versions that spooled plaintext into
		// the backup dir.
		removed, err := fsx.SweepStaging(l.Dir(), legacyStagingPrefix)
		r.logSwept("snapshot staging dir", removed, err, "sweep snapshot staging dirs", "dir", l.Dir())
	}
}

func (r *run) logSwept(what string, removed []string, err error, warn string, args ...any) {
	for _, p := range removed {
		r.log.Info("removed a killed run's "+what, "path", p)
	}
	if err != nil {
		r.log.Warn(warn, append(args, "err", err.Error())...)
	}
}

// kubeDir returns the kube dir to archive, or "" for none, checked against
// the manifest's bound.
func (r *run) kubeDir() (string, error) {
	kd := r.o.KubeDir
	if kd == "" {
		return "", nil
	}
	st, err := os.Stat(kd)
	switch {
	case err == nil && !st.IsDir():
		return "", &OptionsError{fmt.Sprintf("--kube-dir %s is not a directory", kd)}
	case errors.Is(err, fs.ErrNotExist) && r.o.KubeDirOptional:
		r.log.Warn("no kube dir; archiving the snapshot only", "path", kd)
		return "", nil
	case err != nil:
		return "", fmt.Errorf("kube dir: %w", err)
	}
	t0 := time.Now()
	ds, err := archive.CheckDir(kd, r.o.Excludes)
	if err != nil {
		return "", fmt.Errorf("kube dir: %w", err)
	}
	r.log.Info("kube dir checked", "path", kd, "entries", ds.Entries, "files", ds.Files, "bytes", ds.Bytes,
		"duration", time.Since(t0).Round(time.Millisecond).String())
	return kd, nil
}

// write streams the archive to the target (or Stdout) and publishes it
// with its sidecar.
func (r *run) write(ctx context.Context, src *source, kd string) (*Result, error) {
	o := &r.o
	name := o.Name
	if name == "" && o.Target != nil {
		var err error
		if name, err = freeName(ctx, o.Target, ArchiveName(o.Cluster, o.Host, r.created, !o.Insecure)); err != nil {
			return nil, err
		}
	}
	sink, up := o.Stdout, store.Upload(nil)
	if o.Target != nil {
		var err error
		if up, err = o.Target.Put(ctx, name, store.PutOptions{NoReplace: true}); err != nil {
			return nil, fmt.Errorf("create archive: %w", err)
		}
		defer up.Abort()
		sink = up
	}
	hw := &hashCounter{w: sink, h: sha256.New(), progress: o.Progress}
	o.Progress.Start(src.size)
	wm, err := r.archive(ctx, hw, src, kd)
	if err != nil {
		return nil, err
	}
	o.Progress.Done(hw.n)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{Sidecar: r.sidecar(name, src, wm, hw)}
	if o.Target == nil {
		res.Duration = time.Since(r.start)
		r.log.Info("backup written to stdout", "bytes", hw.n, "sha256", res.Sidecar.ArchiveSHA256, "revision", res.Sidecar.Revision,
			"duration", res.Duration.Round(time.Millisecond).String())
		return res, nil
	}
	if err := up.Commit(hw.n); err != nil {
		return nil, fmt.Errorf("commit archive: %w", err)
	}
	res.Archive, res.Where = name, o.Target.Where(name)
	if err := putSidecar(ctx, o.Target, res.Sidecar); err != nil {
		return nil, err
	}
	res.Duration = time.Since(r.start)
	r.log.Info("backup written", "archive", res.Where, "bytes", hw.n, "snapshot_bytes", res.Sidecar.DBSize,
		"revision", res.Sidecar.Revision, "entries", res.Sidecar.Entries, "duration", res.Duration.Round(time.Millisecond).String())
	return res, nil
}

// archive writes the archive of src and kd to w and returns its manifest.
func (r *run) archive(ctx context.Context, w io.Writer, src *source, kd string) (*archive.Manifest, error) {
	o := &r.o
	m := archive.Manifest{
		Tool: "etcdsafe", ToolVersion: o.ToolVersion, Created: r.created, Host: o.Host,
		Endpoint: src.endpoint, MemberID: src.memberID, ClusterID: src.clusterID,
		EtcdVersion: src.etcdVersion, Revision: src.revision,
	}
	aw, err := archive.NewWriter(w, archive.WriterOptions{
		Recipients: o.Recipients, Insecure: o.Insecure, Manifest: m, Context: ctx, Level: o.Level,
		OnSkip: func(p string, reason error) { r.log.Warn("not archived", "path", p, "reason", reason.Error()) },
	})
	if err != nil {
		return nil, fmt.Errorf("start archive: %w", err)
	}
	if err := aw.AddSnapshotCRC(src.reader, src.size, src.sha256, src.crc32c); err != nil {
		return nil, fmt.Errorf("add snapshot: %w", err)
	}
	if kd != "" {
		if err := aw.AddDir(kd, o.Excludes); err != nil {
			return nil, fmt.Errorf("add kube dir %s: %w", kd, err)
		}
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("write archive: %w", err)
	}
	return aw.Manifest(), nil
}

func (r *run) sidecar(name string, src *source, wm *archive.Manifest, hw *hashCounter) *archive.Sidecar {
	var content int64
	for _, e := range wm.Entries {
		content += e.Size
	}
	return &archive.Sidecar{
		Version: archive.SidecarVersion, Archive: name, FormatVersion: wm.FormatVersion,
		Created: wm.Created, Host: r.o.Host, Cluster: r.o.Cluster, Source: src.endpoint,
		Revision: wm.Revision, EtcdVersion: wm.EtcdVersion, DBSize: wm.DBSize, ContentBytes: content,
		Entries: len(wm.Entries), ArchiveSize: hw.n, ArchiveSHA256: hex.EncodeToString(hw.h.Sum(nil)),
		Encrypted: !r.o.Insecure, Recipients: r.o.Fingerprints,
	}
}

// putSidecar publishes sc beside its archive, replacing any stale one.
func putSidecar(ctx context.Context, t store.Target, sc *archive.Sidecar) error {
	b, err := sc.Marshal()
	if err != nil {
		return err
	}
	up, err := t.Put(ctx, sc.Archive+archive.SidecarSuffix, store.PutOptions{})
	if err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	defer up.Abort()
	if _, err := up.Write(b); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	if err := up.Commit(int64(len(b))); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	return nil
}

// prune applies Keep to this run's group only (cluster, host), and never
// to the archive just written, whatever the other sidecars' dates say.
func (r *run) prune(ctx context.Context, res *Result) error {
	group := r.o.GroupBy.Key(r.o.Cluster, r.o.Host)
	res.Pruned = &PruneResult{}
	err := applyRetention(ctx, r.o.Target, PruneOptions{Policy: r.o.Keep, GroupBy: r.o.GroupBy, Only: group, Current: res.Archive}, res.Pruned)
	for _, u := range res.Pruned.Unmanaged {
		r.log.Warn("archive without a readable sidecar kept", "archive", u)
	}
	for _, f := range res.Pruned.Future {
		r.log.Warn("sidecar dated in the future (clock skew?)", "archive", f)
	}
	if len(res.Pruned.Removed) > 0 || err != nil {
		r.log.Info("pruned", "policy", r.o.Keep.String(), "group", group, "removed", strings.Join(res.Pruned.Removed, ","))
	}
	if err != nil {
		return fmt.Errorf("prune after backup: %w", err)
	}
	return nil
}

// hashCounter hashes and counts what passes to w, and reports progress.
type hashCounter struct {
	w        io.Writer
	h        hash.Hash
	n        int64
	progress Progress
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	c.progress.Written(c.n)
	return n, err
}

type noProgress struct{}

func (noProgress) Start(int64)   {}
func (noProgress) Written(int64) {}
func (noProgress) Done(int64)    {}
