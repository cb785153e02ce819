package backup

import (
	"fmt"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/textfile"
)

// Metric names written by [WriteMetrics] (Prometheus textfile collector).
const (
	MetricLastSuccess   = "etcdsafe_backup_last_success_timestamp_seconds"
	MetricDuration      = "etcdsafe_backup_last_duration_seconds"
	MetricArchiveBytes  = "etcdsafe_backup_last_archive_bytes"
	MetricDBBytes       = "etcdsafe_backup_last_snapshot_bytes"
	MetricRevision      = "etcdsafe_backup_last_revision"
	MetricLastRun       = "etcdsafe_backup_last_run_timestamp_seconds"
	MetricLastRunOK     = "etcdsafe_backup_last_run_success"
	MetricFailures      = "etcdsafe_backup_failures_total"
	MetricOutputsFailed = "etcdsafe_backup_last_run_outputs_failed"
)

var metrics = []textfile.Metric{
	{Name: MetricLastSuccess, Help: "Unix time the last successful backup finished."},
	{Name: MetricDuration, Help: "Duration of the last successful backup in seconds."},
	{Name: MetricArchiveBytes, Help: "Size of the last successful backup archive in bytes."},
	{Name: MetricDBBytes, Help: "Size of the etcd snapshot in the last successful backup in bytes."},
	{Name: MetricRevision, Help: "etcd revision of the last successful backup."},
	{Name: MetricLastRun, Help: "Unix time the last backup run ended, successful or not."},
	{Name: MetricLastRunOK, Help: "1 if the last backup run succeeded, else 0."},
	{Name: MetricFailures, Help: "Failed backup runs, counted across runs through this file.", Counter: true},
	{Name: MetricOutputsFailed, Help: "Outputs of the last run that did not get its archive while another output did (0 when it went everywhere or nowhere: see last_run_success)."},
}

// WriteMetrics rewrites the metrics file at path atomically (mode 0644:
// the node exporter often runs as another user; nothing secret is in it),
// for a run that ended at now with res and runErr (a failure when runErr
// is not nil or res is nil). The last success's values and the failure
// counter are carried over from the previous file, so a failed night keeps
// showing when the last good backup was. With several outputs, one that
// failed while another took the archive makes the run a failure, and is
// counted in [MetricOutputsFailed].
func WriteMetrics(path string, res *Result, runErr error, now time.Time) error {
	prev := textfile.Read(path)
	vals := map[string]float64{}
	for _, k := range []string{MetricLastSuccess, MetricDuration, MetricArchiveBytes, MetricDBBytes, MetricRevision, MetricFailures} {
		vals[k] = prev[k]
	}
	vals[MetricLastRun] = float64(now.Unix())
	if res != nil {
		for _, o := range res.Outputs {
			if o.Archive == "" {
				vals[MetricOutputsFailed]++
			}
		}
	}
	if runErr == nil && res != nil {
		vals[MetricLastSuccess] = float64(now.Unix())
		vals[MetricDuration] = res.Duration.Seconds()
		vals[MetricArchiveBytes] = float64(res.Sidecar.ArchiveSize)
		vals[MetricDBBytes] = float64(res.Sidecar.DBSize)
		vals[MetricRevision] = float64(res.Sidecar.Revision)
		vals[MetricLastRunOK] = 1
	} else {
		vals[MetricFailures]++
		vals[MetricLastRunOK] = 0
	}
	if err := textfile.Write(path, metrics, vals); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}
