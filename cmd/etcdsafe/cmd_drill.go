package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/drill"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

type drillOptions struct {
	src         sourceOptions
	output      string
	metricsFile string
	pageSize    int
}

func newDrillCmd() *cobra.Command {
	o := &drillOptions{}
	c := &cobra.Command{
		Use:   "drill SOURCE|DIR|s3://BUCKET/PREFIX/ [--metrics-file FILE] [-o json]",
		Short: "Prove a backup restores: restore it into a temp dir, start etcd on it, read every key back",
		Long: `Run a restore drill of SOURCE (a backup archive, local or s3://, a snapshot or a db), or
of the newest archive a backup published in a directory of backups or under an s3:// prefix
(its clusters' directories one level down included; it is named on stderr): the
restore a real one would run (a single member, --bump-revision 1000000000
--mark-compacted), into a private 0700 dir under --tmp-dir (default: the system temp dir;
it needs room for a copy of the db), then an embedded etcd started on it, listening on
loopback only (a unix socket for clients). Then:

  - every key is read back through an etcd client, in pages, and compared with the
    snapshot's newest record of it: the same keys, mod and create revisions, versions and
    values;
  - every object is decoded as 'get' decodes it (Secrets decrypted with --decryption-config,
    else the EncryptionConfiguration in the archive's kube dir); undecodable ones are counted;
  - the restored revision is the snapshot's plus the bump, and the archive's MANIFEST.json
    agrees with its snapshot (revision, size);
  - what would block a real restore is reported: alarms raised in the snapshot's cluster
    (NOSPACE, CORRUPT), a db not below the quota of the archived etcd manifest
    (--quota-backend-bytes; the drill then goes on with restore's --compact), KMS values
    whose plugin did not answer (a warning: counted, with the reason; values of a KMS v2
    plugin that answers, through the config's endpoint or --kms-socket, are decrypted);
  - a test key is written and deleted.

Nothing is left behind: the dir is removed when the drill ends, fails or is interrupted
(Ctrl-C), and one that a killed drill left is removed by the next. --metrics-file writes
etcdsafe_drill_last_run_timestamp_seconds, etcdsafe_drill_last_run_success,
etcdsafe_drill_last_success_timestamp_seconds (kept across failed runs) and
etcdsafe_drill_last_duration_seconds for the textfile collector, atomically; an
interrupted drill writes none.

A failed check or blocker exits 1; keys or values that differ from the snapshot, or a
damaged source, exit 3; a wrong key for the archive or for encrypted values exits 4.` + exitStatus(exitRead...),
		Example: `  etcdsafe drill /var/backups/etcd/prod-20261202T030000Z.tar.zst.age -i /root/etcd-backup.key \
      --metrics-file /var/lib/node_exporter/etcdsafe-drill.prom
  etcdsafe drill s3://backups/etcd/prod/m1/m1-20261202T030000Z.tar.zst.age -i key.txt -o json
  # the newest archive of a fleet (clusters one level down), as a weekly job runs it
  etcdsafe drill s3://backups/etcd/prod/ -i key.txt --metrics-file /var/lib/node_exporter/etcdsafe-drill.prom
  etcdsafe drill snapshot.db --decryption-config /etc/kubernetes/encryption-config.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.pageSize < 1 {
				return usagef("--page-size must be at least 1")
			}
			return runDrill(cmd, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.src.addFlags(c.Flags())
	addOutputFlag(c.Flags(), &o.output, "text", "json")
	c.Flags().StringVar(&o.metricsFile, "metrics-file", "", "write Prometheus textfile-collector metrics of the drill here (atomically)")
	c.Flags().IntVar(&o.pageSize, "page-size", drill.DefaultPageSize, "keys per range request to the restored etcd")
	return c
}

func runDrill(cmd *cobra.Command, o *drillOptions, path string, out, stderr io.Writer) error {
	rep, err := drillSource(cmd, path, &o.src, o.pageSize, o.metricsFile, stderr)
	if cmd.Context().Err() != nil && err != nil {
		return err // interrupted: no verdict to print
	}
	if rep != nil || err == nil {
		if o.output == "json" {
			v := struct {
				*drill.Report
				Error string `json:"error,omitempty"`
			}{Report: rep}
			if err != nil {
				v.Error = cleanMessage(err)
			}
			if perr := printJSON(out, v); perr != nil && err == nil {
				err = perr
			}
		} else {
			printDrill(out, rep)
		}
	}
	return err
}

// drillTarget is what to drill: path itself, or, for a directory of
// backups or an s3:// prefix (a fleet's clusters one level down
// included), the newest archive a backup published there, named on
// stderr (a weekly job's log says which archive it proved).
func drillTarget(ctx context.Context, so *sourceOptions, path string, stderr io.Writer) (string, error) {
	var entries []backup.Entry
	if s3store.IsURL(path) {
		_, prefix, err := s3store.ParseURL(path)
		if err != nil {
			return "", usageError{err}
		}
		base := prefix[strings.LastIndex(prefix, "/")+1:]
		if base != "" && backup.IsArchiveName(base) {
			return path, nil
		}
		fleet, err := listFleet(ctx, &so.s3, path)
		if err != nil {
			return "", err
		}
		for _, f := range fleet {
			entries = append(entries, f.Entry)
		}
		if len(entries) == 0 && base != "" {
			return path, nil // an object named otherwise (a snapshot)
		}
	} else {
		st, err := os.Stat(path)
		if err != nil || !st.IsDir() {
			return path, nil // opened, and its error reported, as any SOURCE
		}
		if _, err := inspect.ResolveDBPath(path); err == nil {
			return path, nil // a data dir
		}
		if entries, err = backup.List(ctx, store.NewLocal(path)); err != nil {
			return "", err
		}
	}
	e, ok := backup.Newest(entries)
	switch {
	case !ok && len(entries) == 0:
		return "", fmt.Errorf("no backup archive under %s", termtext.Clean(path))
	case !ok:
		return "", fmt.Errorf("no backup archive with a sidecar under %s (%d without one: copies, not published by a backup)", termtext.Clean(path), len(entries))
	}
	fmt.Fprintf(stderr, "etcdsafe: drill: the newest backup under %s: %s (taken %s, host %s, revision %d)\n",
		termtext.Clean(path), termtext.Clean(e.Name), e.Time.UTC().Format("2006-01-02 15:04:05 UTC"), orDash(termtext.Clean(e.Sidecar.Host)), e.Sidecar.Revision)
	return e.Where, nil
}

// drillSource opens path with the read commands' flags, drills it and
// writes the metrics file (unless interrupted). Progress goes to stderr
// when it is a terminal.
func drillSource(cmd *cobra.Command, path string, so *sourceOptions, pageSize int, metricsFile string, stderr io.Writer) (rep *drill.Report, err error) {
	ctx := cmd.Context()
	t0 := time.Now()
	defer func() {
		if metricsFile == "" || errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return
		}
		if merr := drill.WriteMetrics(metricsFile, time.Since(t0), err, time.Now()); merr != nil && err == nil {
			err = merr
		}
	}()
	// a prefix with no archive to drill fails the drill: the alert fires
	if path, err = drillTarget(ctx, so, path, stderr); err != nil {
		return nil, err
	}
	src, err := openSource(cmd, path, so)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	o := drill.Options{TmpDir: so.tmpDir, PageSize: pageSize, OnSweep: sweptPrinter(stderr)}
	if isTerminal(stderr) {
		o.OnStep = func(step string) { fmt.Fprintf(stderr, "etcdsafe: drill: %s\n", drillStepNames[step]) }
	}
	return drill.Run(ctx, src, o)
}

var drillStepNames = map[string]string{
	"index":   "listing the snapshot's keys",
	"restore": "restoring into a temp dir",
	"start":   "starting etcd on it",
	"read":    "reading every key back and decoding every object",
	"write":   "writing a test key",
}

// printDrill prints the report as text. Keys and names from the source
// go through termtext.Clean.
func printDrill(out io.Writer, r *drill.Report) {
	if r == nil {
		return
	}
	c := termtext.Clean
	w := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	verdict := "passed"
	if !r.OK {
		verdict = "FAILED"
	}
	w("restore drill of %s: %s in %.1fs", c(r.Source), verdict, r.Duration)
	if r.Kind != "" {
		w("  restored  %s at revision %d -> %d", r.Kind, r.Revision, r.RestoredRevision)
	}
	w("  keys      %d in the snapshot, %d read back: %d missing, %d extra, %d different", r.Keys, r.KeysRead, r.Missing, r.Extra, r.Different)
	w("  objects   %d decoded (%d Secrets, %d values encrypted at rest), %d undecodable, %d not decryptable, %d KMS, %d not objects",
		r.Objects, r.Secrets, r.Encrypted, r.Undecodable, r.KeyProblems, r.KMS, r.NotObjects)
	if r.Quota != 0 || r.DBSize != 0 {
		w("  db        %d bytes restored; quota %d bytes (%s)", r.DBSize, r.Quota, c(r.QuotaSource))
	}
	if len(r.Alarms) > 0 {
		w("  alarms    %s", c(strings.Join(r.Alarms, ", ")))
	}
	for _, ch := range r.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		w("  %s      %s: %s", mark, ch.Name, c(ch.Detail))
	}
	for _, b := range r.Blockers {
		kind := "blocker"
		if !b.Fatal {
			kind = "warning"
		}
		w("  %s   %s: %s", kind, b.Kind, c(b.Detail))
	}
	for _, s := range r.Samples {
		w("  key       %s", c(s))
	}
}

// drillMetricsFile is where backup --drill writes the drill's metrics:
// --drill-metrics-file, else beside --metrics-file as NAME-drill.prom (the
// textfile collector reads every *.prom of its dir), else nowhere.
func drillMetricsFile(explicit, backupMetrics string) string {
	if explicit != "" || backupMetrics == "" {
		return explicit
	}
	ext := filepath.Ext(backupMetrics)
	return strings.TrimSuffix(backupMetrics, ext) + "-drill" + ext
}
