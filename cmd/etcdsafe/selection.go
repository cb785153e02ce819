package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// selectFlags are kubectl's selection flags of ls, get and dump: -l and
// --field-selector.
type selectFlags struct {
	labels string
	fields string
}

func (f *selectFlags) addFlags(c *cobra.Command) {
	c.Flags().StringVarP(&f.labels, "selector", "l", "", "label selector as kubectl's (app=api,tier!=db; 'env in (a,b)'); decodes the objects the other parts select")
	c.Flags().StringVar(&f.fields, "field-selector", "", "field selector on "+strings.Join(inspect.FieldSelectorFields, " and ")+" (metadata.namespace!=kube-system)")
}

// selections resolves TYPE[,TYPE...] [NAME...] (or all), -n, --prefix, -l
// and --field-selector into one selection per type; a mistake in them is
// an inspect.SelectionError (a usage error to classify).
func (o *listOptions) selections(ctx context.Context, res *inspect.Selector, args []string) ([]inspect.Selection, error) {
	return res.SelectMany(ctx, inspect.SelectArgs{Args: args, Namespace: o.namespace, Prefix: o.prefix, Revision: o.revision},
		o.sel.labels, o.sel.fields)
}

// kept walks the file for each selection and returns the entries they
// keep, in order, -l applied (see [inspect.Selector.MatchLabels]).
func (o *listOptions) kept(ctx context.Context, res *inspect.Selector, sels []inspect.Selection, deleted bool) ([]inspect.Entry, error) {
	var out []inspect.Entry
	for i := range sels {
		entries, err := res.Entries(ctx, &sels[i], o.revision, deleted)
		if err != nil {
			return nil, err
		}
		_, kept, err := selected(ctx, res, &sels[i], entries)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = kept
		} else {
			out = append(out, kept...)
		}
	}
	return out, nil
}

// selected filters entries (the caller's own) in place to those sel keeps
// by key, then, with -l, to those whose labels match (read alone, on
// every core). In place: -A of a million keys keeps one slice of entries
// (88 MB), not two.
func selected(ctx context.Context, res *inspect.Selector, sel *inspect.Selection, entries []inspect.Entry) (kept, matched []inspect.Entry, err error) {
	kept = entries[:0]
	for i := range entries {
		if _, ok := res.Keep(sel, &entries[i]); ok {
			kept = append(kept, entries[i])
		}
	}
	matched, err = res.MatchLabels(ctx, sel, kept, renderWorkers())
	return kept, matched, err
}

// emptySelections says what matched nothing, and which namespace of the
// file -n may have meant.
func emptySelections(ctx context.Context, res *inspect.Selector, sels []inspect.Selection, deleted bool, rev int64) string {
	if len(sels) == 0 {
		return ""
	}
	msg := emptySelection(&sels[0], deleted, rev)
	if len(sels) > 1 && sels[0].Resource != nil {
		// the parts but the type are the same in each: "No pods, services or ... with labels ..."
		types := make([]string, len(sels))
		for i := range sels {
			types[i] = sels[i].Resource.GroupResource()
		}
		all := strings.Join(types[:len(types)-1], ", ") + " or " + types[len(types)-1]
		msg = strings.Replace(msg, types[0], all, 1)
	}
	if len(sels) > 0 && sels[0].Namespace != "" {
		if near, err := res.SuggestNamespace(ctx, sels[0].Namespace, rev); err == nil && len(near) > 0 {
			msg += fmt.Sprintf(" No namespace %s in this file; did you mean %s?", termtext.Clean(sels[0].Namespace), termtext.Clean(strings.Join(near, " or ")))
		}
	}
	return msg
}

// selectionLabel is what emptySelection adds for -l and --field-selector.
func selectionLabel(sel *inspect.Selection) string {
	var b strings.Builder
	if sel.Labels != nil {
		b.WriteString(" with labels " + termtext.Clean(sel.Labels.String()))
	}
	if sel.Fields != nil {
		b.WriteString(" with fields " + termtext.Clean(sel.Fields.String()))
	}
	return b.String()
}

// notFound returns an error for each name the selections ask for that
// kept (their entries) does not hold, as kubectl's NotFound, saying when
// the file shows it was deleted.
func notFound(ctx context.Context, res *inspect.Selector, sels []inspect.Selection, kept []inspect.Entry, rev int64, deleted bool) ([]error, error) {
	var errs []error
	for i := range sels {
		for _, n := range res.Missing(&sels[i], kept) {
			one := sels[i]
			one.Names = []string{n}
			note := " among the deleted objects still in the file's history"
			if !deleted {
				var err error
				if note, err = deletedNote(ctx, res, &one, res.Query(&one, rev, false)); err != nil {
					return nil, err
				}
			}
			errs = append(errs, fmt.Errorf("%s %q not found%s (at revision %s)%s", one.Resource.Plural, n, nsLabel(one.Namespace), revLabel(rev), note))
		}
	}
	return errs, nil
}

// result is the command's error once the objects found were printed: the
// per-object failures, or the names not found, each on its own line as
// kubectl prints its NotFound errors (the last one is the command's
// error, so that nothing sums them up).
func result(fails *failures, missing []error) error {
	if fails.n > 0 {
		for _, err := range missing {
			fails.add("", err)
		}
		return fails.err()
	}
	if len(missing) == 0 {
		return nil
	}
	for _, err := range missing[:len(missing)-1] {
		fmt.Fprintf(fails.w, "etcdsafe: error: %s\n", cleanMessage(err))
	}
	return missing[len(missing)-1]
}

// sortByValue is --sort-by, parsed when the flag is: a bad path is a flag
// error (exit 2) before SOURCE is opened.
type sortByValue struct {
	s    **inspect.SortBy
	text string
}

func (v *sortByValue) String() string { return v.text }
func (v *sortByValue) Type() string   { return "jsonpath" }
func (v *sortByValue) Set(text string) error {
	s, err := inspect.ParseSortBy(text)
	if err != nil {
		return err
	}
	*v.s, v.text = s, text
	return nil
}

func addSortByFlag(c *cobra.Command, s **inspect.SortBy) {
	c.Flags().Var(&sortByValue{s: s}, "sort-by", "sort by a JSONPath over each object, as kubectl's ('{.metadata.creationTimestamp}', .spec.replicas); decodes the objects selected")
}

// showLabels is the LABELS column of ls --show-labels: each entry's
// labels as kubectl prints them ("<none>" for none or a key that holds no
// object).
func showLabels(ctx context.Context, res *inspect.Selector, entries []inspect.Entry) ([]string, error) {
	col := make([]string, len(entries))
	bad, err := res.EachLabels(ctx, entries, renderWorkers(), func(i int, l map[string]string, object bool) {
		col[i] = "<none>"
		if object {
			col[i] = labels.FormatLabels(l)
		}
	})
	for i := range bad {
		if bad[i] {
			col[i] = "<unreadable>"
		}
	}
	return col, err
}
