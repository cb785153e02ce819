package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// Kubernetes-safe defaults (etcd's recovery guide): jump a billion
// revisions past anything a client saw, and mark the old ones compacted so
// informers relist instead of acting on stale caches.
const (
	DefaultBumpRevision  = 1_000_000_000
	DefaultMarkCompacted = true
)

// SourceKind says what SOURCE turned out to be.
type SourceKind string

// Source kinds.
const (
	SourceArchive  SourceKind = "archive"  // an etcdsafe backup archive
	SourceSnapshot SourceKind = "snapshot" // a db with a valid SHA-256 trailer
	SourceRawDB    SourceKind = "raw-db"   // a db without trailer (copied member/snap/db)
)

// Steps reported to Options.testHook, in order.
const (
	stepStaging    = "staging"     // staging dir created and locked, nothing in it yet
	stepSnapshot   = "snapshot"    // the archive's snapshot extracted into staging
	stepKubeStaged = "kube-staged" // after each kube dir entry extracted into staging
	stepStaged     = "staged"      // source read and verified, nothing written outside temp
	stepBuilding   = "building"    // build staging dir created, etcdutl about to run
	stepBuilt      = "built"       // new data dir complete under its temp name
	stepMovedAside = "moved-aside" // old data dir renamed to the backup name
	stepSwapped    = "swapped"     // new data dir in place
	stepKubeFile   = "kube-file"   // before each kube dir file is put in place
)

// stagingPrefix names the private staging dirs (snapshot and kube dir
// extracted from an archive, the new data dir being built). Every Prepare
// removes the ones that killed runs left ([fsx.SweepStaging]).
const stagingPrefix = ".etcdsafe-restore-"

// Data dir states (see [Plan.DataDirState]).
const (
	DataDirAbsent = "absent" // nothing there: the new data dir is created
	DataDirEmpty  = "empty"  // an empty directory: replaced by the new one
	DataDirEtcd   = "etcd"   // an etcd data dir (member/snap/db): moved aside, kept
)

// lockTimeout is how long to wait for a data dir's bbolt lock before
// deciding that etcd holds it.
const lockTimeout = 300 * time.Millisecond

// Options configures [Prepare]. The zero value of a numeric option means
// "off", so callers wanting the Kubernetes-safe behaviour set
// BumpRevision to [DefaultBumpRevision] and MarkCompacted.
type Options struct {
	// Source is a backup archive, a snapshot file, a raw db or a data dir;
	// with Input, only the name of that stream (an s3:// URL, "standard
	// input"), for the plan and messages.
	Source string
	// Input, when set, is read instead of opening Source: an archive, or
	// a snapshot or raw db, told apart by its first bytes. It is read
	// once, to its end, by Prepare, into the private staging dir (a
	// snapshot too, as it has no file of its own).
	Input *Input
	// Identities decrypt an encrypted archive.
	Identities []age.Identity
	// AllowUnencrypted accepts an unencrypted archive (written with
	// --insecure-no-encryption). Nothing proves who wrote such an archive:
	// whoever can write to the backup store can make one. Without it,
	// Prepare fails with [archive.ErrUnencrypted].
	AllowUnencrypted bool
	// DataDir is the etcd data dir to build. It must be absent, an empty
	// directory or an etcd data dir (else [ErrNotDataDir]). Empty: with
	// DryRun, the manifest's --data-dir is shown as a candidate; without,
	// Prepare fails with [ErrDataDirNotConfirmed] naming it (a path from a
	// manifest, the archive's above all, is never used unconfirmed).
	DataDir string
	// Manifest is etcd's static pod manifest. Empty means: the archive's
	// when the kube dir restore writes manifests, else
	// /etc/kubernetes/manifests/etcd.yaml (or KubeDir's) if present, else
	// the archive's, else none.
	Manifest string
	// Membership holds --name and friends from the command line.
	Membership MembershipFlags
	// BumpRevision and MarkCompacted go to etcdutl's restore; both or
	// neither must be set.
	BumpRevision  uint64
	MarkCompacted bool
	// InitialMmapSize is bbolt's initial memory map size (0: etcd default).
	InitialMmapSize uint64
	// Compact writes the restored db with only the newest revision of
	// each key (etcd's mvcc compaction at the snapshot's newest revision)
	// and defragmented, so a snapshot over etcd's quota restores under it.
	// Without it, a db that is not below the quota is refused
	// ([ErrOverQuota]).
	Compact bool
	// CleanLeases deletes, in the restored db before etcd starts, the keys
	// that go stale on new hardware: [MasterLeasesPrefix],
	// [APIServerLeasePrefix] and [NodeLeasePrefix]. The plan lists each
	// ([Plan.StaleKeys]); the deletions are one etcd write (tombstones at
	// the snapshot's revision + 1).
	CleanLeases bool
	// SkipHashCheck accepts a db without a SHA-256 trailer, or with a
	// mismatching one.
	SkipHashCheck bool
	// Force restores although etcd seems to run, and replaces differing kube
	// dir files (moving each old one to a hidden sibling).
	Force bool
	// KubeDir, if set, receives the archive's kubernetes/ entries that Only
	// selects ("pki", "manifests", "kubeconfigs", "all"; empty means all).
	KubeDir string
	Only    []string
	// DryRun stages into TmpDir (or the system temp dir) instead of beside
	// the data dir; [Plan.Execute] must not be called.
	DryRun bool
	// TmpDir holds the staged snapshot and kube dir; default: the data
	// dir's parent (the system temp dir with DryRun). The new data dir is
	// always built beside the data dir, to be renamed into place. Neither
	// may be a backup directory (one holding etcdsafe backup's lock file).
	TmpDir string
	// OnSweep, if set, is called with each staging dir left by an earlier,
	// killed restore that Prepare removed (they hold plaintext: a snapshot,
	// kube dir keys).
	OnSweep func(dir string)
	// Now stamps backup names; default time.Now.
	Now func() time.Time
	// Logger receives etcdutl's log; default a no-op logger.
	Logger *zap.Logger

	// testHook, when set (tests only), runs at each step; an error aborts
	// the restore there, as an interruption would.
	testHook func(step string) error
	// testDefaultManifest, when set (tests only), replaces
	// [DefaultManifestPath].
	testDefaultManifest string
}

