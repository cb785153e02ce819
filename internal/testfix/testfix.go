// Package testfix builds fixtures that tests of several packages share.
// It is imported by tests only.
package testfix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// BigKubeDirSegment is a directory name JSON escapes 6-fold ("<" is
// \u003c): deep paths of it make a manifest large with few files.
var BigKubeDirSegment = strings.Repeat("<", 240)

// BigKubeDir makes DIR/kubernetes whose archive manifest passes the 16 MiB
// bound with about a thousand empty files, and returns it.
func BigKubeDir(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "kubernetes")
	deep := DeepDir(t, root)
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(deep, fmt.Sprintf("%s%04d", BigKubeDirSegment[:200], i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// DeepDir makes root/<segment>/... 13 levels deep and returns the deepest.
func DeepDir(t testing.TB, root string) string {
	t.Helper()
	deep := root
	for range 13 {
		deep = filepath.Join(deep, BigKubeDirSegment)
	}
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	return deep
}

// ParseMetrics reads a metrics file with Prometheus' own text parser (not
// the writer's code): every family must have HELP, be a counter when its
// name ends in _total and a gauge otherwise, and hold one sample. It
// returns the samples by name; a parse error fails the test.
func ParseMetrics(t testing.TB, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		want := dto.MetricType_GAUGE
		if strings.HasSuffix(name, "_total") {
			want = dto.MetricType_COUNTER
		}
		if mf.GetHelp() == "" || mf.GetType() != want || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: help %q type %v, %d samples", name, mf.GetHelp(), mf.GetType(), len(mf.GetMetric()))
			continue
		}
		m := mf.GetMetric()[0]
		out[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return out
}

// BboltSeesDamage is the reference for raw-db damage: whether inspect
// (bbolt) cannot open the db at p, cannot read its newest revision, or its
// page check finds problems.
func BboltSeesDamage(t testing.TB, p string) bool {
	t.Helper()
	s, err := inspect.Open(p, inspect.OpenOptions{})
	if err != nil {
		return true
	}
	defer s.Close()
	if _, err := s.Revision(); err != nil {
		return true
	}
	return s.Check(context.Background()) != nil
}

// ListNames returns the names in dir (sorted, as os.ReadDir gives them),
// for "nothing changed" checks.
func ListNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
