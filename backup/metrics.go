package backup

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
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

var metrics = []struct {
	name string
	typ  dto.MetricType
	help string
}{
	{MetricLastSuccess, dto.MetricType_GAUGE, "Unix time the last successful backup finished."},
	{MetricDuration, dto.MetricType_GAUGE, "Duration of the last successful backup in seconds."},
	{MetricArchiveBytes, dto.MetricType_GAUGE, "Size of the last successful backup archive in bytes."},
	{MetricDBBytes, dto.MetricType_GAUGE, "Size of the etcd snapshot in the last successful backup in bytes."},
	{MetricRevision, dto.MetricType_GAUGE, "etcd revision of the last successful backup."},
	{MetricLastRun, dto.MetricType_GAUGE, "Unix time the last backup run ended, successful or not."},
	{MetricLastRunOK, dto.MetricType_GAUGE, "1 if the last backup run succeeded, else 0."},
	{MetricFailures, dto.MetricType_COUNTER, "Failed backup runs, counted across runs through this file."},
	{MetricOutputsFailed, dto.MetricType_GAUGE, "Outputs of the last run that did not get its archive while another output did (0 when it went everywhere or nowhere: see last_run_success)."},
}

// maxMetricsFile bounds the previous metrics file read back.
const maxMetricsFile = 1 << 20

// WriteMetrics rewrites the metrics file at path atomically (mode 0644:
// the node exporter often runs as another user; nothing secret is in it),
// for a run that ended at now with res and runErr (a failure when runErr
// is not nil or res is nil). The last success's values and the failure
// counter are carried over from the previous file, so a failed night keeps
// showing when the last good backup was. With several outputs, one that
// failed while another took the archive makes the run a failure, and is
// counted in [MetricOutputsFailed].
func WriteMetrics(path string, res *Result, runErr error, now time.Time) error {
	prev := readMetrics(path)
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
	var b bytes.Buffer
	for _, m := range metrics {
		mf := &dto.MetricFamily{Name: &m.name, Help: &m.help, Type: m.typ.Enum()}
		v := vals[m.name]
		if m.typ == dto.MetricType_COUNTER {
			mf.Metric = []*dto.Metric{{Counter: &dto.Counter{Value: &v}}}
		} else {
			mf.Metric = []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	if err := fsx.WriteFileAtomic(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// readMetrics returns the values of a previous metrics file: what the
// parser read before any error; a missing or oversized file yields none.
func readMetrics(path string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetricsFile+1))
	if err != nil || len(b) > maxMetricsFile {
		return out
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, _ := p.TextToMetricFamilies(bytes.NewReader(b))
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Untyped != nil:
				out[name] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}