// Input is a SOURCE read from a stream rather than a file: an object of a
// store, or standard input.
type Input struct {
	// R is read by [Prepare] to its end, or to the first error; the caller
	// closes it once Prepare has returned. An error R returns at its end
	// (a store's checksum mismatch) fails Prepare, wrapped.
	R io.Reader
	// Sidecar, if set, returns the sidecar of the archive R holds, which
	// tells a damaged archive from a cut one and from a wrong key (see
	// archive.ExtractOptions.Sidecar). It is called only to explain an
	// error.
	Sidecar func() (*archive.Sidecar, error)
}

// KubeChange is one kube dir entry of the plan.
type KubeChange struct {
	// Path is relative to the kube dir, slash-separated.
	Path string `json:"path"`
	// Type is "file", "dir" or "symlink".
	Type string `json:"type"`
	// Action is "create", "unchanged", "conflict" (differs, not replaced)
	// or "replace" (differs, replaced with Force; the old one is kept as
	// Backup).
	Action string `json:"action"`
	// Backup is where a replaced entry goes.
	Backup string `json:"backup,omitempty"`

	entry archive.EntryInfo
}

// Plan is a verified source and everything a restore will do. Create it
// with [Prepare]; run it with [Plan.Execute]; always Close it.
type Plan struct {
	// Source and Kind describe the input.
	Source string     `json:"source"`
	Kind   SourceKind `json:"kind"`
	// Trailer is the snapshot's SHA-256 trailer status ("valid", "none",
	// "mismatch") or, for archives whose snapshot has none, "archive
	// verified".
	Trailer string `json:"trailer"`
	// Archive is the archive's manifest, for archives.
	Archive *archive.Manifest `json:"archive,omitempty"`
	// Revision is the newest revision in the snapshot; NewRevision what
	// etcd starts from after the bump (the compacted revision when
	// MarkCompacted).
	Revision    int64 `json:"revision"`
	NewRevision int64 `json:"newRevision"`
	// MarkCompacted, InitialMmapSize, Compact and CleanLeases repeat the
	// options.
	MarkCompacted   bool   `json:"markCompacted"`
	InitialMmapSize uint64 `json:"initialMmapSize,omitempty"`
	Compact         bool   `json:"compact"`
	CleanLeases     bool   `json:"cleanLeases"`
	// Alarms are those raised in the snapshot's cluster. They are never
	// carried into the restored cluster: Execute clears them from the
	// restored db (see [AlarmConsequence] for what each would do).
	Alarms []Alarm `json:"alarms,omitempty"`
	// Quota is the snapshot's db size against etcd's quota.
	Quota Quota `json:"quota"`
	// StaleKeys are the keys CleanLeases deletes.
	StaleKeys []string `json:"staleKeys,omitempty"`
	// Blockers are what stops a real restore with these options (and
	// warnings); only a dry run collects the refusing ones, a real
	// Prepare fails on the first.
	Blockers []Blocker `json:"blockers,omitempty"`
	// Manifest is the static pod manifest used, or nil.
	Manifest *EtcdManifest `json:"manifest,omitempty"`
	// Membership is the restored cluster.
	Membership Membership `json:"membership"`
	// DataDir is the data dir written. DataDirFrom says where it came
	// from: "--data-dir", or, in a dry run without one, the manifest that
	// names it (then it is only a candidate, DataDirConfirmed is false and
	// a real restore needs it passed explicitly).
	DataDir          string `json:"dataDir"`
	DataDirFrom      string `json:"dataDirFrom"`
	DataDirConfirmed bool   `json:"dataDirConfirmed"`
	// DataDirState is what is there now: [DataDirAbsent], [DataDirEmpty] or
	// [DataDirEtcd]; DataDirExists is true for the last two.
	DataDirState  string `json:"dataDirState"`
	DataDirExists bool   `json:"dataDirExists"`
	// Backup is where an existing etcd data dir is moved (never set for an
	// empty or absent one); BuildDir where the new one is built.
	Backup   string `json:"backup,omitempty"`
	BuildDir string `json:"buildDir"`
	// Recover is the one command that puts the old data dir back if the
	// restore is interrupted after moving it aside.
	Recover string `json:"recover,omitempty"`
	// Checks lists what was checked for a running etcd, with the outcome.
	Checks []string `json:"checks"`
	// KubeDir and KubeChanges describe the kube dir restore.
	KubeDir     string       `json:"kubeDir,omitempty"`
	KubeChanges []KubeChange `json:"kubeChanges,omitempty"`
	// Notes are warnings for the operator.
	Notes []string `json:"notes,omitempty"`

	opts       Options
	stage      *fsx.Staging // private staging dir, removed by Close
	snapPath   string       // the db etcdutl reads
	buildStage string       // Execute's staging dir, while it runs
	buildDir   string       // the data dir being built in it
	swept      map[string]bool
	kubeRoot   string // staged kube dir
	executed   bool
}

