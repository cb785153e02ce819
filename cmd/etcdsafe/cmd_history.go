package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
)

type historyOptions struct {
	list   listOptions
	render renderOptions
	key    string
	output string
}

func newHistoryCmd() *cobra.Command {
	o := &historyOptions{}
	c := &cobra.Command{
		Use:   "history SOURCE TYPE/NAME | history SOURCE --key KEY",
		Short: "Show every revision of one object the file still holds, deletion included, as YAML diffs",
		Long: `Print every revision of one object that the snapshot still holds (etcd keeps old revisions
until compaction): the first in full, then a unified YAML diff between consecutive revisions,
and the deletion if there is one. Objects are shown as the API server would serve them.
Without -n, NAME is looked up in every namespace and must be unique. -o json and -o yaml print
the revisions as one document, each object whole (docs/JSON.md).` + exitStatus(exitRead...),
		Example: `  etcdsafe history snapshot.db deployment/api -n payments
  etcdsafe history snapshot.db configmap/tmp-debug -n payments
  etcdsafe history snapshot.db deploy/api -n payments -o json | jq '.revisions[].object.spec.replicas'`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.list.validate(nil); err != nil {
				return err
			}
			if o.key == "" && len(args) < 2 {
				return usagef("history needs TYPE/NAME or --key KEY")
			}
			if err := o.render.validateServerVersion(true); err != nil {
				return err
			}
			return runHistory(cmd, o, args[0], args[1:], cmd.OutOrStdout())
		},
	}
	o.list.src.addFlags(c.Flags())
	c.Flags().StringVarP(&o.list.namespace, "namespace", "n", "", "the object's namespace")
	c.Flags().StringVar(&o.key, "key", "", "one raw etcd key")
	o.render.addFlags(c, false)
	o.render.addServerVersionFlag(c)
	o.render.raw = true
	addOutputFlag(c.Flags(), &o.output, "text", "json", "yaml")
	completeObjects(c, &o.list.src, objectArgs{sources: 1, names: 1})
	return c
}

func runHistory(cmd *cobra.Command, o *historyOptions, path string, args []string, out io.Writer) (err error) {
	ctx := cmd.Context()
	fails := &failures{w: cmd.ErrOrStderr()}
	s, err := openSource(cmd, path, &o.list.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.Settle(ctx, err) }()
	out = s.Gate(ctx, out)
	key := o.key
	if key == "" {
		res := newSelector(cmd, s, fails)
		sel, err := o.list.selection(ctx, res, args)
		if err != nil {
			return err
		}
		if len(sel.Names) != 1 {
			return usagef("history needs exactly one object: TYPE/NAME")
		}
		if key, err = findKey(ctx, res, &sel); err != nil {
			return err
		}
	}
	if err := o.render.resolveServedBy(ctx, s, 0); err != nil {
		return err
	}
	recs, problems, err := s.Snapshot.History(ctx, []byte(key), 0)
	if err != nil {
		return err
	}
	fails.addProblems(problems)
	if len(recs) == 0 {
		return fmt.Errorf("key %s has no revisions in this file", key)
	}
	if o.output != "text" {
		if err := writeHistoryDoc(out, o.output, key, s, recs, &o.render, cmd.ErrOrStderr(), fails); err != nil {
			return err
		}
		return fails.err()
	}
	fmt.Fprintf(out, "# %s: %d revision(s) in this file\n", key, len(recs))
	prev := ""
	for i, rec := range recs {
		switch {
		case rec.Rev.Tombstone:
			fmt.Fprintf(out, "\n# revision %d: deleted\n", rec.Rev.Main)
			prev = ""
			continue
		}
		event := "updated"
		if rec.Version == 1 {
			event = "created"
		}
		fmt.Fprintf(out, "\n# revision %d: %s (version %d, created at revision %d)\n", rec.Rev.Main, event, rec.Version, rec.CreateRevision)
		cur, err := historyText(s, rec, &o.render, cmd.ErrOrStderr())
		if err != nil {
			fails.add(fmt.Sprintf("%s@%d", key, rec.Rev.Main), err)
			prev = ""
			continue
		}
		if prev == "" || i == 0 {
			fmt.Fprint(out, cur)
		} else {
			diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(prev), B: difflib.SplitLines(cur),
				FromFile: fmt.Sprintf("revision %d", recs[i-1].Rev.Main), ToFile: fmt.Sprintf("revision %d", rec.Rev.Main), Context: 3,
			})
			if diff == "" {
				diff = "(no change)\n"
			}
			fmt.Fprint(out, diff)
		}
		prev = cur
	}
	return fails.err()
}

// historyText is one revision as history prints it: the object as YAML,
// or the value itself when it is not an object.
func historyText(s *source.Source, rec inspect.Record, ro *renderOptions, stderr io.Writer) (string, error) {
	obj, notes, err := s.RenderRecord(rec, ro.options(nil))
	printNotes(stderr, string(rec.Key), notes)
	if errors.Is(err, source.ErrNotObject) {
		return string(rec.Value) + "\n", nil
	}
	if err != nil {
		return "", err
	}
	b, err := marshalYAML(obj.Object)
	return string(b), err
}

// findKey finds the one key of TYPE/NAME, live or deleted, looking in every
// namespace when none is given.
func findKey(ctx context.Context, res *inspect.Selector, sel *inspect.Selection) (string, error) {
	list, err := res.FindKeys(ctx, sel)
	if err != nil {
		return "", err
	}
	switch len(list) {
	case 0:
		return "", fmt.Errorf("%s %q not found%s, neither live nor deleted", sel.Resource.Plural, sel.Names[0], nsLabel(sel.Namespace))
	case 1:
		return list[0], nil
	}
	return "", usagef("%s %q exists in several namespaces, pick one with -n: %s", sel.Resource.Plural, sel.Names[0], strings.Join(list, ", "))
}
