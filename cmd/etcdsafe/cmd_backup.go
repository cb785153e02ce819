package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
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
	dialTimeout                         time.Duration
	fromDB, fromDataDir                 string // offline sources
	kubeDir                             string
	excludes, recipients, recipFiles    []string
	passFile                            string
	insecure                            bool
	out, cluster, tmpDir                string
	keep                                archive.RetentionPolicy
	metricsFile, logFormat, compression string
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
	if _, ok := backup.CompressionLevels[o.compression]; !ok {
		return usagef("--compression must be fastest, default, better or best")
	}
	if err := o.validateRecipients(); err != nil {
		return err
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

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// runBackup wires the flags to backup.Run, prints the archive's path and
// writes the metrics file of every run that got past validation.
func runBackup(cmd *cobra.Command, o *backupOptions, stdout, stderr io.Writer) (err error) {
	log := newLogger(o.logFormat, stderr)
	var res *backup.Result
	defer func() {
		if err != nil {
			log.Error("backup failed", "err", err.Error())
		}
		if o.metricsFile == "" {
			return
		}
		if merr := backup.WriteMetrics(o.metricsFile, res, err, time.Now()); merr != nil {
			log.Error("write metrics file", "path", o.metricsFile, "err", merr)
			if err == nil {
				err = merr
			}
		}
	}()
	bo, err := o.backupOptions(cmd, stdout, stderr, log)
	if err != nil {
		return err
	}
	res, err = backup.Run(cmd.Context(), bo)
	if res != nil && res.Where != "" {
		fmt.Fprintln(stdout, res.Where)
	}
	return err
}

// backupOptions builds the library's options from the flags: recipients
// (or the passphrase), the target (--out) and the source.
func (o *backupOptions) backupOptions(cmd *cobra.Command, stdout, stderr io.Writer, log *slog.Logger) (backup.Options, error) {
	recips, fps, err := backupRecipients(o)
	if err != nil {
		return backup.Options{}, err
	}
	bo := backup.Options{
		DB: o.fromDB, DataDir: o.fromDataDir, Endpoints: strings.Split(o.endpoints, ","), DialTimeout: o.dialTimeout,
		TLS:     backup.TLSFiles{CACert: o.cacert, Cert: o.cert, Key: o.key},
		KubeDir: o.kubeDir, KubeDirOptional: !cmd.Flags().Changed("kube-dir"), Excludes: o.excludes,
		Recipients: recips, Fingerprints: fps, Insecure: o.insecure,
		Cluster: o.cluster, Keep: o.keep, GroupBy: archive.DefaultGroupBy, Level: backup.CompressionLevels[o.compression],
		TmpDir: o.tmpDir, ToolVersion: version, Now: testOnlyNow, Logger: log, Progress: newBackupProgress(stderr),
	}
	if o.out != "-" {
		l, name, err := backup.OpenLocal(o.out)
		if err != nil {
			return bo, err
		}
		bo.Outputs = []backup.Output{{Target: l, Name: name}}
		return bo, nil
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return bo, usagef("refusing to write a binary archive to a terminal; redirect stdout or use --out DIR")
	}
	bo.Stdout = stdout
	return bo, nil
}