// Prepare reads and verifies the source (a file, or the stream
// [Options.Input]), resolves membership and checks that etcd is not
// running. It first removes the staging dirs that killed
// restores left (reporting each to [Options.OnSweep]), then writes only
// inside a private, locked staging dir (removed by [Plan.Close]); the data
// dir and kube dir are untouched. An unencrypted archive is refused unless
// AllowUnencrypted. Errors wrap [ErrNoTrailer], [ErrEtcdRunning],
// [ErrMembership], [ErrBadManifest], [ErrConflict], [ErrNoKubeDir],
// [ErrNotDataDir], [ErrDataDirNotConfirmed], the archive package's
// sentinels ([archive.ErrUnencrypted] among them),
// [snapshot.ErrTrailerMismatch] or [inspect.ErrLocked]. Error messages
// name the source and the data dir, never a staging path.
func Prepare(ctx context.Context, o Options) (_ *Plan, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if (o.BumpRevision > 0) != o.MarkCompacted {
		return nil, errors.New("bump revision and mark compacted go together: set both or neither")
	}
	only, err := parseOnly(o.Only)
	if err != nil {
		return nil, err
	}
	p := &Plan{Source: o.Source, opts: o, MarkCompacted: o.MarkCompacted, InitialMmapSize: o.InitialMmapSize, KubeDir: o.KubeDir,
		Compact: o.Compact, CleanLeases: o.CleanLeases}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	var st os.FileInfo
	if o.Input == nil {
		if st, err = os.Stat(o.Source); err != nil {
			return nil, fmt.Errorf("open source: %w", err)
		}
	}
	if o.DataDir != "" {
		if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
			return nil, err
		}
		p.opts.DataDir = o.DataDir
	}

	// The data dir may come from the manifest, which may come from the
	// archive: stage first, in the temp dir unless the data dir is known.
	stageParent := o.TmpDir
	if stageParent == "" && !o.DryRun && o.DataDir != "" {
		stageParent = filepath.Dir(o.DataDir)
	}
	if stageParent == "" {
		stageParent = os.TempDir()
	}
	p.sweep(stageParent)
	var archiveManifest []byte
	var src io.Reader // the stream, its sniffed head put back
	isArchive, encrypted := false, false
	if o.Input != nil {
		head := make([]byte, archive.SniffLen)
		n, err := io.ReadFull(o.Input.R, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read %s: %w", o.Source, err)
		}
		isArchive, encrypted = archive.Sniff(head[:n])
		src = io.MultiReader(bytes.NewReader(head[:n]), o.Input.R)
	} else if !st.IsDir() {
		isArchive, encrypted, _ = archive.SniffFile(o.Source)
	}
	switch {
	case isArchive:
		p.Kind = SourceArchive
		// Refuse before anything is written: the reader would too.
		if !encrypted && !o.AllowUnencrypted {
			return nil, fmt.Errorf("archive %s: %w", o.Source, archive.ErrUnencrypted)
		}
		if err := p.newStaging(stageParent); err != nil {
			return nil, err
		}
		if archiveManifest, err = p.stageArchive(ctx, o.KubeDir != "", src); err != nil {
			return nil, p.userPaths(err)
		}
	case o.KubeDir != "":
		return nil, fmt.Errorf("--kube-dir needs a backup archive as source, and %s is not one: %w", o.Source, ErrNoKubeDir)
	case src != nil:
		// A snapshot or raw db from a stream: bbolt and the trailer check
		// need a file, so it is staged as an archive's snapshot is.
		if err := p.newStaging(stageParent); err != nil {
			return nil, err
		}
		if err := p.stageSnapshot(ctx, src); err != nil {
			return nil, p.userPaths(err)
		}
		if err := p.checkTrailer(); err != nil {
			return nil, p.userPaths(err)
		}
	default:
		if p.snapPath, err = inspect.ResolveDBPath(o.Source); err != nil {
			return nil, fmt.Errorf("open source: %w", err)
		}
		// A db that etcd holds is changing under us: refuse it.
		if err := checkDBLock(p.snapPath); err != nil {
			return nil, err
		}
		if err := p.checkTrailer(); err != nil {
			return nil, err
		}
	}
	if p.Revision, err = latestRevision(p.snapPath); err != nil {
		return nil, p.userPaths(err)
	}
	if o.CleanLeases {
		if p.StaleKeys, err = staleKeys(ctx, p.snapPath); err != nil {
			return nil, p.userPaths(fmt.Errorf("list stale leases: %w", err))
		}
	}
	p.NewRevision = p.Revision
	if len(p.StaleKeys) > 0 {
		p.NewRevision++ // the deletions' revision
	}
	if o.MarkCompacted {
		p.NewRevision += int64(o.BumpRevision)
	}

	if err := p.resolveManifest(o, only, archiveManifest); err != nil {
		return nil, err
	}
	if err := p.facts(); err != nil {
		return nil, err
	}
	if p.Membership, err = ResolveMembership(o.Membership, p.Manifest); err != nil {
		return nil, err
	}
	if p.Manifest != nil && p.Membership.InitialCluster != p.Manifest.InitialCluster && p.Manifest.InitialCluster != "" {
		if n := len(p.Membership.Members()); n == 1 {
			p.Notes = append(p.Notes, fmt.Sprintf("the manifest's --initial-cluster is %q; the restored cluster has this member only (what --force-new-cluster would make); add the others back with 'etcdctl member add' once it runs", p.Manifest.InitialCluster))
		}
	}

	if err := p.resolveDataDir(o); err != nil {
		return nil, err
	}
	if p.Manifest != nil && p.Manifest.DataDir != "" && filepath.Clean(p.Manifest.DataDir) != p.DataDir {
		p.Notes = append(p.Notes, fmt.Sprintf("the manifest runs etcd with --data-dir=%s; make sure its host path volume is %s", p.Manifest.DataDir, p.DataDir))
	}
	if p.Manifest != nil && p.Manifest.WALDir != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("the manifest sets --wal-dir=%s; the WAL is restored inside the data dir instead: remove --wal-dir from the manifest or move member/wal there", p.Manifest.WALDir))
	}
	if err := p.checkNotRunning(); err != nil && !o.Force {
		msg := err.Error() + "; stop etcd first, or pass --force"
		if err := p.addBlocker(BlockEtcdRunning, true, err, msg); err != nil {
			return nil, err
		}
	}
	p.checkNewerDataDir()
	if err := p.checkQuota(); err != nil {
		return nil, err
	}
	if o.KubeDir != "" {
		err := p.planKubeDir(only)
		var ce *ConflictError
		if errors.As(err, &ce) {
			msg := fmt.Sprintf("%d kube dir files differ from the archive's (%s); compare them, then pass --force to replace them (the old ones are kept)", len(ce.Paths), ce.Error())
			err = p.addBlocker(BlockKubeConflict, true, err, msg)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.hook(stepStaged); err != nil {
		return nil, err
	}
	return p, nil
}

// newStaging creates the private staging dir under parent, which must not
// be a backup directory.
func (p *Plan) newStaging(parent string) (err error) {
	if err := notBackupDir(parent); err != nil {
		return err
	}
	if p.stage, err = fsx.NewStaging(parent, stagingPrefix); err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	return p.hook(stepStaging)
}

// checkTrailer checks the SHA-256 trailer of the snapshot or raw db at
// p.snapPath and sets Trailer and Kind: a mismatch and a missing trailer
// are refused unless SkipHashCheck.
func (p *Plan) checkTrailer() error {
	ts, err := snapshot.VerifyTrailer(p.snapPath)
	p.Trailer = ts.String()
	switch {
	case ts == snapshot.TrailerMismatch && !p.opts.SkipHashCheck:
		return err
	case err != nil && ts != snapshot.TrailerMismatch:
		return err
	case ts == snapshot.TrailerNone && !p.opts.SkipHashCheck:
		return fmt.Errorf("%s: %w; if it is a copy of member/snap/db from a stopped etcd, confirm with --skip-hash-check", p.Source, ErrNoTrailer)
	}
	p.Kind = SourceSnapshot
	if ts == snapshot.TrailerNone {
		p.Kind = SourceRawDB
	}
	return nil
}

// resolveDataDir sets the data dir from o.DataDir, or, in a dry run, from
// the manifest as an unconfirmed candidate, and finds out what is there.
func (p *Plan) resolveDataDir(o Options) (err error) {
	p.DataDir, p.DataDirFrom, p.DataDirConfirmed = o.DataDir, "--data-dir", true
	if p.DataDir == "" && p.Manifest != nil && p.Manifest.DataDir != "" {
		cand, from := p.Manifest.DataDir, "the manifest "+p.Manifest.Path
		if strings.HasSuffix(p.Manifest.Path, "(archive)") {
			from = "the archive's kubernetes/manifests/etcd.yaml"
		}
		if !o.DryRun {
			return fmt.Errorf("no --data-dir, and %s names %s: pass --data-dir %s to confirm: %w",
				from, termtext.Clean(cand), shellQuote(termtext.Clean(cand)), ErrDataDirNotConfirmed)
		}
		p.DataDir, p.DataDirFrom, p.DataDirConfirmed = cand, from, false
	}
	if p.DataDir == "" {
		return errors.New("no data dir: pass --data-dir")
	}
	if p.DataDir, err = filepath.Abs(p.DataDir); err != nil {
		return err
	}
	parent := filepath.Dir(p.DataDir)
	if _, err := os.Stat(parent); err != nil {
		return fmt.Errorf("data dir parent: %w", err)
	}
	p.sweep(parent)
	if err := notBackupDir(parent); err != nil {
		return err
	}
	if p.DataDirState, err = dataDirState(p.DataDir); err != nil {
		return err
	}
	p.DataDirExists = p.DataDirState != DataDirAbsent
	if p.DataDirState == DataDirEtcd {
		p.Backup = p.DataDir + ".etcdsafe-" + stamp(o.Now())
		if _, err := os.Lstat(p.Backup); err == nil {
			return fmt.Errorf("backup name %s is taken; wait a second and retry", p.Backup)
		}
		p.Recover = fmt.Sprintf("mv %s %s", shellQuote(p.Backup), shellQuote(p.DataDir))
	}
	p.BuildDir = filepath.Join(parent, stagingPrefix+"*", "data")
	return nil
}

// dataDirState tells what is at dir: nothing, an empty directory or an
// etcd data dir (member/snap/db, through real directories). Anything else
// fails with [ErrNotDataDir], saying what was found.
func dataDirState(dir string) (string, error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return DataDirAbsent, nil
	case err != nil:
		return "", fmt.Errorf("data dir: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		t, _ := os.Readlink(dir)
		return "", fmt.Errorf("data dir %s is a symbolic link to %s, not a directory: %w", termtext.Clean(dir), termtext.Clean(t), ErrNotDataDir)
	case !fi.IsDir():
		return "", fmt.Errorf("data dir %s is a %s, not a directory: %w", termtext.Clean(dir), fsx.KindName(fi.Mode()), ErrNotDataDir)
	}
	isDB := true
	for _, rel := range []string{"member", "member/snap", "member/snap/db"} {
		st, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil || (rel == "member/snap/db") != st.Mode().IsRegular() || (rel != "member/snap/db") != st.IsDir() {
			isDB = false
			break
		}
	}
	if isDB {
		return DataDirEtcd, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(4)
	if errors.Is(err, io.EOF) && len(names) == 0 {
		return DataDirEmpty, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("data dir: %w", err)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = strconv.Quote(n)
		if i == 3 {
			names[i] = "..."
		}
	}
	return "", fmt.Errorf("data dir %s is neither empty nor an etcd data dir (it has no member/snap/db, and holds %s): %w",
		termtext.Clean(dir), strings.Join(names, ", "), ErrNotDataDir)
}

// notBackupDir refuses to stage plaintext in a backup directory (one that
// etcdsafe backup or prune has locked): it is the place most likely to be
// copied off the host.
func notBackupDir(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, fsx.LockName)); err == nil {
		return fmt.Errorf("%s is a backup directory (it holds %s): the restore stages plaintext beside the data dir (or in --tmp-dir), never there; choose another directory", termtext.Clean(dir), fsx.LockName)
	}
	return nil
}

