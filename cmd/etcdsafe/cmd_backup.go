package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/drill"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// Defaults matching a kubeadm or Deckhouse control-plane node. The
// healthcheck-client pair is the least privileged client certificate
// kubeadm issues that etcd accepts; apiserver-etcd-client works too.
const (
	defaultEndpoint = "https://127.0.0.1:2379"
	defaultCACert   = "/etc/kubernetes/pki/etcd/ca.crt"
	defaultCert     = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
	defaultKey      = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
	defaultKubeDir  = "/etc/kubernetes"
)

// testOnlyAfterArchiveWrite, when set, is called after every write to the
// archive temp file with the running byte count (the kill-mid-write test).
var testOnlyAfterArchiveWrite func(n int64)

// testOnlyAfterSpool, when set, is called once the snapshot is open (a live
// one fully spooled; the kill sweep test); testOnlyNow replaces the clock
// that names archives.
var (
	testOnlyAfterSpool func()
	testOnlyNow        = time.Now
)

type backupOptions struct {
	endpoints, cacert, cert, key        string // live source
	dialTimeout, commandTimeout         time.Duration
	fromDB, fromDataDir                 string // offline sources
	kubeDir                             string
	excludes, recipients, recipFiles    []string
	passFile                            string
	insecure                            bool
	noIndex                             bool
	outs                                []string // --out, repeatable
	sidecarOut                          string   // the sidecar of --out -
	cluster, tmpDir                     string
	keep                                archive.RetentionPolicy
	metricsFile, logFormat, compression string
	drill                               bool          // drill the archive just written
	drillIdentity, drillMetrics         string        // its identity file and metrics file
	objectLock                          string        // "", governance or compliance
	lockFor                             time.Duration // 0: derived from --keep-*
	s3                                  s3Flags
}

