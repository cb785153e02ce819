package backup

import (
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
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/store"
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
	// CommandTimeout bounds the status request that proves a member
	// answers (5s when 0); the snapshot stream is not bounded by it.
	CommandTimeout time.Duration

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
	// NoIndex skips the key index (ARCHIVE.index, see package keyindex)
	// written beside an encrypted archive of a db file or data dir, which
	// lets timeline read a few megabytes instead of the whole archive.
	NoIndex bool

	// Outputs receive the archive and its sidecar: one snapshot read,
	// one archive stream written to every output at once. A failing
	// output is dropped (its upload aborted) while the others go on.
	Outputs []Output
	// Stdout, instead of Outputs, receives the archive alone.
	Stdout io.Writer
	// ObjectLock, if set, locks the archive and its sidecar on every
	// output that can ([store.Retainer], an S3 bucket with Object Lock)
	// until Created + ObjectLock.For (or, when For is 0, the horizon of
	// Keep: see [LockDuration]). Outputs that cannot lock (a directory)
	// are written unlocked; none that can is an [OptionsError].
	ObjectLock *ObjectLock

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
	// TmpDir holds the live snapshot's encrypted spool and the key index
	// while it is built (unlinked at once; default: the system temp dir).
	// It may not be inside a [store.Local] Target.
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

// The object metadata an archive is put with (S3 user metadata,
// x-amz-meta-...): what is known before its first byte.
const (
	MetaCreated        = "etcdsafe-created" // RFC 3339, UTC
	MetaHost           = "etcdsafe-host"
	MetaCluster        = "etcdsafe-cluster"
	MetaRevision       = "etcdsafe-revision"
	MetaSnapshotSHA256 = "etcdsafe-snapshot-sha256" // hex
)

// Output is one place a backup goes.
type Output struct {
	// Target receives the archive and its sidecar, under Name or, when
	// Name is empty, [ArchiveName] (with "_NN" when taken).
	Target store.Target
	Name   string
}

// ObjectLock configures [Options.ObjectLock].
type ObjectLock struct {
	// Mode is store.Governance or store.Compliance.
	Mode string
	// For is how long from the backup's creation; 0 derives it from
	// Options.Keep.
	For time.Duration
}

// LockDuration is how long a retention policy keeps a backup at most:
// the longest of its daily (days), weekly (weeks) and monthly (31-day
// months) horizons, and ok false when it has none of them (a "last N"
// rule says nothing about time).
func LockDuration(p archive.RetentionPolicy) (d time.Duration, ok bool) {
	day := 24 * time.Hour
	d = max(time.Duration(p.Daily)*day, time.Duration(p.Weekly)*7*day, time.Duration(p.Monthly)*31*day)
	return d, d > 0
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
	// Archive is the archive's name on the first output that took it ("" with
	// Stdout) and Where where it is (a path or URL).
	Archive string
	Where   string
	// Sidecar describes the archive (with Stdout too, though not written).
	Sidecar *archive.Sidecar
	// Retention is the lock asked for the archive, if any.
	Retention *store.Retention
	// Duration is the time the run took.
	Duration time.Duration
	// Pruned is what Keep removed on the first output, when set.
	Pruned *PruneResult
	// Outputs are the outcomes per output, in the order of Options.Outputs.
	Outputs []OutputResult
	// Index describes the key index written beside the archive; nil when
	// none was (see [Options.NoIndex]; a failed index is logged, and the
	// archive is good without it).
	Index *IndexInfo
}

// OutputResult is what happened on one output.
type OutputResult struct {
	Target store.Target
	// Archive and Where as in [Result]; empty when Err is set.
	Archive string
	Where   string
	// Locked reports that the archive was put with Result.Retention.
	Locked bool
	// Index reports that the key index was put beside the archive.
	Index  bool
	Pruned *PruneResult
	// Err is why this output failed (the archive is not on it), or why
	// its prune failed (the archive is).
	Err error
}

// OutputsError is returned with a [Result] when some outputs failed and
// others hold the archive.
type OutputsError struct {
	Failed []OutputResult
}

func (e *OutputsError) Error() string {
	var b strings.Builder
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", f.Target, f.Err)
	}
	return b.String()
}

