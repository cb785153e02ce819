// Package textfile reads and writes the small Prometheus text files the
// node exporter's textfile collector serves: backup's and drill's
// metrics, rewritten whole after each run with values carried over from
// the previous file.
package textfile

import (
	"bytes"
	"io"
	"os"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// MaxSize bounds a previous file read back.
const MaxSize = 1 << 20

// Metric is one sample-less family: its name, help and type (a gauge or
// a counter).
type Metric struct {
	Name, Help string
	Counter    bool
}

// Write rewrites path atomically (temp file, fsync, rename; mode 0644:
// the node exporter often runs as another user, and nothing secret is in
// it) with one sample per metric, its value from vals (0 when absent), in
// the order of metrics.
func Write(path string, metrics []Metric, vals map[string]float64) error {
	var b bytes.Buffer
	for _, m := range metrics {
		v := vals[m.Name]
		mf := &dto.MetricFamily{Name: &m.Name, Help: &m.Help, Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
		if m.Counter {
			mf.Type = dto.MetricType_COUNTER.Enum()
			mf.Metric = []*dto.Metric{{Counter: &dto.Counter{Value: &v}}}
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return err
		}
	}
	return fsx.WriteFileAtomic(path, b.Bytes(), 0o644)
}

// Read returns the values of the file at path: what the parser read
// before any error; a missing, unreadable or oversized file yields none.
func Read(path string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil || len(b) > MaxSize {
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