// sweep removes what killed restores left in dir: staging dirs, and the
// build dirs of etcdsafe versions before staging had a lock (those only
// once they are an hour old). Each removal is reported to OnSweep; a
// failure becomes a note, as it does not stop this restore.
func (p *Plan) sweep(dir string) {
	if p.swept == nil {
		p.swept = map[string]bool{}
	}
	dir = filepath.Clean(dir)
	if p.swept[dir] {
		return
	}
	p.swept[dir] = true
	prefixes := []string{stagingPrefix}
	if p.opts.DataDir != "" && filepath.Dir(p.opts.DataDir) == dir {
		prefixes = append(prefixes, "."+filepath.Base(p.opts.DataDir)+".etcdsafe-new-")
	}
	for _, prefix := range prefixes {
		removed, err := fsx.SweepStaging(dir, prefix)
		for _, r := range removed {
			if p.opts.OnSweep != nil {
				p.opts.OnSweep(r)
			}
		}
		if err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("could not remove what an earlier restore left: %v", err))
		}
	}
}

// userPaths rewrites the staging paths in err's message to what the user
// knows: the archive's entries and the data dir.
func (p *Plan) userPaths(err error) error {
	if err == nil {
		return nil
	}
	var pairs []string
	add := func(from, to string) {
		if from == "" {
			return
		}
		pairs = append(pairs, from, to)
		if q := strconv.Quote(from); q[1:len(q)-1] != from {
			pairs = append(pairs, q[1:len(q)-1], to)
		}
	}
	src := p.Source
	switch {
	case p.Kind == SourceArchive:
		add(p.snapPath, src+": "+archive.SnapshotPath)
		if p.kubeRoot != "" {
			add(p.kubeRoot, src+": "+archive.KubeDirPath)
		}
	case p.opts.Input != nil:
		add(p.snapPath, src) // the staged copy of the stream's snapshot
	}
	if p.buildDir != "" {
		add(p.buildDir, p.DataDir+" (being built)")
	}
	if p.stage != nil {
		add(p.stage.Path, "the staging dir in "+filepath.Dir(p.stage.Path))
	}
	if p.buildStage != "" {
		add(p.buildStage, "the staging dir in "+filepath.Dir(p.buildStage))
	}
	msg := strings.NewReplacer(pairs...).Replace(err.Error())
	if msg == err.Error() {
		return err
	}
	return &hiddenPathError{err: err, msg: msg}
}