func newBackupCmd() *cobra.Command {
	o := &backupOptions{}
	c := &cobra.Command{
		Use:   "backup --out DIR|FILE|s3://BUCKET/PREFIX|- ... (-r RECIPIENT | -R FILE | --passphrase-file FILE | --insecure-no-encryption)",
		Short: "Write an encrypted archive of an etcd snapshot and the control plane's config directory",
		Long: `Take a consistent snapshot of etcd and archive it, with the control plane's config directory
(--kube-dir, default /etc/kubernetes: PKI, manifests, EncryptionConfiguration), as
tar + zstd + age. The archive opens with stock tools:
  age -d -i key.txt ARCHIVE | zstd -d | tar -x

The snapshot comes from a live member through the Maintenance API over TLS with client
certificates (flags or ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY,
ETCDCTL_DIAL_TIMEOUT, ETCDCTL_COMMAND_TIMEOUT, as for etcdctl; a flag wins over its
variable), or offline from a db file (--from-db) or the data dir of a stopped member
(--from-data-dir). A live snapshot is spooled first, so that its SHA-256 trailer is checked
before the backup counts: into a private 0700 dir under --tmp-dir (default: the system temp
dir, never the output dir), encrypted on its way to disk with a random key held only in
memory, so a run killed at any point leaves no plaintext behind; the next run removes what
killed runs left. A db file without a trailer (a copy of member/snap/db) is checked page by
page before it is archived; a damaged one is refused (exit 3).

A member that cannot be reached is probed (TCP, a TLS handshake with the same certificates,
an HTTP/2 preface) and the error names why, with a hint: an unknown CA (--cacert), a client
certificate the server rejects or misses (--cert, --key), a certificate that does not name
the endpoint's host, http:// against TLS or https:// against plain HTTP, nothing listening,
another service on the port, a name that does not resolve, no answer in time (exit 1).

--out DIR names the archive <cluster or host>-<UTC time>.tar.zst.age and writes a small
unencrypted sidecar <archive>.json (time, host, revision, sizes, the archive's SHA-256 and
recipient fingerprints, no secrets) that list, prune and verify --quick read without the key.
Nothing appears under a final name before it is complete and synced; a lock file keeps two
runs out of one directory. --keep-* prunes old backups after a successful run.

Beside an encrypted archive goes its key index <archive>.index (every key's revisions and
value hashes, no values, encrypted to the same recipients), built while the archive is
compressed: 'timeline' reads the indexes instead of whole archives. --no-index skips it.

--out s3://BUCKET/PREFIX streams the archive to an S3-compatible bucket (AWS S3, MinIO, Ceph
RGW, ...) as a multipart upload, never through a local temp file, under
PREFIX/<cluster or host>/, named as in a directory, so that one bucket holds a fleet; the
object appears only when the upload completes, and its sidecar after it. An s3:// URL ending
in an archive name (.tar.zst.age) is that object. Credentials come from the standard AWS chain
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance metadata),
never from flags; --s3-endpoint names a server other than AWS.

--out may be repeated (a local directory kept short and a bucket kept long): the snapshot is
read once and the archive streamed to every output at once. An output that fails is dropped
while the others go on; each output that holds the archive is printed on its own line, and
when any failed the run exits 1 naming it.

--object-lock governance|compliance locks the archive and its sidecar in every bucket that
has S3 Object Lock, until --lock-for (30d, 720h, ...) after the backup, or without it the
longest horizon of --keep-daily/--keep-weekly/--keep-monthly; a directory output is written
unlocked, and a bucket without object lock is refused (exit 2) before anything is written.

--out - writes the archive to standard output; --sidecar-out FILE then writes its sidecar
there (atomically, once the archive is complete), so that a piped backup can be listed and
checked with 'verify --quick' like any other: name it ARCHIVE.json beside where the stream
is kept as ARCHIVE.

Passphrases come from --passphrase-file FILE, a terminal prompt (--passphrase-file tty) or
ETCDSAFE_PASSPHRASE, never from a flag value.` + exitStatus(exitOK, exitFailure, exitUsage, exitIntegrity, exitLocked, exitInterrupted),
		Example: `  etcdsafe keygen -o /root/etcd-backup.key       # once; keep the key off the cluster
  etcdsafe backup -r age1pq1... --out /var/backups/etcd --keep-daily 7 --keep-weekly 4 \
    --metrics-file /var/lib/node_exporter/etcdsafe.prom
  etcdsafe backup --from-data-dir /var/lib/etcd -R recipients.txt --out /mnt/backup
  etcdsafe backup -r age1... --out /var/backups/etcd --keep-daily 7 \
    --out s3://etcd-backups/prod --object-lock compliance --lock-for 30d
  etcdsafe backup -r age1... --out - --sidecar-out etcd.tar.zst.age.json | ssh backup-host 'cat > etcd.tar.zst.age'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.applyEnv(cmd)
			if err := o.applyTimeoutEnv(cmd); err != nil {
				return err
			}
			if err := o.validate(cmd); err != nil {
				return err
			}
			if err := o.validateDrill(); err != nil {
				return err
			}
			return runBackup(cmd, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.endpoints, "endpoints", defaultEndpoint, "etcd client URL(s), comma-separated; the first that answers is used [$ETCDCTL_ENDPOINTS]")
	f.StringVar(&o.cacert, "cacert", defaultCACert, "CA bundle to verify the etcd server [$ETCDCTL_CACERT]")
	f.StringVar(&o.cert, "cert", defaultCert, "client certificate [$ETCDCTL_CERT]")
	f.StringVar(&o.key, "key", defaultKey, "client certificate key [$ETCDCTL_KEY]")
	f.DurationVar(&o.dialTimeout, "dial-timeout", defaultDialTimeout, "timeout for connecting to etcd [$ETCDCTL_DIAL_TIMEOUT]")
	f.DurationVar(&o.commandTimeout, "command-timeout", defaultCommandTimeout, "timeout for etcd's status request; the snapshot stream is not bounded [$ETCDCTL_COMMAND_TIMEOUT]")
	f.StringVar(&o.fromDB, "from-db", "", "archive this db or snapshot file instead of asking a live etcd")
	f.StringVar(&o.fromDataDir, "from-data-dir", "", "archive member/snap/db of this stopped member's data dir")
	f.StringVar(&o.kubeDir, "kube-dir", defaultKubeDir, `control plane config directory to include ("" for none)`)
	f.StringArrayVar(&o.excludes, "exclude", nil, "glob of kube-dir paths to leave out (repeatable; no '/' = base name at any depth)")
	f.StringArrayVarP(&o.recipients, "recipient", "r", nil, "age (age1..., age1pq1...) or ssh public key to encrypt to (repeatable)")
	f.StringArrayVarP(&o.recipFiles, "recipients-file", "R", nil, "file of recipients, one per line (repeatable)")
	f.StringVar(&o.passFile, "passphrase-file", "", "encrypt with the passphrase in this file, or \"tty\" to be asked (or set ETCDSAFE_PASSPHRASE)")
	f.BoolVar(&o.insecure, "insecure-no-encryption", false, "write an unencrypted archive (it holds CA keys and every Secret)")
	f.BoolVar(&o.noIndex, "no-index", false, "write no key index (<archive>.index, read by timeline) beside the archive")
	f.StringArrayVarP(&o.outs, "out", "o", nil, "output directory, archive file, s3://BUCKET/PREFIX, or - for stdout (required; repeatable, except -)")
	f.StringVar(&o.sidecarOut, "sidecar-out", "", "with --out -, write the archive's sidecar to this file (ARCHIVE.json)")
	f.Var(&choiceValue{p: &o.objectLock, name: "--object-lock", allowed: []string{"governance", "compliance"}}, "object-lock",
		"lock the archive in s3:// outputs with S3 Object Lock: governance or compliance")
	f.Var(durationValue{p: &o.lockFor, name: "--lock-for", min: time.Second}, "lock-for",
		"how long --object-lock keeps the archive, e.g. 30d or 720h (default: the longest --keep-daily/-weekly/-monthly horizon)")
	f.StringVar(&o.cluster, "cluster", "", "cluster name used in the archive name (default: host name)")
	f.StringVar(&o.tmpDir, "tmp-dir", "", "where the live snapshot is spooled, encrypted (default: the system temp dir; not inside --out)")
	f.IntVar(&o.keep.Last, "keep-last", 0, "after success, keep the N newest backups in --out DIR")
	f.IntVar(&o.keep.Daily, "keep-daily", 0, "after success, keep the newest backup of each of the last N days")
	f.IntVar(&o.keep.Weekly, "keep-weekly", 0, "after success, keep the newest backup of each of the last N weeks")
	f.IntVar(&o.keep.Monthly, "keep-monthly", 0, "after success, keep the newest backup of each of the last N months")
	f.StringVar(&o.metricsFile, "metrics-file", "", "write Prometheus textfile-collector metrics here (atomically)")
	f.BoolVar(&o.drill, "drill", false, "then run a restore drill (see 'etcdsafe drill') on the archive just written, on the first output; a failed drill fails the run (the archive stays)")
	f.StringVar(&o.drillIdentity, "drill-identity", "", "with --drill: age identity file of the archive's recipient [$ETCDSAFE_IDENTITY] (a passphrase archive uses --passphrase-file)")
	f.StringVar(&o.drillMetrics, "drill-metrics-file", "", "with --drill: write the drill's metrics here (default: beside --metrics-file, NAME-drill.prom)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&o.compression, "compression", "fastest", "zstd level: fastest, default (zstd -3), better or best")
	o.s3.register(f)
	return c
}

func (o *backupOptions) validate(cmd *cobra.Command) error {
	toStdout := slices.Contains(o.outs, "-")
	switch {
	case len(o.outs) == 0:
		return usagef("--out is required (a directory, a file, s3://BUCKET/PREFIX, or - for stdout)")
	case toStdout && len(o.outs) > 1:
		return usagef("--out - (standard output) excludes other --out")
	case o.sidecarOut != "" && !toStdout:
		return usagef("--sidecar-out is for --out -: a directory or bucket gets the sidecar beside the archive")
	case o.sidecarOut == "-":
		return usagef("--sidecar-out - : standard output holds the archive; name a file")
	case cmd.Flags().Changed("lock-for") && o.objectLock == "":
		return usagef("--lock-for needs --object-lock governance|compliance")
	case o.objectLock != "" && toStdout:
		return usagef("--object-lock needs an s3:// --out: standard output cannot be locked")
	case o.fromDB != "" && o.fromDataDir != "":
		return usagef("--from-db and --from-data-dir exclude each other")
	case o.logFormat != "text" && o.logFormat != "json":
		return usagef("--log-format must be text or json")
	case o.keep.Last < 0 || o.keep.Daily < -1 || o.keep.Weekly < -1 || o.keep.Monthly < -1:
		return usagef("--keep-last must be >= 0, the other --keep-* >= -1 (-1 = all)")
	}
	if (o.fromDB != "" || o.fromDataDir != "") && anyChanged(cmd, "endpoints", "cacert", "cert", "key") {
		return usagef("--endpoints/--cacert/--cert/--key apply to a live etcd, not to --from-db or --from-data-dir")
	}
	if _, ok := backup.CompressionLevels[o.compression]; !ok {
		return usagef("--compression must be fastest, default, better or best")
	}
	if err := o.validateRecipients(); err != nil {
		return err
	}
	if toStdout && !o.keep.Empty() {
		return usagef("--keep-* needs --out DIR or s3://BUCKET/PREFIX")
	}
	seen := map[string]bool{}
	for _, out := range o.outs {
		key := filepath.Clean(out)
		if s3store.IsURL(out) {
			bucket, prefix, err := s3store.ParseURL(out)
			if err != nil {
				return usagef("--out: %v", err)
			}
			key = bucket + "/" + strings.Trim(path.Clean("/"+prefix), "/")
		}
		if seen[key] {
			return usagef("--out %s is given twice", out)
		}
		seen[key] = true
	}
	return nil
}

func anyChanged(cmd *cobra.Command, names ...string) bool {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// runBackup wires the flags to backup.Run, prints where each output holds
// the archive (path or URL), writes the sidecar of --out - to
// --sidecar-out, and writes the metrics file of every run that got past
// validation.
func runBackup(cmd *cobra.Command, o *backupOptions, stdout, stderr io.Writer) (err error) {
	log := newLogger(o.logFormat, stderr)
	var res *backup.Result
	var drillErr error // the backup's metrics count the backup only
	defer func() {
		if err != nil {
			log.Error("backup failed", "err", err.Error())
		}
		if o.metricsFile != "" {
			if merr := backup.WriteMetrics(o.metricsFile, res, err, time.Now()); merr != nil {
				log.Error("write metrics file", "path", o.metricsFile, "err", merr)
				if err == nil {
					err = merr
				}
			}
		}
		if err == nil {
			err = drillErr
		}
	}()
	bo, err := o.backupOptions(cmd, stdout, stderr, log)
	if err != nil {
		return err
	}
	if o.sidecarOut != "" {
		// checked again by the atomic commit; here so that a taken name
		// fails before the archive is streamed, not after
		if _, err := os.Lstat(o.sidecarOut); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--sidecar-out %s: %w", o.sidecarOut, errOr(err, fs.ErrExist))
		}
		if st, err := os.Stat(filepath.Dir(o.sidecarOut)); err != nil || !st.IsDir() {
			return fmt.Errorf("--sidecar-out %s: its directory: %w", o.sidecarOut, errOr(err, fs.ErrInvalid))
		}
	}
	res, err = backup.Run(cmd.Context(), bo)
	if res != nil {
		for _, x := range res.Outputs {
			if x.Where != "" {
				fmt.Fprintln(stdout, x.Where)
			}
		}
	}
	var oe *backup.OutputsError
	if errors.As(err, &oe) {
		missing := 0
		for _, f := range oe.Failed {
			if f.Archive == "" {
				missing++
			}
		}
		if missing > 0 {
			err = fmt.Errorf("the archive is not on %d of %d outputs (those printed above hold it): %w", missing, len(res.Outputs), err)
		}
	}
	if err == nil && o.sidecarOut != "" {
		err = writeSidecarOut(o.sidecarOut, res.Sidecar)
	}
	if err == nil && o.drill {
		drillErr = drillBackup(cmd, o, res.Where, log, stderr)
	}
	return err
}

// validateDrill checks the --drill flags: the drill needs an archive it
// can open.
func (o *backupOptions) validateDrill() error {
	if !o.drill {
		if o.drillIdentity != "" || o.drillMetrics != "" {
			return usagef("--drill-identity and --drill-metrics-file need --drill")
		}
		return nil
	}
	if slices.Contains(o.outs, "-") {
		return usagef("--drill needs an archive it can read again: not --out -")
	}
	if !o.insecure && o.passFile == "" && o.drillIdentity == "" && os.Getenv(envIdentity) == "" && os.Getenv(envPassphrase) == "" {
		return usagef("--drill needs the archive's identity to open it: --drill-identity FILE (or $%s)", envIdentity)
	}
	return nil
}

// drillBackup runs the restore drill on the archive backup just wrote
// (where: its path or URL on the first output) and logs the outcome.
func drillBackup(cmd *cobra.Command, o *backupOptions, where string, log *slog.Logger, stderr io.Writer) error {
	so := &sourceOptions{decryptionConfig: decryptionConfigDefault(), prefix: "/registry", lockTimeout: 2 * time.Second,
		identity: o.drillIdentity, passFile: o.passFile, tmpDir: o.tmpDir, allowUnencrypted: o.insecure,
		s3: s3Flags{endpoint: o.s3.endpoint, region: o.s3.region, profile: o.s3.profile, caFile: o.s3.caFile, virtualHost: o.s3.virtualHost}}
	rep, err := drillSource(cmd, where, so, drill.DefaultPageSize, drillMetricsFile(o.drillMetrics, o.metricsFile), stderr)
	if err != nil {
		log.Error("restore drill failed", "archive", where, "err", cleanMessage(err))
		return fmt.Errorf("restore drill of %s (the archive is kept): %w", where, err)
	}
	log.Info("restore drill passed", "archive", where, "keys", rep.KeysRead, "objects", rep.Objects,
		"secrets", rep.Secrets, "revision", rep.Revision, "seconds", rep.Duration)
	return nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// writeSidecarOut writes the sidecar of a --out - run to file, atomically
// and never over an existing file. It names the archive file's base name
// less ".json" when that is an archive's name, else the name the archive
// would have in a directory.
func writeSidecarOut(file string, sc *archive.Sidecar) error {
	s := *sc
	if base := strings.TrimSuffix(filepath.Base(file), archive.SidecarSuffix); backup.IsArchiveName(base) {
		s.Archive = base
	} else {
		s.Archive = backup.ArchiveName(s.Cluster, s.Host, s.Created, s.Encrypted)
	}
	b, err := s.Marshal()
	if err != nil {
		return err
	}
	f, err := fsx.Create(file, 0o600)
	if err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	defer f.Abort()
	f.NoReplace, f.ExpectSize = true, int64(len(b))
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write sidecar %s: %w", file, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("write sidecar %s: %w", file, err)
	}
	return nil
}

// backupOptions builds the library's options from the flags: recipients
// (or the passphrase), the target (--out) and the source.
func (o *backupOptions) backupOptions(cmd *cobra.Command, stdout, stderr io.Writer, log *slog.Logger) (backup.Options, error) {
	recips, fps, err := backupRecipients(o)
	if err != nil {
		return backup.Options{}, err
	}
	host, _ := os.Hostname()
	bo := backup.Options{
		DB: o.fromDB, DataDir: o.fromDataDir, Endpoints: strings.Split(o.endpoints, ","),
		DialTimeout: o.dialTimeout, CommandTimeout: o.commandTimeout,
		TLS:     backup.TLSFiles{CACert: o.cacert, Cert: o.cert, Key: o.key},
		KubeDir: o.kubeDir, KubeDirOptional: !cmd.Flags().Changed("kube-dir"), Excludes: o.excludes,
		Recipients: recips, Fingerprints: fps, Insecure: o.insecure, NoIndex: o.noIndex,
		Cluster: o.cluster, Host: host, Keep: o.keep, GroupBy: archive.DefaultGroupBy, Level: backup.CompressionLevels[o.compression],
		TmpDir: o.tmpDir, ToolVersion: version, Now: testOnlyNow, Logger: log, Progress: newBackupProgress(stderr),
	}
	if o.objectLock != "" {
		bo.ObjectLock = &backup.ObjectLock{Mode: strings.ToUpper(o.objectLock), For: o.lockFor}
	}
	if o.outs[0] != "-" {
		dirs := map[string]string{} // a directory's lock is taken once per run
		for _, out := range o.outs {
			var t store.Target
			var name string
			var err error
			if s3store.IsURL(out) {
				t, name, err = o.s3Output(cmd.Context(), out, backup.FleetDir(o.cluster, host))
			} else {
				var l *store.Local
				l, name, err = backup.OpenLocal(out)
				if err == nil {
					if prev, ok := dirs[filepath.Clean(l.Dir())]; ok {
						return bo, usagef("--out %s and --out %s are in the same directory", prev, out)
					}
					dirs[filepath.Clean(l.Dir())] = out
				}
				t = l
			}
			if err != nil {
				return bo, err
			}
			bo.Outputs = append(bo.Outputs, backup.Output{Target: t, Name: name})
		}
		return bo, nil
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return bo, usagef("refusing to write a binary archive to a terminal; redirect stdout or use --out DIR")
	}
	bo.Stdout = stdout
	return bo, nil
}

// s3Output interprets --out s3://BUCKET/PREFIX: the target is
// PREFIX/<fleetDir>/ (one bucket holds a fleet), with names chosen by
// backup.Run; a URL whose last element is an archive's name is that
// object, in the "directory" above it.
func (o *backupOptions) s3Output(ctx context.Context, url, fleetDir string) (store.Target, string, error) {
	client, err := o.s3.clientFor(ctx)
	if err != nil {
		return nil, "", err
	}
	bucket, prefix, err := s3store.ParseURL(url)
	if err != nil {
		return nil, "", usageError{err}
	}
	if backup.IsArchiveName(path.Base(prefix)) && !strings.HasSuffix(prefix, "/") {
		return client.Split(url)
	}
	return client.Bucket(bucket, prefix).Sub(fleetDir), "", nil
}

// durationValue is a duration flag that also takes whole days ("30d", as
// retention is usually said), and refuses values below min.
type durationValue struct {
	p    *time.Duration
	name string
	min  time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return fmt.Errorf("%s %q: want a duration such as 30d, 12h or 90m", v.name, s)
	}
	if d < v.min {
		if v.min == 0 {
			return fmt.Errorf("%s %q: must not be negative", v.name, s)
		}
		return fmt.Errorf("%s %q: must be at least %v", v.name, s, v.min)
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string {
	if v.p == nil || *v.p == 0 {
		return "" // no "(default 0s)" in the help
	}
	if d := *v.p; d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return v.p.String()
}

func (v durationValue) Type() string { return "duration" }

// parseDays parses "Nd" (N whole days) or a Go duration ("720h", "1h30m").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days < 0 || days > 100*366 {
			return 0, fmt.Errorf("bad day count %q", n)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Connection timeouts; the command timeout is etcdctl's default.
const (
	defaultDialTimeout    = 5 * time.Second // etcdctl: 2s; a nightly run on a loaded master may wait longer
	defaultCommandTimeout = 5 * time.Second
)

// applyTimeoutEnv fills --dial-timeout and --command-timeout from
// etcdctl's variables (duration strings such as 5s) unless the flag was
// given.
func (o *backupOptions) applyTimeoutEnv(cmd *cobra.Command) error {
	if o.fromDB != "" || o.fromDataDir != "" {
		return nil // no live etcd: the variables do not apply
	}
	for _, e := range []struct {
		flag, env string
		dst       *time.Duration
	}{
		{"dial-timeout", "ETCDCTL_DIAL_TIMEOUT", &o.dialTimeout},
		{"command-timeout", "ETCDCTL_COMMAND_TIMEOUT", &o.commandTimeout},
	} {
		v := os.Getenv(e.env)
		if v == "" || cmd.Flags().Changed(e.flag) {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return usagef("%s=%q: want a positive duration such as 5s or 500ms", e.env, v)
		}
		*e.dst = d
	}
	if o.dialTimeout <= 0 || o.commandTimeout <= 0 {
		return usagef("--dial-timeout and --command-timeout must be positive")
	}
	return nil
}

// dialHint says what to check for the cause a probe of etcd found.
func dialHint(c snapshot.Cause) string {
	switch c {
	case snapshot.CauseUnknownAuthority:
		return "--cacert (or $ETCDCTL_CACERT) must be the CA that signed etcd's serving certificate (kubeadm: " + defaultCACert + ")"
	case snapshot.CauseHostname:
		return "connect by a name or IP that etcd's serving certificate holds (openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/etcd/server.crt); kubeadm's hold 127.0.0.1, localhost and the node's own address"
	case snapshot.CauseServerCert:
		return "etcd's serving certificate has expired or is not yet valid: check the clock and 'kubeadm certs check-expiration'"
	case snapshot.CauseClientCertRejected:
		return "--cert and --key (or $ETCDCTL_CERT, $ETCDCTL_KEY) must be a client certificate signed by etcd's CA and not expired (kubeadm: " + defaultCert + ")"
	case snapshot.CauseClientCertRequired:
		return "etcd wants a client certificate: pass --cert and --key (or $ETCDCTL_CERT, $ETCDCTL_KEY)"
	case snapshot.CausePlainServer:
		return "this etcd serves plain HTTP: use an http:// endpoint"
	case snapshot.CauseTLSServer:
		return "this etcd serves TLS: use an https:// endpoint with --cacert, --cert and --key"
	case snapshot.CauseRefused:
		return "is etcd running, and is this its client port? (2379 by default: --listen-client-urls in etcd's manifest)"
	case snapshot.CauseNotEtcd:
		return "another service answers on this port: check the port in --endpoints (etcd's client port is 2379 by default; 2380 is the peer port)"
	case snapshot.CauseDNS:
		return "check the host name in --endpoints, or give an IP address"
	case snapshot.CauseTimeout:
		return "nothing answered within --dial-timeout: a wrong address, a firewall, or an overloaded etcd; raise --dial-timeout (or $ETCDCTL_DIAL_TIMEOUT) if etcd is only slow"
	}
	return "check --endpoints and the certificates; 'etcdctl endpoint health' with the same flags may tell more"
}