func (e *OutputsError) Unwrap() []error {
	var out []error
	for _, f := range e.Failed {
		out = append(out, f.Err)
	}
	return out
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
	for _, out := range o.Outputs {
		unlock, err := out.Target.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if err := r.checkOutputs(ctx); err != nil {
		return nil, err
	}
	for _, out := range o.Outputs {
		r.sweepTarget(ctx, out.Target)
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
	if err != nil || res.Archive == "" {
		return res, err
	}
	if !o.Keep.Empty() {
		r.prune(ctx, res)
	}
	return res, r.outputsError(res)
}

// run is one backup's state.
type run struct {
	o       Options
	log     *slog.Logger
	start   time.Time
	created time.Time
	// retention is the lock asked of the outputs that can keep one.
	retention *store.Retention
}

func newRun(o Options) (*run, error) {
	switch {
	case (len(o.Outputs) == 0) == (o.Stdout == nil):
		return nil, errors.New("backup: exactly one of Outputs and Stdout must be set")
	case o.DB != "" && o.DataDir != "":
		return nil, &OptionsError{"--from-db and --from-data-dir exclude each other"}
	case o.Insecure && len(o.Recipients) > 0:
		return nil, &OptionsError{"--insecure-no-encryption excludes -r, -R and --passphrase-file"}
	}
	for _, out := range o.Outputs {
		if out.Target == nil {
			return nil, errors.New("backup: an output without a target")
		}
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
	for _, out := range o.Outputs {
		if l, ok := out.Target.(*store.Local); ok && o.TmpDir != "" {
			if inside, err := fsx.Within(o.TmpDir, l.Dir()); err != nil {
				return nil, fmt.Errorf("--tmp-dir: %w", err)
			} else if inside {
				return nil, &OptionsError{fmt.Sprintf("--tmp-dir %s is inside the output directory %s: put it outside any backup directory", o.TmpDir, l.Dir())}
			}
		}
	}
	if lk := o.ObjectLock; lk != nil {
		if lk.Mode != store.Governance && lk.Mode != store.Compliance {
			return nil, &OptionsError{fmt.Sprintf("--object-lock %q: want governance or compliance", strings.ToLower(lk.Mode))}
		}
		d := lk.For
		if d == 0 {
			var ok bool
			if d, ok = LockDuration(o.Keep); !ok {
				return nil, &OptionsError{"--object-lock needs --lock-for, or a --keep-daily, --keep-weekly or --keep-monthly policy to derive it from"}
			}
		}
		if d < 0 {
			return nil, &OptionsError{"--lock-for must be positive"}
		}
		r.retention = &store.Retention{Mode: lk.Mode, Until: r.created.Add(d)}
	}
	return r, nil
}

// checkOutputs makes sure, before any work on etcd, that the outputs
// answer (an unreachable or missing bucket) and that an object lock asked
// for will be kept by at least one of them, by every one that can.
func (r *run) checkOutputs(ctx context.Context) error {
	lockable := 0
	for _, out := range r.o.Outputs {
		if c, ok := out.Target.(interface{ Check(context.Context) error }); ok {
			if err := c.Check(ctx); err != nil {
				return err
			}
		}
		rt, ok := out.Target.(store.Retainer)
		if r.retention == nil || !ok {
			continue
		}
		if err := rt.CheckRetention(ctx); err != nil {
			return err
		}
		lockable++
	}
	if r.retention != nil && lockable == 0 {
		return &OptionsError{"--object-lock needs an s3:// --out on a bucket with object lock; a directory cannot be locked"}
	}
	return nil
}

// sweepTarget removes what killed runs left on t; the caller holds its
// lock, so every partial archive is a killed run's.
func (r *run) sweepTarget(ctx context.Context, t store.Target) {
	removed, err := t.SweepPartials(ctx, isPartialName, false)
	for _, p := range removed {
		r.log.Info("removed a killed run's partial archive", "path", p)
	}
	if err != nil {
		r.log.Warn("sweep partial archives", "target", t.String(), "err", err.Error())
	}
	if l, ok := t.(*store.Local); ok {
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

// write streams the archive to every output (or Stdout) at once and
// publishes it with its sidecar on each.
func (r *run) write(ctx context.Context, src *source, kd string) (*Result, error) {
	o := &r.o
	res := &Result{Retention: r.retention}
	var outs []*outRun
	sink := o.Stdout
	if len(o.Outputs) > 0 {
		defer func() {
			for _, x := range outs {
				if x.up != nil {
					x.up.Abort()
				}
			}
		}()
		for _, out := range o.Outputs {
			outs = append(outs, r.startOutput(ctx, out, src))
		}
		fo := &fanout{outs: outs, log: r.log}
		if fo.live() == 0 {
			return nil, outs[0].err
		}
		sink = fo
	}
	hw := &hashCounter{w: sink, h: sha256.New(), progress: o.Progress}
	o.Progress.Start(src.size)
	// the key index is built on the snapshot while the archive is compressed
	ib := r.startIndex(ctx, src)
	defer ib.close()
	wm, err := r.archive(ctx, hw, src, kd)
	if err != nil {
		ib.stop()
		return nil, err
	}
	o.Progress.Done(hw.n)
	if err := ctx.Err(); err != nil {
		ib.stop()
		return nil, err
	}
	res.Sidecar = r.sidecar("", src, wm, hw)
	var idx *indexData
	res.Index, idx = ib.finish(r, hw.n, res.Sidecar.ArchiveSHA256)
	if o.Stdout != nil {
		res.Duration = time.Since(r.start)
		r.log.Info("backup written to stdout", "bytes", hw.n, "sha256", res.Sidecar.ArchiveSHA256, "revision", res.Sidecar.Revision,
			"duration", res.Duration.Round(time.Millisecond).String())
		return res, nil
	}
	var firstErr error
	for _, x := range outs {
		if x.err == nil {
			x.commit(ctx, hw.n, res.Sidecar, idx)
			if x.indexErr != nil {
				r.log.Warn("key index not written: timeline will read this archive whole", "target", x.t.String(), "err", x.indexErr.Error())
			}
		}
		res.Outputs = append(res.Outputs, x.result())
		switch {
		case x.archive != "" && res.Archive == "":
			res.Archive, res.Where = x.archive, x.t.Where(x.archive)
			sc := *res.Sidecar
			sc.Archive = x.archive
			res.Sidecar = &sc
		case x.err != nil && firstErr == nil:
			firstErr = x.err
		}
	}
	res.Duration = time.Since(r.start)
	if res.Archive == "" {
		return nil, firstErr
	}
	for _, x := range outs {
		if x.archive != "" {
			r.log.Info("backup written", "archive", x.t.Where(x.archive), "bytes", hw.n, "snapshot_bytes", res.Sidecar.DBSize,
				"revision", res.Sidecar.Revision, "entries", res.Sidecar.Entries, "locked", x.lock != nil, "duration", res.Duration.Round(time.Millisecond).String())
		}
	}
	return res, nil
}

// outRun is one output of a run.
type outRun struct {
	t       store.Target
	name    string
	up      store.Upload
	lock    *store.Retention // asked of this output's objects
	archive string           // set once the archive is published
	err     error
	// index is set once the key index is published; indexErr says why it
	// was not (the archive is good without it)
	index    bool
	indexErr error
}

// startOutput names the archive on out's target and starts its upload;
// a failure is kept in the outRun, so that the other outputs go on.
func (r *run) startOutput(ctx context.Context, out Output, src *source) *outRun {
	x := &outRun{t: out.Target, name: out.Name}
	if x.name == "" {
		var err error
		if x.name, err = freeName(ctx, out.Target, ArchiveName(r.o.Cluster, r.o.Host, r.created, !r.o.Insecure)); err != nil {
			x.err = err
			return x
		}
	}
	if _, ok := out.Target.(store.Retainer); ok {
		x.lock = r.retention
	}
	// Known before the archive is written, so they go into the object's
	// metadata (the archive's own SHA-256 is known only at the end: it is
	// in the sidecar).
	meta := map[string]string{
		MetaCreated: r.created.Format(time.RFC3339), MetaHost: r.o.Host, MetaCluster: r.o.Cluster,
		MetaRevision: strconv.FormatInt(src.revision, 10), MetaSnapshotSHA256: src.sha256,
	}
	up, err := out.Target.Put(ctx, x.name, store.PutOptions{NoReplace: true, Retention: x.lock, Meta: meta})
	if err != nil {
		x.err = fmt.Errorf("create archive: %w", err)
		return x
	}
	x.up = up
	return x
}

// commit publishes the archive of n bytes, then its key index idx (if
// any), then its sidecar.
func (x *outRun) commit(ctx context.Context, n int64, sc *archive.Sidecar, idx *indexData) {
	up := x.up
	x.up = nil
	if err := up.Commit(n); err != nil {
		x.err = fmt.Errorf("commit archive: %w", err)
		return
	}
	x.archive = x.name
	if idx != nil {
		x.indexErr = putIndex(ctx, x.t, x.name, idx, x.lock)
		x.index = x.indexErr == nil
	}
	s := *sc
	s.Archive = x.name
	if err := putSidecar(ctx, x.t, &s, x.lock); err != nil {
		x.err = err
	}
}

func (x *outRun) result() OutputResult {
	return OutputResult{Target: x.t, Archive: x.archive, Where: whereOf(x), Locked: x.lock != nil && x.archive != "", Index: x.index, Err: x.err}
}

func whereOf(x *outRun) string {
	if x.archive == "" {
		return ""
	}
	return x.t.Where(x.archive)
}

// fanout writes to every live upload; one that fails is aborted and
// dropped, and only when none is left does Write fail.
type fanout struct {
	outs []*outRun
	log  *slog.Logger
}

func (f *fanout) live() int {
	n := 0
	for _, x := range f.outs {
		if x.err == nil {
			n++
		}
	}
	return n
}

func (f *fanout) Write(p []byte) (int, error) {
	var first error
	for _, x := range f.outs {
		if x.err != nil {
			if first == nil {
				first = x.err
			}
			continue
		}
		if _, err := x.up.Write(p); err != nil {
			x.err = fmt.Errorf("write archive: %w", err)
			x.up.Abort()
			if first == nil {
				first = err
			}
			if f.live() > 0 {
				f.log.Warn("output failed; the others go on", "target", x.t.String(), "err", err.Error())
			}
		}
	}
	if f.live() == 0 {
		return 0, first
	}
	return len(p), nil
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
func putSidecar(ctx context.Context, t store.Target, sc *archive.Sidecar, lock *store.Retention) error {
	b, err := sc.Marshal()
	if err != nil {
		return err
	}
	up, err := t.Put(ctx, sc.Archive+archive.SidecarSuffix, store.PutOptions{Retention: lock})
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

// prune applies Keep on every output that holds the archive, to this
// run's group only (cluster, host), and never to the archive just
// written, whatever the other sidecars' dates say.
func (r *run) prune(ctx context.Context, res *Result) {
	group := r.o.GroupBy.Key(r.o.Cluster, r.o.Host)
	for i := range res.Outputs {
		x := &res.Outputs[i]
		if x.Archive == "" {
			continue
		}
		x.Pruned = &PruneResult{}
		err := applyRetention(ctx, x.Target, PruneOptions{Policy: r.o.Keep, GroupBy: r.o.GroupBy, Only: group, Current: x.Archive}, x.Pruned)
		for _, u := range x.Pruned.Unmanaged {
			r.log.Warn("archive without a readable sidecar kept", "archive", u)
		}
		for _, f := range x.Pruned.Future {
			r.log.Warn("sidecar dated in the future (clock skew?)", "archive", f)
		}
		for _, l := range x.Pruned.Locked {
			r.log.Info("kept: locked", "archive", l.Name, "until", l.Until.UTC().Format(time.RFC3339))
		}
		if len(x.Pruned.Removed) > 0 || err != nil {
			r.log.Info("pruned", "target", x.Target.String(), "policy", r.o.Keep.String(), "group", group, "removed", strings.Join(x.Pruned.Removed, ","))
		}
		if err != nil && x.Err == nil {
			x.Err = fmt.Errorf("prune after backup: %w", err)
		}
		if res.Pruned == nil {
			res.Pruned = x.Pruned
		}
	}
}

// outputsError is the error of a run whose archive is on at least one
// output: nil when every output holds it (and pruned), the one error of a
// single output, else an [OutputsError].
func (r *run) outputsError(res *Result) error {
	var failed []OutputResult
	for _, x := range res.Outputs {
		if x.Err != nil {
			failed = append(failed, x)
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(res.Outputs) == 1:
		return failed[0].Err
	}
	return &OutputsError{Failed: failed}
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