// resolveManifest picks the static pod manifest (see [Options.Manifest]).
func (p *Plan) resolveManifest(o Options, only map[string]bool, fromArchive []byte) error {
	var err error
	node := DefaultManifestPath
	if o.testDefaultManifest != "" {
		node = o.testDefaultManifest
	}
	if o.KubeDir != "" {
		node = filepath.Join(o.KubeDir, "manifests", "etcd.yaml")
	}
	useArchive := func() error {
		m, err := ParseEtcdManifest(fromArchive)
		if err != nil {
			return fmt.Errorf("the archive's kubernetes/manifests/etcd.yaml: %w", err)
		}
		m.Path = "kubernetes/manifests/etcd.yaml (archive)"
		p.Manifest = m
		return nil
	}
	switch {
	case o.Manifest != "":
		p.Manifest, err = ReadEtcdManifest(o.Manifest)
		return err
	case fromArchive != nil && o.KubeDir != "" && (only["all"] || only["manifests"]):
		return useArchive()
	}
	if _, err := os.Stat(node); err == nil {
		p.Manifest, err = ReadEtcdManifest(node)
		return err
	}
	if fromArchive != nil {
		return useArchive()
	}
	return nil
}

// checkNotRunning looks for a running etcd: the data dir's bbolt lock, and
// a TCP (or unix socket) listener on the manifest's client URLs. It records
// what it checked in p.Checks.
func (p *Plan) checkNotRunning() error {
	p.Checks = p.Checks[:0]
	var found error
	db := filepath.Join(p.DataDir, "member", "snap", "db")
	if _, err := os.Stat(db); err == nil {
		err := checkDBLock(db)
		p.Checks = append(p.Checks, fmt.Sprintf("lock of %s: %s", db, outcome(err)))
		if err != nil {
			found = err
		}
	}
	var urls []string
	if p.Manifest != nil {
		urls = p.Manifest.ListenClientURLs
	}
	for _, u := range urls {
		addr, network, ok := dialAddr(u)
		if !ok {
			p.Checks = append(p.Checks, fmt.Sprintf("client url %s: not an address of this host, not checked", u))
			continue
		}
		c, err := net.DialTimeout(network, addr, 300*time.Millisecond)
		if err == nil {
			_ = c.Close()
			p.Checks = append(p.Checks, fmt.Sprintf("client url %s: something listens", u))
			if found == nil {
				found = fmt.Errorf("something listens on etcd's client url %s: %w", u, ErrEtcdRunning)
			}
			continue
		}
		p.Checks = append(p.Checks, fmt.Sprintf("client url %s: nothing listens", u))
	}
	return found
}

