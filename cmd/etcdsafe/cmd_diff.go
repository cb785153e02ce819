package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/internal/table"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/kdiff"
	"github.com/etcdsafe/etcdsafe/source"
)

type diffOptions struct {
	src           sourceOptions
	namespace     string
	all           bool
	includeStatus bool
	showSecrets   bool
	stat          bool
	output        string
	exitCode      bool
	compareValues bool
	sameLineage   bool
	eventDiffs    bool
}

// errDiffers is what diff --exit-code returns when the sources differ:
// exit 1, as `git diff --exit-code`.
type errDiffers struct{}

func (errDiffers) Error() string { return "the sources differ (--exit-code)" }

func newDiffCmd() *cobra.Command {
	o := &diffOptions{}
	c := &cobra.Command{
		Use:   "diff A B [TYPE[/NAME] | TYPE NAME...]",
		Short: "Show the objects added, deleted and changed between two sources, as YAML diffs",
		Long: `Compare two sources (snapshots, dbs, data dirs, archives, s3:// objects, - for one of them)
as Kubernetes objects: the objects added, deleted and changed from A to B, grouped by
namespace and kind, each as a unified diff of the create-ready YAML 'etcdsafe get' prints.
Findings come first: mass deletions of one kind (at least 10 objects and 20% of the kind),
new or changed cluster-admin bindings, admission webhooks added or changed, Secrets and RBAC
changed in kube-system, CRDs removed.

Noise is left out: resourceVersion, managedFields, generation, uid, creationTimestamp and
(unless --include-status) status; objects whose only differences are noise are counted, not
shown. Events are counted per namespace, not diffed, unless --event-diffs (in -o json they
carry no diff). Secrets are decrypted in memory only; their values are masked as "(masked, N bytes)",
with "old value"/"new value" where a value changed, unless --show-secrets. Keys that hold no
Kubernetes object, or a value that does not decode, are compared as keys: sizes, and SHA-256
digests of values that are neither Secrets nor encrypted.

Lineage: within one cluster's history a key with the same create and mod revision holds the
same value, so such keys are not read. Whether A and B are one history is decided from the
files: the same etcd members, the raft index and term not going back from the older file to
the newer, and the older file's newest records unchanged in the newer; otherwise (a restored
cluster reuses revisions for other values) every common key's values are compared. The mode
used is printed; --compare-values or --same-lineage forces it.

-o json prints one object: "a" and "b" (source, revision), "lineage" (mode "revisions" or
"values", forced, reason), "findings" (type, severity, message, keys), "objects" (change,
key, kind, apiVersion, resource, namespace, name, "a"/"b" with revision, createRevision,
size, encryption and sha256 for keys compared as bytes, undecoded, diff; omitted with
--stat), "stats" (per namespace and kind: added, deleted, changed, noiseOnly) and "summary"
(added, deleted, changed, noiseOnly, unchanged, skipped, compared).

--exit-code exits 1 when the sources differ and 0 when they do not, as 'git diff
--exit-code'; errors keep their own codes.` + exitStatusWith(map[int]string{exitFailure: "the sources differ (with --exit-code), or a failure"}, exitRead...),
		Example: `  etcdsafe diff monday.db tuesday.db --decryption-config /etc/kubernetes/encryption-config.yaml
  etcdsafe diff backups/mon.tar.zst.age backups/tue.tar.zst.age -i key.txt --stat
  etcdsafe diff a.db b.db deployments -n payments
  etcdsafe diff a.db s3://backups/etcd/tue.tar.zst.age -i key.txt -o json
  etcdsafe diff a.db b.db --exit-code > /dev/null || echo changed`,
		Args: cobra.RangeArgs(2, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.all && o.namespace != "":
				return usagef("-n and -A exclude each other")
			case o.compareValues && o.sameLineage:
				return usagef("--compare-values and --same-lineage exclude each other")
			case args[0] == "-" && args[1] == "-":
				return usagef("only one of A and B can be standard input")
			}
			return runDiff(cmd, o, args[0], args[1], args[2:], cmd.OutOrStdout())
		},
	}
	o.src.addFlags(c.Flags())
	c.Flags().StringVarP(&o.namespace, "namespace", "n", "", "only this namespace")
	c.Flags().BoolVarP(&o.all, "all-namespaces", "A", false, "every namespace (the default when -n is not given)")
	c.Flags().BoolVar(&o.includeStatus, "include-status", false, "compare .status too")
	c.Flags().BoolVar(&o.showSecrets, "show-secrets", false, "show Secret values instead of masks")
	c.Flags().BoolVar(&o.stat, "stat", false, "counts per namespace and kind only, no diffs")
	addOutputFlag(c.Flags(), &o.output, "text", "json")
	c.Flags().BoolVar(&o.exitCode, "exit-code", false, "exit 1 when the sources differ, 0 when they do not")
	c.Flags().BoolVar(&o.compareValues, "compare-values", false, "compare the values of every key both hold, trusting no revision")
	c.Flags().BoolVar(&o.sameLineage, "same-lineage", false, "trust revisions (one cluster's history) whatever the files show")
	c.Flags().BoolVar(&o.eventDiffs, "event-diffs", false, "diff Events too (by default they are counted per namespace, not shown)")
	completeObjects(c, &o.src, objectArgs{sources: 2, names: -1})
	return c
}

