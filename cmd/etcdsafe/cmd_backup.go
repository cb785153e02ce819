package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
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

// testOnlyAfterSpool, when set, is called once the live snapshot is fully
// spooled (the kill sweep test); testOnlyNow replaces the clock that names
// archives.
var (
	testOnlyAfterSpool func()
	testOnlyNow        = time.Now
)

type backupOptions struct {
	endpoints   string
	cacert      string
	cert        string
	key         string
	dialTimeout time.Duration
	fromDB      string
	fromDataDir string
	kubeDir     string
	excludes    []string
	recipients  []string
	recipFiles  []string
	passFile    string
	insecure    bool
	out         string
	cluster     string
	tmpDir      string
	keep        archive.RetentionPolicy
	metricsFile string
	logFormat   string
	compression string
}

// compressionLevels are the --compression choices. fastest is the default:
// on a 1M-object snapshot it writes an archive 1.6% larger than default
// (zstd level 3, what `zstd` picks) in about 25% less time and CPU, on a
// master that runs etcd next to it.
var compressionLevels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

func newBackupCmd() *cobra.Command {
	o := &backupOptions{}
	c := &cobra.Command{
		Use:   "backup --out DIR|FILE|- (-r RECIPIENT | -R FILE | --passphrase-file FILE | --insecure-no-encryption)",
		Short: "Write an encrypted archive of an etcd snapshot and the control plane's config directory",
		Long: `Take a consistent snapshot of etcd and archive it, with the control plane's config directory
(--kube-dir, default /etc/kubernetes: PKI, manifests, EncryptionConfiguration), as
tar + zstd + age. The archive opens with stock tools:
  age -d -i key.txt ARCHIVE | zstd -d | tar -x

The snapshot comes from a live member through the Maintenance API over TLS with client
certificates (flags or ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY, as for
etcdctl), or offline from a db file (--from-db) or the data dir of a stopped member
(--from-data-dir). A live snapshot is spooled first, so that its SHA-256 trailer is checked
before the backup counts: into a private 0700 dir under --tmp-dir (default: the system temp
dir, never the output dir), encrypted on its way to disk with a random key held only in
memory, so a run killed at any point leaves no plaintext behind; the next run removes what
killed runs left. A db file without a trailer (a copy of member/snap/db) is checked page by
page before it is archived; a damaged one is refused (exit 3).

--out DIR names the archive <cluster or host>-<UTC time>.tar.zst.age and writes a small
unencrypted sidecar <archive>.json (time, host, revision, sizes, the archive's SHA-256 and
recipient fingerprints, no secrets) that list, prune and verify --quick read without the key.
Nothing appears under a final name before it is complete and synced; a lock file keeps two
runs out of one directory. --keep-* prunes old backups after a successful run.

Passphrases come from --passphrase-file FILE, a terminal prompt (--passphrase-file tty) or
ETCDSAFE_PASSPHRASE, never from a flag value.` + exitStatusHelp,
		Example: `  etcdsafe keygen -o /root/etcd-backup.key       # once; keep the key off the cluster
  etcdsafe backup -r age1pq1... --out /var/backups/etcd --keep-daily 7 --keep-weekly 4 \
    --metrics-file /var/lib/node_exporter/etcdsafe.prom
  etcdsafe backup --from-data-dir /var/lib/etcd -R recipients.txt --out /mnt/backup
  etcdsafe backup -r age1... --out - | ssh backup-host 'cat > etcd.tar.zst.age'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.applyEnv(cmd)
			if err := o.validate(cmd); err != nil {
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
	f.DurationVar(&o.dialTimeout, "dial-timeout", 5*time.Second, "timeout for connecting to etcd")
	f.StringVar(&o.fromDB, "from-db", "", "archive this db or snapshot file instead of asking a live etcd")
	f.StringVar(&o.fromDataDir, "from-data-dir", "", "archive member/snap/db of this stopped member's data dir")
	f.StringVar(&o.kubeDir, "kube-dir", defaultKubeDir, `control plane config directory to include ("" for none)`)
	f.StringArrayVar(&o.excludes, "exclude", nil, "glob of kube-dir paths to leave out (repeatable; no '/' = base name at any depth)")
	f.StringArrayVarP(&o.recipients, "recipient", "r", nil, "age (age1..., age1pq1...) or ssh public key to encrypt to (repeatable)")
	f.StringArrayVarP(&o.recipFiles, "recipients-file", "R", nil, "file of recipients, one per line (repeatable)")
	f.StringVar(&o.passFile, "passphrase-file", "", "encrypt with the passphrase in this file, or \"tty\" to be asked (or set ETCDSAFE_PASSPHRASE)")
	f.BoolVar(&o.insecure, "insecure-no-encryption", false, "write an unencrypted archive (it holds CA keys and every Secret)")
	f.StringVarP(&o.out, "out", "o", "", "output directory, file, or - for stdout (required)")
	f.StringVar(&o.cluster, "cluster", "", "cluster name used in the archive name (default: host name)")
	f.StringVar(&o.tmpDir, "tmp-dir", "", "where the live snapshot is spooled, encrypted (default: the system temp dir; not inside --out)")
	f.IntVar(&o.keep.Last, "keep-last", 0, "after success, keep the N newest backups in --out DIR")
	f.IntVar(&o.keep.Daily, "keep-daily", 0, "after success, keep the newest backup of each of the last N days")
	f.IntVar(&o.keep.Weekly, "keep-weekly", 0, "after success, keep the newest backup of each of the last N weeks")
	f.IntVar(&o.keep.Monthly, "keep-monthly", 0, "after success, keep the newest backup of each of the last N months")
	f.StringVar(&o.metricsFile, "metrics-file", "", "write Prometheus textfile-collector metrics here (atomically)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&o.compression, "compression", "fastest", "zstd level: fastest, default (zstd -3), better or best")
	return c
}

// applyEnv fills unset connection flags from etcdctl's environment.
func (o *backupOptions) applyEnv(cmd *cobra.Command) {
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{"endpoints", "ETCDCTL_ENDPOINTS", &o.endpoints},
		{"cacert", "ETCDCTL_CACERT", &o.cacert},
		{"cert", "ETCDCTL_CERT", &o.cert},
		{"key", "ETCDCTL_KEY", &o.key},
	} {
		if v := os.Getenv(e.env); v != "" && !cmd.Flags().Changed(e.flag) {
			*e.dst = v
		}
	}
}

func (o *backupOptions) validate(cmd *cobra.Command) error {
	switch {
	case o.out == "":
		return usagef("--out is required (a directory, a file, or - for stdout)")
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
	if _, ok := compressionLevels[o.compression]; !ok {
		return usagef("--compression must be fastest, default, better or best")
	}
	hasPass := o.passFile != "" || os.Getenv("ETCDSAFE_PASSPHRASE") != ""
	hasRecip := len(o.recipients) > 0 || len(o.recipFiles) > 0
	switch {
	case o.insecure && (hasRecip || o.passFile != ""):
		return usagef("--insecure-no-encryption excludes -r, -R and --passphrase-file")
	case !o.insecure && !hasRecip && !hasPass:
		return usagef("no recipient: pass -r, -R, --passphrase-file (or ETCDSAFE_PASSPHRASE), or --insecure-no-encryption")
	case hasRecip && o.passFile != "":
		return usagef("a passphrase cannot be combined with -r/-R (age allows a passphrase only alone)")
	}
	if o.out == "-" && !o.keep.Empty() {
		return usagef("--keep-* needs --out DIR")
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

// backupResult is what a successful run reports and records in metrics.
type backupResult struct {
	Archive  string
	Sidecar  *archive.Sidecar
	Duration time.Duration
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func runBackup(cmd *cobra.Command, o *backupOptions, stdout, stderr io.Writer) (err error) {
	ctx := cmd.Context()
	log := newLogger(o.logFormat, stderr)
	start := testOnlyNow()
	var res *backupResult
	if o.metricsFile != "" {
		defer func() {
			if merr := writeBackupMetrics(o.metricsFile, start, res, err); merr != nil {
				log.Error("write metrics file", "path", o.metricsFile, "err", merr)
				if err == nil {
					err = merr
				}
			}
		}()
	}
	defer func() {
		if err != nil {
			log.Error("backup failed", "err", err.Error())
		}
	}()

	recips, fps, err := backupRecipients(o)
	if err != nil {
		return err
	}
	tgt, err := resolveBackupTarget(o, stdout)
	if err != nil {
		return err
	}
	if err := checkTmpDir(o.tmpDir, tgt.dir); err != nil {
		return err
	}
	if tgt.dir != "" {
		unlock, err := fsx.Lock(tgt.dir)
		if err != nil {
			return fmt.Errorf("%s is locked: %w", tgt.dir, err)
		}
		defer unlock()
		// Under the lock nothing else writes here: every temp file is a
		// killed run's partial archive.
		removed, err := sweepBackupTemps(tgt.dir, false)
		for _, p := range removed {
			log.Info("removed a killed run's partial archive", "path", p)
		}
		if err != nil {
			log.Warn("sweep partial archives", "err", err.Error())
		}
		// Staging dirs of etcdsafe versions that spooled plaintext into
		// the backup dir.
		removed, err = fsx.SweepStaging(tgt.dir, legacyStagingPrefix)
		for _, p := range removed {
			log.Info("removed a killed run's snapshot staging dir", "path", p)
		}
		if err != nil {
			log.Warn("sweep snapshot staging dirs", "dir", tgt.dir, "err", err.Error())
		}
	}
	removed, err := fsx.SweepStaging(o.tmpDir, stagingPrefix)
	for _, p := range removed {
		log.Info("removed a killed run's snapshot staging dir", "path", p)
	}
	if err != nil {
		log.Warn("sweep snapshot staging dirs", "dir", o.tmpDir, "err", err.Error())
	}

	// The kube dir is checked before the snapshot is taken: one that
	// cannot be archived fails now, not after minutes of work on etcd.
	kd, err := backupKubeDir(cmd, o, log)
	if err != nil {
		return err
	}
	if kd != "" {
		t0 := time.Now()
		st, err := archive.CheckDir(kd, o.excludes)
		if err != nil {
			return fmt.Errorf("kube dir: %w", err)
		}
		log.Info("kube dir checked", "path", kd, "entries", st.Entries, "files", st.Files, "bytes", st.Bytes,
			"duration", time.Since(t0).Round(time.Millisecond).String())
	}

	src, err := openBackupSource(ctx, o, log)
	if err != nil {
		return err
	}
	defer src.close()

	host, _ := os.Hostname()
	m := archive.Manifest{
		Tool: "etcdsafe", ToolVersion: version, Created: start.UTC().Truncate(time.Second), Host: host,
		Endpoint: src.endpoint, MemberID: src.memberID, ClusterID: src.clusterID,
		EtcdVersion: src.etcdVersion, Revision: src.revision,
	}
	name := tgt.file
	if name == "" && !tgt.stdout {
		if name, err = freeBackupName(tgt.dir, backupFileName(o.cluster, host, m.Created, o.insecure)); err != nil {
			return err
		}
	}

	// The archive: temp file beside the target (or stdout), hashed and
	// counted on the way.
	var af *fsx.AtomicFile
	var sink io.Writer
	if tgt.stdout {
		sink = stdout
	} else {
		af, err = fsx.Create(filepath.Join(tgt.dir, name), 0o600)
		if err != nil {
			return fmt.Errorf("create archive: %w", err)
		}
		af.NoReplace = true
		defer af.Abort()
		sink = af
	}
	hw := &hashCounter{w: sink, h: sha256.New(), hook: testOnlyAfterArchiveWrite}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		hw.progress = &byteProgress{w: stderr, start: time.Now(), total: src.size}
	}
	w, err := archive.NewWriter(hw, archive.WriterOptions{
		Recipients: recips, Insecure: o.insecure, Manifest: m, Context: ctx, Level: compressionLevels[o.compression],
		OnSkip: func(p string, reason error) { log.Warn("not archived", "path", p, "reason", reason.Error()) },
	})
	if err != nil {
		return fmt.Errorf("start archive: %w", err)
	}
	if err := w.AddSnapshotCRC(src.reader, src.size, src.sha256, src.crc32c); err != nil {
		return fmt.Errorf("add snapshot: %w", err)
	}
	if kd != "" {
		if err := w.AddDir(kd, o.excludes); err != nil {
			return fmt.Errorf("add kube dir %s: %w", kd, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	hw.finish()
	if err := ctx.Err(); err != nil {
		return err
	}
	wm := w.Manifest()
	var content int64
	for _, e := range wm.Entries {
		content += e.Size
	}
	sc := &archive.Sidecar{
		Version: archive.SidecarVersion, Archive: name, FormatVersion: wm.FormatVersion,
		Created: wm.Created, Host: host, Cluster: o.cluster, Source: src.endpoint,
		Revision: wm.Revision, EtcdVersion: wm.EtcdVersion, DBSize: wm.DBSize, ContentBytes: content,
		Entries: len(wm.Entries), ArchiveSize: hw.n, ArchiveSHA256: hex.EncodeToString(hw.h.Sum(nil)),
		Encrypted: !o.insecure, Recipients: fps,
	}
	res = &backupResult{Archive: name, Sidecar: sc}
	if tgt.stdout {
		res.Duration = time.Since(start)
		log.Info("backup written to stdout", "bytes", hw.n, "sha256", sc.ArchiveSHA256, "revision", sc.Revision, "duration", res.Duration.Round(time.Millisecond).String())
		return nil
	}
	af.ExpectSize = hw.n
	if err := af.Commit(); err != nil {
		return fmt.Errorf("commit archive: %w", err)
	}
	final := filepath.Join(tgt.dir, name)
	b, err := sc.Marshal()
	if err != nil {
		return err
	}
	if err := fsx.WriteFileAtomic(archive.SidecarPath(final), b, 0o600); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	res.Duration = time.Since(start)
	log.Info("backup written", "archive", final, "bytes", hw.n, "snapshot_bytes", sc.DBSize,
		"revision", sc.Revision, "entries", sc.Entries, "duration", res.Duration.Round(time.Millisecond).String())
	fmt.Fprintln(stdout, final)

	if !o.keep.Empty() {
		// Only this master's series (cluster, host), and never the archive
		// just written, whatever the other sidecars' dates say.
		group := archive.DefaultGroupBy.Key(o.cluster, host)
		pr, err := pruneBackups(tgt.dir, o.keep, false, pruneScope{groupBy: archive.DefaultGroupBy, only: group, current: name})
		for _, u := range pr.unmanaged {
			log.Warn("archive without a readable sidecar kept", "archive", u)
		}
		for _, f := range pr.future {
			log.Warn("sidecar dated in the future (clock skew?)", "archive", f)
		}
		if len(pr.removed) > 0 || err != nil {
			log.Info("pruned", "policy", o.keep.String(), "group", group, "removed", strings.Join(pr.removed, ","))
		}
		if err != nil {
			return fmt.Errorf("prune after backup: %w", err)
		}
	}
	return nil
}

// backupRecipients parses -r, -R and the passphrase; fps are the
// fingerprints recorded in the sidecar.
func backupRecipients(o *backupOptions) (recips []age.Recipient, fps []string, err error) {
	if o.insecure {
		return nil, nil, nil
	}
	lines := append([]string(nil), o.recipients...)
	for _, f := range o.recipFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read recipients file: %w", err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	if len(lines) > 0 {
		recips, err = archive.ParseRecipients(lines)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("recipients: %w", err)}
		}
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				fps = append(fps, archive.RecipientFingerprint(l))
			}
		}
		return recips, fps, nil
	}
	pass, err := readPassphrase(o.passFile, true)
	if err != nil {
		return nil, nil, err
	}
	r, err := archive.PassphraseRecipient(pass)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return []age.Recipient{r}, []string{archive.RecipientFingerprint("")}, nil
}

// readPassphrase reads a passphrase from file (first line) or, when file
// is empty, from ETCDSAFE_PASSPHRASE; file "tty" prompts on the terminal
// (twice when confirm is set, as for a new backup). Never from a flag value.
func readPassphrase(file string, confirm bool) ([]byte, error) {
	if file == "tty" {
		return promptPassphrase(confirm)
	}
	if file == "" {
		if v := os.Getenv("ETCDSAFE_PASSPHRASE"); v != "" {
			return []byte(v), nil
		}
		return nil, usagef("no passphrase: use --passphrase-file FILE, --passphrase-file tty or ETCDSAFE_PASSPHRASE")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	switch {
	case line == "" && strings.TrimSpace(rest) != "":
		// Never guess which later line was meant: the passphrase is the
		// first line, and a wrong guess would encrypt to a passphrase
		// nobody knows.
		return nil, usagef("the first line of passphrase file %s is blank: the passphrase must be on the first line", file)
	case line == "":
		return nil, usagef("passphrase file %s is empty", file)
	}
	return []byte(line), nil
}

// testOnlyPrompt replaces the terminal in tests.
var testOnlyPrompt func(prompt string) ([]byte, error)

// promptPassphrase asks on the controlling terminal, without echo.
func promptPassphrase(confirm bool) ([]byte, error) {
	ask := testOnlyPrompt
	if ask == nil {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, usagef("--passphrase-file tty needs a terminal: %v", err)
		}
		defer tty.Close()
		ask = func(prompt string) ([]byte, error) {
			fmt.Fprint(tty, prompt)
			b, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			return b, err
		}
	}
	pass, err := ask("Passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, usagef("empty passphrase")
	}
	if confirm {
		again, err := ask("Passphrase again: ")
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if string(again) != string(pass) {
			return nil, usagef("the passphrases differ")
		}
	}
	return pass, nil
}

type backupTarget struct {
	stdout bool
	dir    string // directory to lock and write in
	file   string // fixed base name, or "" to generate one
}

func resolveBackupTarget(o *backupOptions, stdout io.Writer) (backupTarget, error) {
	if o.out == "-" {
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return backupTarget{}, usagef("refusing to write a binary archive to a terminal; redirect stdout or use --out DIR")
		}
		return backupTarget{stdout: true}, nil
	}
	st, err := os.Stat(o.out)
	switch {
	case err == nil && st.IsDir():
		return backupTarget{dir: o.out}, nil
	case err == nil:
		return backupTarget{}, fmt.Errorf("output %s already exists: %w", o.out, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return backupTarget{}, fmt.Errorf("output: %w", err)
	}
	// A new FILE must look like an archive: a nightly job whose --out DIR
	// was never created would otherwise write one file named DIR, which
	// list and prune then never see.
	if base := filepath.Base(o.out); !strings.Contains(base, ".tar") && !strings.HasSuffix(base, ".age") && !strings.HasSuffix(base, ".zst") {
		return backupTarget{}, usagef("--out %s does not exist: create the directory, or name a new file ending in .tar.zst.age", o.out)
	}
	dir := filepath.Dir(o.out)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return backupTarget{}, fmt.Errorf("output directory %s does not exist: %w", dir, fs.ErrNotExist)
	}
	return backupTarget{dir: dir, file: filepath.Base(o.out)}, nil
}

// Staging dir name prefixes: the live snapshot's spool dir under --tmp-dir,
// and the one older versions made inside the backup dir.
const (
	stagingPrefix       = "etcdsafe-backup-"
	legacyStagingPrefix = ".etcdsafe-snapshot-"
)

// checkTmpDir refuses a --tmp-dir inside the output directory, which is
// often synced off the host.
func checkTmpDir(tmpDir, outDir string) error {
	if tmpDir == "" || outDir == "" {
		return nil
	}
	if inside, err := fsx.Within(tmpDir, outDir); err != nil {
		return fmt.Errorf("--tmp-dir: %w", err)
	} else if inside {
		return usagef("--tmp-dir %s is inside the output directory %s: put it outside any backup directory", tmpDir, outDir)
	}
	return nil
}

// sweepBackupTemps removes (or with dryRun only lists) the partial
// archives and sidecars killed runs left in dir. The caller holds dir's
// lock.
func sweepBackupTemps(dir string, dryRun bool) ([]string, error) {
	match := func(base string) bool {
		return isArchiveName(base) || isArchiveName(strings.TrimSuffix(base, archive.SidecarSuffix))
	}
	if !dryRun {
		return fsx.SweepTemps(dir, match)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read backup directory: %w", err)
	}
	var out []string
	for _, de := range des {
		if base, ok := fsx.TempBase(de.Name()); ok && de.Type().IsRegular() && match(base) {
			out = append(out, filepath.Join(dir, de.Name()))
		}
	}
	return out, nil
}

// freeBackupName returns name, or when it (or its sidecar) exists in dir,
// the first free name with "_NN" after the time (a second backup within
// the same second). "_" sorts after the "." that follows the time, so
// list and prune still order the later backup first. The caller holds the
// directory lock, so the name stays free until it is committed.
func freeBackupName(dir, name string) (string, error) {
	stem, ext := name, ""
	for _, e := range []string{".tar.zst.age", ".tar.zst"} {
		if strings.HasSuffix(name, e) {
			stem, ext = strings.TrimSuffix(name, e), e
			break
		}
	}
	for i := 1; i < 100; i++ {
		n := name
		if i > 1 {
			n = fmt.Sprintf("%s_%02d%s", stem, i, ext)
		}
		if !pathExists(filepath.Join(dir, n)) && !pathExists(archive.SidecarPath(filepath.Join(dir, n))) {
			return n, nil
		}
	}
	return "", fmt.Errorf("99 backups named %s* already exist in %s: %w", stem, dir, fs.ErrExist)
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// backupFileName is <cluster or host>-<UTC time>.tar.zst.age.
func backupFileName(cluster, host string, t time.Time, insecure bool) string {
	base := cluster
	if base == "" {
		base = host
	}
	base = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, base)
	if base == "" || base == "." || base == ".." {
		base = "etcd"
	}
	ext := ".tar.zst.age"
	if insecure {
		ext = ".tar.zst"
	}
	return base + "-" + t.UTC().Format("20060102T150405Z") + ext
}

// backupKubeDir returns the kube dir to archive, or "" for none. The
// default is skipped with a warning when missing; an explicit one must
// exist.
func backupKubeDir(cmd *cobra.Command, o *backupOptions, log *slog.Logger) (string, error) {
	if o.kubeDir == "" {
		return "", nil
	}
	st, err := os.Stat(o.kubeDir)
	switch {
	case err == nil && st.IsDir():
		return o.kubeDir, nil
	case err == nil:
		return "", usagef("--kube-dir %s is not a directory", o.kubeDir)
	case errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("kube-dir"):
		log.Warn("no kube dir; archiving the snapshot only", "path", o.kubeDir)
		return "", nil
	}
	return "", fmt.Errorf("kube dir: %w", err)
}

// backupSource is a snapshot ready to be archived.
type backupSource struct {
	reader      io.Reader // the whole snapshot, read once more by the archive writer
	size        int64
	sha256      string
	crc32c      uint32 // of the whole file, from the same read as sha256
	endpoint    string
	memberID    string
	clusterID   string
	etcdVersion string
	revision    int64
	cleanup     []func()
}

func (s *backupSource) close() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

func openBackupSource(ctx context.Context, o *backupOptions, log *slog.Logger) (_ *backupSource, err error) {
	src := &backupSource{}
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	switch {
	case o.fromDB != "" || o.fromDataDir != "":
		p := o.fromDB
		if p == "" {
			p, err = inspect.ResolveDBPath(o.fromDataDir)
			if err != nil {
				return nil, err
			}
		}
		// Hold bbolt's shared lock while archiving: a running etcd holds
		// it exclusively (so we refuse), and etcd cannot start and change
		// the file under us.
		db, rev, err := openDBForBackup(p)
		if err != nil {
			return nil, err
		}
		src.cleanup = append(src.cleanup, func() { _ = db.Close() })
		size, whole, crc, trailer, err := hashSnapshotFile(p)
		if err != nil {
			return nil, err
		}
		if trailer == snapshot.TrailerMismatch {
			return nil, fmt.Errorf("%s: %w", p, snapshot.ErrTrailerMismatch)
		}
		if trailer == snapshot.TrailerNone {
			// No checksum vouches for a raw db: bbolt's page check must,
			// or a zeroed page would be archived as a good backup.
			t0 := time.Now()
			if err := db.Check(ctx); err != nil {
				return nil, fmt.Errorf("check %s before backup: %w", p, err)
			}
			log.Info("page check passed", "path", p, "duration", time.Since(t0).Round(time.Millisecond).String())
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open snapshot: %w", err)
		}
		src.cleanup = append(src.cleanup, func() { _ = f.Close() })
		src.reader, src.size, src.sha256, src.crc32c, src.revision = f, size, whole, crc, rev
		src.endpoint = "file://" + absPath(p)
		log.Info("snapshot from file", "path", p, "bytes", size, "revision", rev, "trailer", trailer.String())
		return src, nil
	}

	c, ep, status, err := connectEtcd(ctx, o)
	if err != nil {
		return nil, err
	}
	src.cleanup = append(src.cleanup, func() { _ = c.Close() })
	stage, err := fsx.NewStaging(o.tmpDir, stagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("create snapshot staging dir: %w", err)
	}
	src.cleanup = append(src.cleanup, func() { _ = stage.Remove() })
	t0 := time.Now()
	spool, err := snapshot.SaveSpool(ctx, c, stage.Path)
	if err != nil {
		return nil, fmt.Errorf("snapshot from %s: %w", ep, err)
	}
	src.cleanup = append(src.cleanup, func() { _ = spool.Close() })
	if testOnlyAfterSpool != nil {
		testOnlyAfterSpool()
	}
	info := spool.Info
	rev, err := snapshot.NewestRevision(spool, info.Size)
	if err != nil {
		return nil, fmt.Errorf("snapshot from %s: %w: %w", ep, inspect.ErrNotSnapshot, err)
	}
	src.reader, src.size, src.sha256, src.crc32c, src.revision = spool.NewReader(), info.Size, info.FileSHA256, info.FileCRC32C, rev
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
	return src, nil
}

// connectEtcd returns a client for the first endpoint that answers.
func connectEtcd(ctx context.Context, o *backupOptions) (*clientv3.Client, string, *clientv3.StatusResponse, error) {
	var errs []error
	for _, ep := range strings.Split(o.endpoints, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		cfg := clientv3.Config{Endpoints: []string{ep}, DialTimeout: o.dialTimeout, Logger: zap.NewNop(), Context: ctx}
		if strings.HasPrefix(ep, "https://") {
			for _, f := range []string{o.cacert, o.cert, o.key} {
				if _, err := os.Stat(f); err != nil {
					return nil, "", nil, fmt.Errorf("etcd client certificate files: %w", err)
				}
			}
			tlsCfg, err := transport.TLSInfo{CertFile: o.cert, KeyFile: o.key, TrustedCAFile: o.cacert}.ClientConfig()
			if err != nil {
				return nil, "", nil, fmt.Errorf("load etcd client certificates: %w", err)
			}
			cfg.TLS = tlsCfg
		}
		c, err := clientv3.New(cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, o.dialTimeout)
		st, err := c.Status(sctx, ep)
		cancel()
		if err != nil {
			_ = c.Close()
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		return c, ep, st, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, "", nil, err
	}
	if len(errs) == 0 {
		return nil, "", nil, usagef("no etcd endpoint given")
	}
	return nil, "", nil, fmt.Errorf("no etcd endpoint answered: %w", errors.Join(errs...))
}

// openDBForBackup opens p read-only (bbolt's shared lock held until the
// snapshot is closed) and returns its newest revision. A db a running etcd
// holds gives inspect.ErrLocked; a damaged or foreign file an integrity
// error.
func openDBForBackup(p string) (*inspect.Snapshot, int64, error) {
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

// hashSnapshotFile reads p once, returning its size, whole-file SHA-256,
// whole-file CRC-32C and trailer status.
func hashSnapshotFile(p string) (int64, string, uint32, snapshot.TrailerStatus, error) {
	fail := func(err error) (int64, string, uint32, snapshot.TrailerStatus, error) {
		return 0, "", 0, snapshot.TrailerNone, err
	}
	f, err := os.Open(p)
	if err != nil {
		return fail(fmt.Errorf("open snapshot: %w", err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("stat snapshot: %w", err))
	}
	// One hasher, one pass: the trailer is the SHA-256 of the body, and the
	// whole file's SHA-256 goes on from that same state (Sum does not
	// change it). This pass is on the critical path: the manifest needs the
	// hash before anything streams. The CRC-32C rides along (~10x cheaper
	// than SHA-256): the archive writer checks the second read against it.
	h := sha256.New()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	hasTrailer := snapshot.HasTrailerSize(st.Size())
	bodyLen := st.Size()
	if hasTrailer {
		bodyLen -= snapshot.TrailerSize
	}
	n, err := io.CopyBuffer(io.MultiWriter(h, crc), io.NewSectionReader(f, 0, bodyLen), make([]byte, 1<<20))
	if err != nil {
		return fail(fmt.Errorf("read snapshot %s: %w", p, err))
	}
	if n != bodyLen {
		return fail(fmt.Errorf("snapshot %s changed size while read: %w", p, io.ErrUnexpectedEOF))
	}
	status := snapshot.TrailerNone
	if hasTrailer {
		bodySum := h.Sum(nil)
		trailer := make([]byte, snapshot.TrailerSize)
		if _, err := f.ReadAt(trailer, bodyLen); err != nil {
			return fail(fmt.Errorf("read trailer of %s: %w", p, err))
		}
		h.Write(trailer)
		crc.Write(trailer)
		n += snapshot.TrailerSize
		status = snapshot.TrailerValid
		if !bytes.Equal(trailer, bodySum) {
			status = snapshot.TrailerMismatch
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), crc.Sum32(), status, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// hashCounter hashes and counts what passes to w, and drives the progress
// display and the test hook.
type hashCounter struct {
	w        io.Writer
	h        hash.Hash
	n        int64
	hook     func(int64)
	progress *byteProgress
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.progress != nil {
		c.progress.update(c.n)
	}
	if c.hook != nil {
		c.hook(c.n)
	}
	return n, err
}

func (c *hashCounter) finish() {
	if c.progress != nil {
		c.progress.done(c.n)
	}
}

// byteProgress redraws one status line on a terminal, at most twice a
// second. total is the snapshot size, a rough upper bound of the output.
type byteProgress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	total int64
}

func (p *byteProgress) update(n int64) {
	now := time.Now()
	if now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(n) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\033[Kwritten %s (snapshot %s) %s/s", humanBytes(n), humanBytes(p.total), humanBytes(int64(rate)))
}

func (p *byteProgress) done(n int64) {
	fmt.Fprintf(p.w, "\r\033[Kwritten %s in %s\n", humanBytes(n), time.Since(p.start).Round(time.Millisecond))
}

// Metric names written by --metrics-file (Prometheus textfile collector).
const (
	metricLastSuccess  = "etcdsafe_backup_last_success_timestamp_seconds"
	metricDuration     = "etcdsafe_backup_last_duration_seconds"
	metricArchiveBytes = "etcdsafe_backup_last_archive_bytes"
	metricDBBytes      = "etcdsafe_backup_last_snapshot_bytes"
	metricRevision     = "etcdsafe_backup_last_revision"
	metricLastRun      = "etcdsafe_backup_last_run_timestamp_seconds"
	metricLastRunOK    = "etcdsafe_backup_last_run_success"
	metricFailures     = "etcdsafe_backup_failures_total"
)

var backupMetrics = []struct{ name, typ, help string }{
	{metricLastSuccess, "gauge", "Unix time the last successful backup finished."},
	{metricDuration, "gauge", "Duration of the last successful backup in seconds."},
	{metricArchiveBytes, "gauge", "Size of the last successful backup archive in bytes."},
	{metricDBBytes, "gauge", "Size of the etcd snapshot in the last successful backup in bytes."},
	{metricRevision, "gauge", "etcd revision of the last successful backup."},
	{metricLastRun, "gauge", "Unix time the last backup run ended, successful or not."},
	{metricLastRunOK, "gauge", "1 if the last backup run succeeded, else 0."},
	{metricFailures, "counter", "Failed backup runs, counted across runs through this file."},
}

// writeBackupMetrics rewrites path atomically. The values of the last
// success and the failure counter are carried over from the previous file,
// so a failed night keeps showing when the last good backup was.
func writeBackupMetrics(path string, start time.Time, res *backupResult, runErr error) error {
	prev := readMetricsFile(path)
	now := time.Now()
	vals := map[string]float64{}
	for _, k := range []string{metricLastSuccess, metricDuration, metricArchiveBytes, metricDBBytes, metricRevision, metricFailures} {
		vals[k] = prev[k]
	}
	vals[metricLastRun] = float64(now.Unix())
	if runErr == nil && res != nil {
		vals[metricLastSuccess] = float64(now.Unix())
		vals[metricDuration] = res.Duration.Seconds()
		vals[metricArchiveBytes] = float64(res.Sidecar.ArchiveSize)
		vals[metricDBBytes] = float64(res.Sidecar.DBSize)
		vals[metricRevision] = float64(res.Sidecar.Revision)
		vals[metricLastRunOK] = 1
	} else {
		vals[metricFailures]++
		vals[metricLastRunOK] = 0
	}
	var b strings.Builder
	for _, m := range backupMetrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.name, m.help, m.name, m.typ, m.name,
			formatMetric(vals[m.name]))
	}
	// 0644: the node exporter usually runs as another user; nothing secret here.
	if err := fsx.WriteFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

func formatMetric(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

// readMetricsFile parses "name value" lines of a previous metrics file;
// a missing or unreadable file yields an empty map.
func readMetricsFile(path string) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 1<<20 {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(f[1], "%g", &v); err == nil {
			out[f[0]] = v
		}
	}
	return out
}