func outcome(err error) string {
	if err != nil {
		return "held (etcd is running)"
	}
	return "free"
}

// checkDBLock fails with [ErrEtcdRunning] (and [inspect.ErrLocked]) when
// another process holds db's bbolt lock.
func checkDBLock(db string) error {
	s, err := inspect.Open(db, inspect.OpenOptions{LockTimeout: lockTimeout})
	if errors.Is(err, inspect.ErrLocked) {
		return fmt.Errorf("%s: %w: %w", db, ErrEtcdRunning, err)
	}
	if err == nil {
		_ = s.Close()
	}
	return nil // a damaged db does not mean etcd runs; it is replaced anyway
}

// dialAddr turns a listen URL into something to dial: wildcard hosts
// become loopback.
func dialAddr(raw string) (addr, network string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false
	}
	switch u.Scheme {
	case "unix", "unixs":
		return u.Host + u.Path, "unix", true
	case "http", "https":
	default:
		return "", "", false
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "2379"
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || host == "localhost" || ip != nil && ip.IsUnspecified():
		host = "127.0.0.1"
	case ip == nil || !isLocalIP(ip):
		// Only this host's addresses: a remote one (or a name) would test
		// another machine, or a proxy that accepts every connection.
		return "", "", false
	}
	return net.JoinHostPort(host, port), "tcp", true
}

