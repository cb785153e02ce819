package drill

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
	MetricLastRun     = "etcdsafe_drill_last_run_timestamp_seconds"
	MetricLastRunOK   = "etcdsafe_drill_last_run_success"
	MetricLastSuccess = "etcdsafe_drill_last_success_timestamp_seconds"
	MetricDuration    = "etcdsafe_drill_last_duration_seconds"
)

var metrics = []struct{ name, help string }{
	{MetricLastRun, "Unix time the last restore drill ended, successful or not."},
	{MetricLastRunOK, "1 if the last restore drill passed, else 0."},
	{MetricLastSuccess, "Unix time the last successful restore drill ended (0: none yet)."},
	{MetricDuration, "Duration of the last restore drill in seconds, successful or not."},
}

// maxMetricsFile bounds the previous metrics file read back.
const maxMetricsFile = 1 << 20

// WriteMetrics rewrites the metrics file at path atomically (temp file,
// fsync, rename; mode 0644: the node exporter often runs as another user,
// and nothing secret is in it) for a drill that ended at now, taking
// duration, and passed when runErr is nil. The last success's time is
// carried over from the previous file, so a failed drill keeps showing
// when the last good one was. It may be retried.
func WriteMetrics(path string, duration time.Duration, runErr error, now time.Time) error {
	vals := map[string]float64{MetricLastSuccess: readMetric(path, MetricLastSuccess)}
	vals[MetricLastRun] = float64(now.Unix())
	vals[MetricDuration] = duration.Seconds()
	if runErr == nil {
		vals[MetricLastRunOK] = 1
		vals[MetricLastSuccess] = float64(now.Unix())
	}
	var b bytes.Buffer
	for _, m := range metrics {
		v := vals[m.name]
		mf := &dto.MetricFamily{Name: &m.name, Help: &m.help, Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return fmt.Errorf("write drill metrics: %w", err)
		}
	}
	if err := fsx.WriteFileAtomic(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write drill metrics: %w", err)
	}
	return nil
}

// readMetric returns the gauge name of a previous metrics file, 0 when
// the file is missing, oversized or does not hold it.
func readMetric(path, name string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetricsFile+1))
	if err != nil || len(b) > maxMetricsFile {
		return 0
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, _ := p.TextToMetricFamilies(bytes.NewReader(b))
	for _, m := range mfs[name].GetMetric() {
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return 0
}
