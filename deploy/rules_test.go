package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"go.yaml.in/yaml/v3"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/drill"
)

const (
	rulesFile          = "prometheus/etcdsafe.rules.yaml"
	prometheusRuleFile = "prometheus/prometheusrule.yaml"
)

var promParser = parser.NewParser(parser.Options{})

// parseRules parses a rule file's bytes with Prometheus' own parser, as
// Prometheus (and promtool check rules) does on load: unknown fields are
// errors, every expression and template is parsed.
func parseRules(t *testing.T, name string, b []byte) *rulefmt.RuleGroups {
	t.Helper()
	rgs, errs := rulefmt.Parse(b, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", name, errors.Join(errs...))
	}
	return rgs
}

// prometheusRuleGroups returns the spec.groups of the PrometheusRule as a
// rule file's bytes.
func prometheusRuleGroups(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups yaml.Node `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%s: %v", prometheusRuleFile, err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s", prometheusRuleFile, obj.APIVersion, obj.Kind)
	}
	out, err := yaml.Marshal(map[string]*yaml.Node{"groups": &obj.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// knownMetrics are the names etcdsafe writes: backup's (backup/metrics.go)
// and the drill's (drill/metrics.go).
var knownMetrics = []string{
	backup.MetricLastSuccess, backup.MetricDuration, backup.MetricArchiveBytes, backup.MetricDBBytes,
	backup.MetricRevision, backup.MetricLastRun, backup.MetricLastRunOK, backup.MetricFailures, backup.MetricOutputsFailed,
	drill.MetricLastRun, drill.MetricLastRunOK, drill.MetricLastSuccess, drill.MetricDuration,
}

// TestRulesParse: both files pass Prometheus' rule parser, hold the same
// groups, and name only metrics etcdsafe writes; the parser is strict
// enough to catch a broken copy.
func TestRulesParse(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	plain := parseRules(t, rulesFile, b)
	op := parseRules(t, prometheusRuleFile+" spec.groups", prometheusRuleGroups(t))
	if !reflect.DeepEqual(plain, op) {
		t.Fatalf("%s and %s hold different groups:\n%+v\n%+v", rulesFile, prometheusRuleFile, plain.Groups, op.Groups)
	}
	var alerts []string
	for _, g := range plain.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			expr, err := promParser.ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !slices.Contains(knownMetrics, vs.Name) {
					t.Errorf("alert %s: etcdsafe writes no metric %s", r.Alert, vs.Name)
				}
				return nil
			})
		}
	}
	t.Logf("%d alerts: %v", len(alerts), alerts)

	for _, tc := range []struct{ name, rules string }{
		{"bad expr", "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: etcdsafe_backup_last_run_success ==\n"},
		{"unknown field", "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: up == 0\n    fro: 5m\n"},
		{"bad template", "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: '{{ $labels.instance'\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, errs := rulefmt.Parse([]byte(tc.rules), false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler)); len(errs) == 0 {
				t.Fatal("rulefmt accepted it")
			}
		})
	}
}

// night is one backup run (and, when drill is set, a restore drill half an
// hour later) of a simulated master.
type night struct {
	fail          bool  // the run failed
	archiveBytes  int64 // size of the archive of a successful run
	outputsFailed int   // outputs that did not get the archive while another did
	drill         *bool // nil: no drill that night
}

var (
	passed = func() *bool { v := true; return &v }()
	failed = func() *bool { v := false; return &v }()
)

// ok is a good night of a 100 MB archive with a passing drill.
func ok() night { return night{archiveBytes: 100 << 20, drill: passed} }

const (
	nightAt  = time.Hour        // the backup starts at 01:00 each day
	scrape   = time.Minute      // the node exporter's scrape interval
	evalStep = 5 * time.Minute  // the rule evaluation interval in the test
	tail     = 90 * time.Minute // how long the timeline goes on after the last night
)

var day0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// TestAlerts plays nights of a master through the real path: backup's
// WriteMetrics and drill.WriteMetrics write the textfile-collector files
// after each run, a scrape every minute parses them with expfmt into
// Prometheus' TSDB, and Prometheus' rule engine evaluates every alert every
// 5 minutes along the timeline. Each alert fires on the bad nights made for
// it and on no others; good nights fire nothing (nor go pending).
func TestAlerts(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	groups := parseRules(t, rulesFile, b)
	good := func(n int) []night {
		ns := make([]night, n)
		for i := range ns {
			ns[i] = ok()
		}
		return ns
	}
	with := func(ns []night, i int, n night) []night { ns[i] = n; return ns }
	for _, tc := range []struct {
		name   string
		nights []night
		stopAt time.Duration // the timeline's end after day0 (0: the last night plus tail)
		want   []string      // alerts that fire (in name order); nothing else may go pending
		after  time.Duration // none fires before day0 plus this
	}{
		{name: "good nights", nights: good(4)},
		{name: "archive smaller by 40%", nights: with(good(4), 3, night{archiveBytes: 60 << 20, drill: passed})},
		{name: "archive larger", nights: with(good(4), 3, night{archiveBytes: 300 << 20, drill: passed})},
		{name: "last run failed", nights: with(good(4), 3, night{fail: true, drill: passed}),
			want: []string{"EtcdsafeBackupFailed"}},
		{name: "runs stopped", nights: good(2), stopAt: 3*24*time.Hour + 2*time.Hour,
			want: []string{"EtcdsafeBackupTooOld"}, after: 24*time.Hour + nightAt + 26*time.Hour},
		{name: "never succeeded", nights: []night{{fail: true}, {fail: true}},
			want: []string{"EtcdsafeBackupFailed", "EtcdsafeBackupTooOld"}},
		{name: "an output failed", nights: with(good(4), 3, night{fail: true, archiveBytes: 100 << 20, outputsFailed: 1, drill: passed}),
			want: []string{"EtcdsafeBackupFailed", "EtcdsafeBackupOutputFailed"}},
		{name: "archive less than half", nights: with(good(4), 3, night{archiveBytes: 40 << 20, drill: passed}),
			want: []string{"EtcdsafeBackupArchiveShrank"}},
		{name: "drill failed", nights: with(good(4), 3, night{archiveBytes: 100 << 20, drill: failed}),
			want: []string{"EtcdsafeDrillFailed"}},
		{name: "weekly drills", nights: weekly(good(10), 7)},
		{name: "drills stopped", nights: weekly(good(10), 100),
			want: []string{"EtcdsafeDrillTooOld"}, after: nightAt + 8*24*time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fired := play(t, groups, tc.nights, tc.stopAt)
			var got []string
			for name, f := range fired {
				if f.firing {
					got = append(got, name)
				}
				if f.pending && !slices.Contains(tc.want, name) {
					t.Errorf("%s went pending at %s", name, f.pendingAt.Format(time.RFC3339))
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("alerts firing: %v, want %v", got, tc.want)
			}
			for _, name := range got {
				at := fired[name].firingAt
				t.Logf("%s fired at %s", name, at.Format("Mon 15:04"))
				if at.Before(day0.Add(tc.after)) {
					t.Errorf("%s fired at %s, before %s", name, at.Format(time.RFC3339), day0.Add(tc.after).Format(time.RFC3339))
				}
			}
		})
	}
}

// weekly keeps the drills of every nth night only (the first included).
func weekly(ns []night, n int) []night {
	for i := range ns {
		if i%n != 0 {
			ns[i].drill = nil
		}
	}
	return ns
}

type alertSeen struct {
	pending, firing     bool
	pendingAt, firingAt time.Time
}

// play runs the nights and returns what each alert did.
func play(t *testing.T, groups *rulefmt.RuleGroups, nights []night, stopAt time.Duration) map[string]*alertSeen {
	t.Helper()
	dir := t.TempDir()
	backupProm := filepath.Join(dir, "etcdsafe.prom")
	drillProm := filepath.Join(dir, "etcdsafe-drill.prom")
	end := day0.Add(time.Duration(len(nights)-1)*24*time.Hour + nightAt + tail)
	if stopAt > 0 {
		end = day0.Add(stopAt)
	}
	type event struct {
		at  time.Time
		run func() error
	}
	var events []event
	for i, n := range nights {
		at := day0.Add(time.Duration(i)*24*time.Hour + nightAt + 3*time.Minute)
		events = append(events, event{at, func() error { return writeBackupMetrics(backupProm, n, at) }})
		if n.drill != nil {
			dat := at.Add(30 * time.Minute)
			events = append(events, event{dat, func() error { return writeDrillMetrics(drillProm, *n.drill, dat) }})
		}
	}

	st := teststorage.New(t)
	ctx := context.Background()
	for ts := day0; !ts.After(end); ts = ts.Add(scrape) {
		for len(events) > 0 && !events[0].at.After(ts) {
			if err := events[0].run(); err != nil {
				t.Fatal(err)
			}
			events = events[1:]
		}
		app := st.Appender(ctx)
		for _, f := range []string{backupProm, drillProm} {
			if err := scrapeFile(app, f, ts); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)
	seen := map[string]*alertSeen{}
	var ars []*rules.AlertingRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := promParser.ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			ars = append(ars, rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, nil))
			seen[r.Alert] = &alertSeen{}
		}
	}
	// from the first night on: before it there is no metrics file
	for ts := day0.Add(nightAt + 5*time.Minute); !ts.After(end); ts = ts.Add(evalStep) {
		for _, ar := range ars {
			if _, err := ar.Eval(ctx, 0, ts, query, nil, 0); err != nil {
				t.Fatalf("evaluate %s at %s: %v", ar.Name(), ts, err)
			}
			s := seen[ar.Name()]
			for _, a := range ar.ActiveAlerts() {
				if !s.pending {
					s.pending, s.pendingAt = true, ts
				}
				if a.State == rules.StateFiring && !s.firing {
					s.firing, s.firingAt = true, ts
				}
			}
		}
	}
	return seen
}

// writeBackupMetrics writes the metrics file as etcdsafe backup does at
// the end of a run.
func writeBackupMetrics(path string, n night, at time.Time) error {
	res := &backup.Result{
		Sidecar:  &archive.Sidecar{ArchiveSize: n.archiveBytes, DBSize: 4 * n.archiveBytes, Revision: at.Unix()},
		Duration: 3 * time.Minute,
		Outputs:  []backup.OutputResult{{Archive: "a.tar.zst.age"}},
	}
	for range n.outputsFailed {
		res.Outputs = append(res.Outputs, backup.OutputResult{})
	}
	var runErr error
	if n.fail {
		runErr = errors.New("etcd did not answer")
		if n.outputsFailed == 0 {
			res = nil
		}
	}
	return backup.WriteMetrics(path, res, runErr, at)
}

// writeDrillMetrics writes the drill's metrics file as etcdsafe drill
// --metrics-file does at the end of a drill.
func writeDrillMetrics(path string, pass bool, at time.Time) error {
	var runErr error
	if !pass {
		runErr = errors.New("a key differs from the snapshot")
	}
	return drill.WriteMetrics(path, 90*time.Second, runErr, at)
}

// scrapeFile appends the samples of a textfile-collector file at ts, with
// the labels the node exporter's scrape gives them; a missing file has none.
func scrapeFile(app storage.Appender, path string, ts time.Time) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	mfs, err := textParser().TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			default:
				return fmt.Errorf("%s: %s is neither a gauge nor a counter", path, name)
			}
			l := labels.FromStrings(model.MetricNameLabel, name, "instance", "master-1:9100", "job", "node")
			if _, err := app.Append(0, l, ts.UnixMilli(), v); err != nil {
				return err
			}
		}
	}
	return nil
}

func textParser() *expfmt.TextParser {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return &p
}