// isLocalIP reports whether ip is loopback or assigned to an interface here.
func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// latestRevision reads the newest revision of the db's key bucket.
func latestRevision(db string) (int64, error) {
	s, err := inspect.Open(db, inspect.OpenOptions{LockTimeout: lockTimeout})
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", db, err)
	}
	defer s.Close()
	return s.Revision()
}

// Result reports a finished [Plan.Execute].
type Result struct {
	// DataDir is the restored data dir; Backup where the old one went ("" if
	// there was none).
	DataDir string `json:"dataDir"`
	Backup  string `json:"backup,omitempty"`
	// Duration of the data dir build (etcdutl restore).
	BuildTime time.Duration `json:"buildTime"`
	// DBSizeBefore is the snapshot's db size, DBSize the restored db's
	// (smaller with Compact).
	DBSizeBefore int64 `json:"dbSizeBefore"`
	DBSize       int64 `json:"dbSize"`
	// KeysRemoved counts the keys CleanLeases deleted; AlarmsCleared the
	// alarms removed from the restored db.
	KeysRemoved   int `json:"keysRemoved"`
	AlarmsCleared int `json:"alarmsCleared"`
	// KubeCreated, KubeReplaced, KubeUnchanged count kube dir entries.
	KubeCreated   int `json:"kubeCreated"`
	KubeReplaced  int `json:"kubeReplaced"`
	KubeUnchanged int `json:"kubeUnchanged"`
}

