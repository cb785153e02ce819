package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"

	"github.com/etcdsafe/etcdsafe/internal/testfix"
)

// TestWriteMetrics: a success records the run's figures; failures add to
// a counter carried across runs and keep the last success; a recovery
// resets the run status but not the counter; the file is 0644.
func TestWriteMetrics(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.prom")
	t0 := time.Unix(1767225600, 0)
	ok := &Result{Duration: 1500 * time.Millisecond, Sidecar: &archive.Sidecar{ArchiveSize: 1 << 20, DBSize: 303136, Revision: 231}}
	if err := WriteMetrics(path, ok, nil, t0); err != nil {
		t.Fatal(err)
	}
	m := testfix.ParseMetrics(t, path)
	want := map[string]float64{MetricLastSuccess: 1767225600, MetricDuration: 1.5, MetricArchiveBytes: 1 << 20, MetricDBBytes: 303136,
		MetricRevision: 231, MetricLastRun: 1767225600, MetricLastRunOK: 1, MetricFailures: 0, MetricOutputsFailed: 0}
	if len(m) != len(want) {
		t.Fatalf("metrics %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for i := 1; i <= 2; i++ {
		at := t0.Add(time.Duration(i) * time.Hour)
		if err := WriteMetrics(path, nil, errors.New("failed"), at); err != nil {
			t.Fatal(err)
		}
		m := testfix.ParseMetrics(t, path)
		if m[MetricFailures] != float64(i) || m[MetricLastRunOK] != 0 || m[MetricLastSuccess] != 1767225600 ||
			m[MetricRevision] != 231 || m[MetricLastRun] != float64(at.Unix()) {
			t.Fatalf("after failure %d: %v", i, m)
		}
	}
	// A run that wrote its archive but failed later (prune), or on one
	// of its outputs, is a failure; the outputs without the archive are
	// counted.
	partial := *ok
	partial.Outputs = []OutputResult{{Archive: "a"}, {Err: errors.New("s3 down")}, {Archive: "a", Err: errors.New("prune failed")}}
	if err := WriteMetrics(path, &partial, errors.New("prune failed"), t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := testfix.ParseMetrics(t, path); m[MetricFailures] != 3 || m[MetricLastSuccess] != 1767225600 || m[MetricOutputsFailed] != 1 {
		t.Fatalf("after a late failure: %v", m)
	}
	if err := WriteMetrics(path, ok, nil, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := testfix.ParseMetrics(t, path); m[MetricFailures] != 3 || m[MetricLastRunOK] != 1 || m[MetricLastSuccess] != float64(t0.Add(4*time.Hour).Unix()) || m[MetricOutputsFailed] != 0 {
		t.Fatalf("after recovery: %v", m)
	}
	b, _ := os.ReadFile(path)
	for _, w := range []string{"# TYPE etcdsafe_backup_failures_total counter\netcdsafe_backup_failures_total 3\n",
		"# HELP etcdsafe_backup_last_success_timestamp_seconds "} {
		if !strings.Contains(string(b), w) {
			t.Errorf("file lacks %q:\n%s", w, b)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v %v", st, err)
	}
}

// TestWriteMetricsCarriesOver: the previous file is read with the text
// parser whatever wrote it (an older etcdsafe's integer format, a
// hand-edited file); a damaged tail keeps what precedes it, and an
// unreadable file counts as none.
func TestWriteMetricsCarriesOver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prev   string
		wantFailures float64
		wantRevision float64
	}{
		{"older etcdsafe", "# HELP etcdsafe_backup_failures_total x\n# TYPE etcdsafe_backup_failures_total counter\netcdsafe_backup_failures_total 4\n" +
			"# TYPE etcdsafe_backup_last_revision gauge\netcdsafe_backup_last_revision 1234\n", 5, 1234},
		{"untyped samples", "etcdsafe_backup_failures_total 2\netcdsafe_backup_last_revision 7\n", 3, 7},
		{"damaged tail", "etcdsafe_backup_failures_total 2\netcdsafe_backup_last_revision {{{\n", 3, 0},
		{"not metrics", "\x00\x01garbage", 1, 0},
		{"none", "", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.prom")
			if tc.prev != "" {
				if err := os.WriteFile(path, []byte(tc.prev), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteMetrics(path, nil, errors.New("x"), time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			m := testfix.ParseMetrics(t, path)
			if m[MetricFailures] != tc.wantFailures || m[MetricRevision] != tc.wantRevision {
				t.Fatalf("got %v", m)
			}
		})
	}
}
