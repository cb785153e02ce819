package drill

import (
	"fmt"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/textfile"
)

// Metric names written by [WriteMetrics] (Prometheus textfile collector).
const (
	MetricLastRun     = "etcdsafe_drill_last_run_timestamp_seconds"
	MetricLastRunOK   = "etcdsafe_drill_last_run_success"
	MetricLastSuccess = "etcdsafe_drill_last_success_timestamp_seconds"
	MetricDuration    = "etcdsafe_drill_last_duration_seconds"
)

var metrics = []textfile.Metric{
	{Name: MetricLastRun, Help: "Unix time the last restore drill ended, successful or not."},
	{Name: MetricLastRunOK, Help: "1 if the last restore drill passed, else 0."},
	{Name: MetricLastSuccess, Help: "Unix time the last successful restore drill ended (0: none yet)."},
	{Name: MetricDuration, Help: "Duration of the last restore drill in seconds, successful or not."},
}

// WriteMetrics rewrites the metrics file at path atomically (temp file,
// fsync, rename; mode 0644: the node exporter often runs as another user,
// and nothing secret is in it) for a drill that ended at now, taking
// duration, and passed when runErr is nil. The last success's time is
// carried over from the previous file, so a failed drill keeps showing
// when the last good one was. It may be retried.
func WriteMetrics(path string, duration time.Duration, runErr error, now time.Time) error {
	vals := map[string]float64{MetricLastSuccess: textfile.Read(path)[MetricLastSuccess]}
	vals[MetricLastRun] = float64(now.Unix())
	vals[MetricDuration] = duration.Seconds()
	if runErr == nil {
		vals[MetricLastRunOK] = 1
		vals[MetricLastSuccess] = float64(now.Unix())
	}
	if err := textfile.Write(path, metrics, vals); err != nil {
		return fmt.Errorf("write drill metrics: %w", err)
	}
	return nil
}