// Execute builds the new data dir in a locked staging dir beside the old
// one, moves an existing etcd data dir aside to [Plan.Backup] (an empty one
// is simply replaced), renames the new one into place, then restores the
// kube dir. Interrupted before the old dir is moved, nothing changed but a
// staging dir ".etcdsafe-restore-*", which the next Prepare removes;
// between the two renames, [Plan.Recover] is the one command that puts the
// old dir back; after them the restore is done. It re-checks for a running
// etcd first (unless Force) and that the data dir is still what the plan
// found. Execute may be called once; it may not be called on a dry-run
// plan, nor on one whose data dir is an unconfirmed candidate.
func (p *Plan) Execute(ctx context.Context) (*Result, error) {
	if p.executed {
		return nil, errors.New("restore plan already executed")
	}
	if p.opts.DryRun {
		return nil, errors.New("cannot execute a dry-run plan")
	}
	p.executed = true
	if err := p.checkNotRunning(); err != nil && !p.opts.Force {
		return nil, err
	}
	if !p.DataDirConfirmed {
		return nil, fmt.Errorf("the data dir %s comes from %s: %w", termtext.Clean(p.DataDir), p.DataDirFrom, ErrDataDirNotConfirmed)
	}
	// What is at the data dir decides what is moved: look again.
	if state, err := dataDirState(p.DataDir); err != nil {
		return nil, err
	} else if state != p.DataDirState {
		return nil, fmt.Errorf("data dir %s changed since the plan was made (was %s, now %s); run the restore again", termtext.Clean(p.DataDir), p.DataDirState, state)
	}
	res := &Result{DataDir: p.DataDir, Backup: p.Backup}
	parent := filepath.Dir(p.DataDir)
	if err := notBackupDir(parent); err != nil {
		return nil, err
	}
	// The new data dir is built in a locked staging dir beside the old one
	// (the same file system, for the rename); a killed run leaves it to the
	// next run's sweep.
	stage, err := fsx.NewStaging(parent, stagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	defer func() { _ = stage.Remove() }()
	build := filepath.Join(stage.Path, "data")
	p.BuildDir, p.buildDir, p.buildStage = build, build, stage.Path
	defer func() { p.buildDir, p.buildStage = "", "" }()
	if err := p.hook(stepBuilding); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	res.DBSizeBefore = p.Quota.DBSize
	snap := p.snapPath
	if p.opts.Compact || len(p.StaleKeys) > 0 {
		if snap, err = p.rewrite(ctx, stage.Path, res); err != nil {
			return nil, p.userPaths(err)
		}
	}
	err = etcdsnap.NewV3(p.opts.Logger).Restore(etcdsnap.RestoreConfig{
		SnapshotPath:        snap,
		Name:                p.Membership.Name,
		OutputDataDir:       build,
		PeerURLs:            p.Membership.PeerURLs,
		InitialCluster:      p.Membership.InitialCluster,
		InitialClusterToken: p.Membership.Token,
		// The trailer (or the archive's SHA-256) was verified in Prepare;
		// checking it again would read the whole db once more.
		SkipHashCheck:   true,
		InitialMmapSize: p.opts.InitialMmapSize,
		RevisionBump:    p.opts.BumpRevision,
		MarkCompacted:   p.opts.MarkCompacted,
	})
	if err != nil {
		return nil, p.userPaths(fmt.Errorf("build data dir: %w", err))
	}
	db := filepath.Join(build, "member", "snap", "db")
	if len(p.Alarms) > 0 {
		if res.AlarmsCleared, err = clearAlarms(p.opts.Logger, db); err != nil {
			return nil, p.userPaths(err)
		}
	}
	res.BuildTime = time.Since(t0)
	if st, err := os.Stat(db); err == nil {
		res.DBSize = st.Size()
	}
	if err := os.Chmod(build, 0o700); err != nil {
		return nil, p.userPaths(fmt.Errorf("chmod data dir: %w", err))
	}
	if err := fsx.SyncDir(filepath.Join(build, "member")); err != nil {
		return nil, p.userPaths(err)
	}
	if err := p.hook(stepBuilt); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.DataDirState == DataDirEtcd {
		if err := os.Rename(p.DataDir, p.Backup); err != nil {
			return nil, fmt.Errorf("move the old data dir aside: %w", err)
		}
		if err := fsx.SyncDir(parent); err != nil {
			return nil, fmt.Errorf("%w (the old data dir is at %s: %s puts it back)", err, p.Backup, p.Recover)
		}
		if err := p.hook(stepMovedAside); err != nil {
			return nil, fmt.Errorf("%w (the old data dir is at %s: %s puts it back)", err, p.Backup, p.Recover)
		}
	}
	if p.DataDirState == DataDirEmpty {
		// os.Rename refuses an existing directory; Remove fails if
		// something appeared in it since the check.
		if err := os.Remove(p.DataDir); err != nil {
			return nil, fmt.Errorf("replace the empty data dir: %w", err)
		}
	}
	if err := os.Rename(build, p.DataDir); err != nil {
		err = p.userPaths(fmt.Errorf("put the new data dir in place: %w", err))
		if p.DataDirState == DataDirEtcd {
			if rerr := os.Rename(p.Backup, p.DataDir); rerr != nil {
				return nil, fmt.Errorf("%w; the old data dir is at %s: %s puts it back", err, p.Backup, p.Recover)
			}
		}
		return nil, err
	}
	if err := fsx.SyncDir(parent); err != nil {
		return nil, err
	}
	if err := p.hook(stepSwapped); err != nil {
		return nil, err
	}
	if p.KubeDir != "" {
		if err := p.applyKubeDir(ctx, res); err != nil {
			return res, fmt.Errorf("restore kube dir (the data dir is already restored): %w", err)
		}
	}
	return res, nil
}

// Close removes the staging dir. It is safe to call more than once.
func (p *Plan) Close() error {
	if p.stage == nil {
		return nil
	}
	err := p.stage.Remove()
	p.stage = nil
	return err
}

// NextSteps returns what the operator does after a successful restore, in
// order, for this plan's situation.
func (p *Plan) NextSteps() []string {
	var s []string
	single := len(p.Membership.Members()) == 1
	man := DefaultManifestPath
	if p.Manifest != nil && !strings.HasSuffix(p.Manifest.Path, "(archive)") {
		man = p.Manifest.Path
	} else if p.KubeDir != "" {
		man = filepath.Join(p.KubeDir, "manifests", "etcd.yaml")
	}
	s = append(s, fmt.Sprintf("start etcd on %s: the kubelet does so from %s (or move the manifest out and back to restart it)", p.DataDir, man))
	if p.Manifest != nil && p.Manifest.ForceNewCluster {
		s = append(s, fmt.Sprintf("the manifest has --force-new-cluster: once etcd is up, run 'etcdsafe manifest force-new-cluster --off %s'", man))
	}
	s = append(s, "check it: etcdctl endpoint status (the revision should be above "+fmt.Sprint(p.NewRevision)+")")
	s = append(s, "restart kube-apiserver, kube-controller-manager and kube-scheduler (move their manifests out of the manifests dir and back), then restart the kubelet on every node ('systemctl restart kubelet')")
	if !p.CleanLeases {
		s = append(s, "delete stale /registry/masterleases/ keys if kube-apiserver endpoints look wrong (or restore with --clean-leases)")
	}
	if single {
		s = append(s, "add the other masters back one at a time: on each, wipe its etcd data dir and join it with 'kubeadm join --control-plane' (or 'etcdctl member add' and --initial-cluster-state=existing)")
	} else {
		s = append(s, "restore the same snapshot on every other member listed in --initial-cluster, each with its own --name and peer URLs, then start them all")
	}
	if p.Backup != "" {
		s = append(s, fmt.Sprintf("when the cluster is healthy, remove the old data dir %s", p.Backup))
	}
	return s
}

// hook gives the tests' kill and failure points their chance at step.
func (p *Plan) hook(step string) error {
	if p.opts.testHook != nil {
		return p.opts.testHook(step)
	}
	return nil
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