func runDiff(cmd *cobra.Command, o *diffOptions, pathA, pathB string, args []string, out io.Writer) (err error) {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	fails := &failures{w: stderr}
	a, err := openSource(cmd, pathA, &o.src)
	if err != nil {
		return err
	}
	defer a.Close()
	defer func() { err = a.Settle(ctx, err) }()
	b, err := openSource(cmd, pathB, &o.src)
	if err != nil {
		return err
	}
	defer b.Close()
	defer func() { err = b.Settle(ctx, err) }()
	clean := func(s string) string { return s }
	if isTerminal(out) {
		clean = termtext.Clean
	}
	bw := bufio.NewWriterSize(a.Gate(ctx, b.Gate(ctx, out)), 64<<10)

	ko := kdiff.Options{Args: args, Namespace: o.namespace, IncludeStatus: o.includeStatus, ShowSecrets: o.showSecrets,
		Stat: o.stat, EventDiffs: o.eventDiffs, Workers: renderWorkers(),
		OnProblem: func(side, key string, err error) {
			if key == "" {
				fails.add("", fmt.Errorf("%s: %w", side, err))
				return
			}
			fails.add(side+": "+key, err)
		}}
	if a.Manifest != nil && b.Manifest != nil {
		ko.ClusterIDA, ko.ClusterIDB = a.Manifest.ClusterID, b.Manifest.ClusterID
	}
	switch {
	case o.compareValues:
		ko.Lineage = kdiff.LineageValues
	case o.sameLineage:
		ko.Lineage = kdiff.LineageSame
	}
	p, err := kdiff.Prepare(ctx, a, b, ko)
	if err != nil {
		return err
	}
	var res *kdiff.Result
	if o.output == "json" {
		res, err = writeDiffJSON(ctx, bw, p, a, b, o.stat)
	} else {
		res, err = writeDiffText(ctx, bw, p, a, b, o.stat, o.eventDiffs, clean)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := fails.err(); err != nil {
		return err
	}
	if o.exitCode && res.Differs() {
		return errDiffers{}
	}
	return nil
}

func writeDiffText(ctx context.Context, w *bufio.Writer, p *kdiff.Plan, a, b *source.Source, stat, eventDiffs bool, clean func(string) string) (*kdiff.Result, error) {
	fmt.Fprintf(w, "A: %s (revision %d)\nB: %s (revision %d)\n", termtext.Clean(a.Name), p.RevisionA, termtext.Clean(b.Name), p.RevisionB)
	if p.Lineage.Mode == "revisions" {
		fmt.Fprintf(w, "Lineage: keys with the same revisions taken as unchanged (--compare-values reads them): %s\n", termtext.Clean(p.Lineage.Reason))
	} else {
		fmt.Fprintf(w, "Lineage: every common key's values compared: %s\n", termtext.Clean(p.Lineage.Reason))
	}
	if len(p.Findings) > 0 {
		fmt.Fprintf(w, "\nFindings:\n")
		for _, f := range p.Findings {
			fmt.Fprintf(w, "  [%s] %s\n", f.Severity, termtext.Clean(f.Message))
		}
	}
	group := "\x00"
	// Events without their diffs: one line per group with the counts
	var events map[string]int
	flushEvents := func() {
		if len(events) > 0 {
			fmt.Fprintf(w, "Events: %d added, %d deleted, %d changed (not shown: --event-diffs)\n", events["added"], events["deleted"], events["changed"])
		}
		events = nil
	}
	res, err := p.Objects(ctx, func(o *kdiff.Object) error {
		if stat {
			return nil
		}
		g := o.Namespace
		if o.Kind == "" {
			g = "\x01keys"
		}
		if g != group {
			flushEvents()
			group = g
			switch {
			case o.Kind == "":
				fmt.Fprintf(w, "\n== keys\n")
			case g == "":
				fmt.Fprintf(w, "\n== cluster-scoped\n")
			default:
				fmt.Fprintf(w, "\n== namespace %s\n", termtext.Clean(g))
			}
		}
		if o.IsEvent() && !eventDiffs {
			if events == nil {
				events = map[string]int{}
			}
			events[o.Change]++
			return nil
		}
		fmt.Fprintf(w, "%s %s %s\n", o.Change, termtext.Clean(o.Label()), revisions(o))
		if o.Undecoded != "" {
			fmt.Fprintf(w, "   compared as bytes: %s\n", termtext.Clean(o.Undecoded))
		}
		_, err := w.WriteString(clean(o.Diff))
		return err
	})
	if err != nil {
		return nil, err
	}
	flushEvents()
	if stat && len(res.Stats) > 0 {
		fmt.Fprintln(w)
		_, err := table.Print(ctx, w, len(res.Stats), table.Options{Header: []string{"NAMESPACE", "KIND", "ADDED", "DELETED", "CHANGED", "NOISE-ONLY"},
			Row: func(i int, c []table.Cell) bool {
				s := &res.Stats[i]
				c[0], c[1] = table.Text(orDash(s.Namespace)), table.Text(s.Kind)
				c[2], c[3], c[4], c[5] = table.Int(int64(s.Added)), table.Int(int64(s.Deleted)), table.Int(int64(s.Changed)), table.Int(int64(s.NoiseOnly))
				return true
			}})
		if err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(w, "\n%d added, %d deleted, %d changed; %d changed only in noise (status, metadata), not shown; %d unchanged\n",
		res.Added, res.Deleted, res.Changed, res.NoiseOnly, p.Unchanged)
	return res, nil
}

// revisions says where each side's value is: "(revision 12)", "(revision
// 12 -> 40)", "(size 2 -> 3)" for keys.
func revisions(o *kdiff.Object) string {
	var parts []string
	switch {
	case o.A != nil && o.B != nil:
		parts = append(parts, fmt.Sprintf("revision %d -> %d", o.A.Revision, o.B.Revision))
		if o.Undecoded != "" {
			parts = append(parts, fmt.Sprintf("size %d -> %d", o.A.Size, o.B.Size))
			if o.A.SHA256 != "" && o.B.SHA256 != "" {
				parts = append(parts, fmt.Sprintf("sha256 %.12s -> %.12s", o.A.SHA256, o.B.SHA256))
			}
		}
		if o.A.Encryption != o.B.Encryption {
			parts = append(parts, "encryption "+o.A.Encryption+" -> "+o.B.Encryption)
		}
	case o.A != nil:
		parts = append(parts, fmt.Sprintf("revision %d", o.A.Revision))
	case o.B != nil:
		parts = append(parts, fmt.Sprintf("revision %d", o.B.Revision))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// diffSide is a source in diff's JSON.
type diffSide struct {
	Source   string `json:"source"`
	Revision int64  `json:"revision"`
}

// diffSummary is the "summary" of diff's JSON.
type diffSummary struct {
	Added     int `json:"added"`
	Deleted   int `json:"deleted"`
	Changed   int `json:"changed"`
	NoiseOnly int `json:"noiseOnly"`
	Unchanged int `json:"unchanged"`
	Skipped   int `json:"skipped"`
	Compared  int `json:"compared"`
}

// writeDiffJSON prints the one JSON object of diff -o json, its objects
// streamed as they are rendered.
func writeDiffJSON(ctx context.Context, w *bufio.Writer, p *kdiff.Plan, a, b *source.Source, stat bool) (*kdiff.Result, error) {
	part := func(name string, v any, last bool) error {
		j, err := json.MarshalIndent(v, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ","
		if last {
			sep = ""
		}
		_, err = fmt.Fprintf(w, "  %q: %s%s\n", name, j, sep)
		return err
	}
	findings := p.Findings
	if findings == nil {
		findings = []kdiff.Finding{}
	}
	_, _ = w.WriteString("{\n")
	for _, x := range []struct {
		name string
		v    any
	}{{"a", diffSide{a.Name, p.RevisionA}}, {"b", diffSide{b.Name, p.RevisionB}}, {"lineage", p.Lineage}, {"findings", findings}} {
		if err := part(x.name, x.v, false); err != nil {
			return nil, err
		}
	}
	n := 0
	if !stat {
		_, _ = w.WriteString("  \"objects\": [")
	}
	res, err := p.Objects(ctx, func(o *kdiff.Object) error {
		if stat {
			return nil
		}
		j, err := json.MarshalIndent(o, "    ", "  ")
		if err != nil {
			return err
		}
		sep := ","
		if n == 0 {
			sep = ""
		}
		n++
		_, err = fmt.Fprintf(w, "%s\n    %s", sep, j)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !stat {
		if n > 0 {
			_, _ = w.WriteString("\n  ")
		}
		_, _ = w.WriteString("],\n")
	}
	stats := res.Stats
	if stats == nil {
		stats = []kdiff.Stat{}
	}
	if err := part("stats", stats, false); err != nil {
		return nil, err
	}
	sum := diffSummary{Added: res.Added, Deleted: res.Deleted, Changed: res.Changed, NoiseOnly: res.NoiseOnly,
		Unchanged: p.Unchanged, Skipped: p.Skipped, Compared: p.Compared}
	if err := part("summary", sum, true); err != nil {
		return nil, err
	}
	_, err = w.WriteString("}\n")
	return res, err
}
