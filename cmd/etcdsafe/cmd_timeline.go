package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
	"github.com/etcdsafe/etcdsafe/timeline"
)

type timelineOptions struct {
	src         sourceOptions
	render      renderOptions
	namespace   string
	key         string
	noIndex     bool
	showSecrets bool
	output      string
}

func newTimelineCmd() *cobra.Command {
	o := &timelineOptions{}
	c := &cobra.Command{
		Use:   "timeline SOURCE... TYPE/NAME [-n NS] | timeline SOURCE... --key KEY",
		Short: "Follow one object across every backup: each version, who wrote it and when, deletions, diffs",
		Long: `Follow one object across backups: every version the backups hold (etcd's history inside
each snapshot included), in order, as created, updated, deleted, recreated, first-seen (no
backup holds its creation) or vanished (in one backup, absent from the next, its deletion
compacted away); for each, its revision, the backups that hold it, the two backups it was
written between, the field manager and time of the newest managedFields entry, the archive to
restore it from (with the get command), and the YAML diff from the previous version.

Each SOURCE is a directory of backups (what 'backup --out DIR' writes), an s3://BUCKET/PREFIX
of backups (every cluster under the prefix, as 'list' shows them), a single archive, snapshot
or db, or an archive's s3:// URL. The last argument is TYPE/NAME; without -n, NAME is looked up
in every namespace and must be unique. A custom resource is named PLURAL.GROUP.

Backups written by 'etcdsafe backup' carry a key index beside the archive (ARCHIVE.index:
keys, revisions and value hashes, no values, encrypted to the archive's recipients): timeline
reads the indexes, then only the archives that hold a version it needs the value of. Archives
without an index (older backups, --no-index, unencrypted ones) are read whole, with a progress line on a
terminal. An index that cannot be used (damaged, another archive's, another key's) is warned of
and its archive read whole; an archive that disagrees with its index is an error (exit 3).
--no-index reads every archive whole.

Secret values (and kubectl's last-applied annotation of a Secret) are shown as
"(masked, N bytes, changed|unchanged)" unless --show-secrets.` + exitStatus(exitRead...),
		Example: `  etcdsafe timeline /var/backups/etcd deployment/api -n payments -i key.txt
  etcdsafe timeline s3://etcd-backups/fleet/prod secret/db-creds -n app -i key.txt -o json
  etcdsafe timeline old.tar.zst.age /var/backups/etcd configmap/settings -n app -i key.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var obj timeline.Object
			srcs := args
			switch {
			case o.key != "":
				obj = timeline.Object{Key: o.key}
			case len(args) < 2:
				return usagef("timeline needs SOURCE... and TYPE/NAME (or --key KEY)")
			default:
				srcs = args[:len(args)-1]
				typ, name, ok := strings.Cut(args[len(args)-1], "/")
				if !ok || typ == "" || name == "" || strings.Contains(name, "/") {
					return usagef("timeline needs one object as TYPE/NAME, got %q", args[len(args)-1])
				}
				obj = timeline.Object{Type: typ, Name: name, Namespace: o.namespace}
			}
			obj.Prefix = o.src.prefix
			return runTimeline(cmd, o, srcs, obj, cmd.OutOrStdout())
		},
	}
	o.src.addFlags(c.Flags())
	c.Flags().StringVarP(&o.namespace, "namespace", "n", "", "the object's namespace")
	c.Flags().StringVar(&o.key, "key", "", "one raw etcd key instead of TYPE/NAME")
	c.Flags().BoolVar(&o.noIndex, "no-index", false, "read every archive whole, ignoring the key indexes")
	c.Flags().BoolVar(&o.showSecrets, "show-secrets", false, "show Secret values instead of masking them")
	addOutputFlag(c.Flags(), &o.output, "text", "json")
	o.render.addFlags(c, false)
	o.render.raw = true
	completeObjects(c, &o.src, objectArgs{sources: -1, slash: true})
	return c
}

func runTimeline(cmd *cobra.Command, o *timelineOptions, srcs []string, obj timeline.Object, out io.Writer) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	open := func(_ context.Context, where string) (*source.Source, error) { return openSource(cmd, where, &o.src) }
	var bs []timeline.Backup
	for _, s := range srcs {
		got, err := timelineBackups(ctx, o, s, open)
		if err != nil {
			return err
		}
		bs = append(bs, got...)
	}
	if len(bs) == 0 {
		return fmt.Errorf("no backups in %s", strings.Join(srcs, ", "))
	}
	tl := timeline.Options{Backups: bs, Object: obj, NoIndex: o.noIndex, ShowSecrets: o.showSecrets,
		Render: o.render.options(nil).Present,
		OnWarning: func(b string, err error) {
			fmt.Fprintf(stderr, "etcdsafe: warning: %s: %s\n", termtext.Clean(b), cleanMessage(err))
		},
	}
	if !o.noIndex && hasIndex(bs) {
		ids, err := readIdentities(o.src.identity, o.src.passFile, stderr)
		if err != nil {
			return err
		}
		tl.Identities = ids
	}
	p := newReadProgress(stderr)
	tl.OnRead = p.read
	res, err := timeline.Run(ctx, tl)
	p.done()
	var ue *timeline.UsageError
	var ae *timeline.AmbiguousError
	switch {
	case errors.As(err, &ue), errors.As(err, &ae):
		return usageError{err}
	case err != nil:
		return err
	}
	if o.output == "json" {
		return printJSON(out, res)
	}
	printTimeline(out, res)
	return nil
}

func hasIndex(bs []timeline.Backup) bool {
	for _, b := range bs {
		if b.Index != nil {
			return true
		}
	}
	return false
}

// timelineBackups turns one SOURCE into the backups it holds.
func timelineBackups(ctx context.Context, o *timelineOptions, src string, open timeline.Opener) ([]timeline.Backup, error) {
	if s3store.IsURL(src) {
		_, prefix, err := s3store.ParseURL(src)
		if err != nil {
			return nil, usageError{err}
		}
		if base := prefix[strings.LastIndex(prefix, "/")+1:]; base != "" && backup.IsArchiveName(base) {
			b := timeline.Backup{Name: base, Where: src}
			b.Open = func(ctx context.Context) (*source.Source, error) { return open(ctx, src) }
			return []timeline.Backup{b}, nil
		}
		root, err := bucketOf(ctx, &o.src.s3, src)
		if err != nil {
			return nil, err
		}
		tree, err := root.Tree(ctx)
		if err != nil {
			return nil, err
		}
		var out []timeline.Backup
		for _, d := range tree {
			bs, err := timeline.Discover(ctx, d.Bucket, open)
			if err != nil {
				return nil, err
			}
			out = append(out, bs...)
		}
		return out, nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if st.IsDir() {
		if _, err := inspect.ResolveDBPath(src); err != nil {
			// not a data dir: a directory of backups
			return timeline.Discover(ctx, store.NewLocal(src), open)
		}
	}
	b, err := timeline.File(src, open)
	if err != nil {
		return nil, err
	}
	return []timeline.Backup{b}, nil
}

// printTimeline prints the versions as text: a header line each, then
// the object (a first version) or the diff from the previous one.
func printTimeline(out io.Writer, res *timeline.Result) {
	obj := res.Object
	what := obj.Type + "/" + obj.Name
	if obj.Key != "" {
		what = obj.Key
	}
	bs := res.Backups
	fmt.Fprintf(out, "# %s (%s)\n", termtext.Clean(what+nsLabelShort(obj.Namespace)), termtext.Clean(res.Key))
	fmt.Fprintf(out, "# %s from %s to %s: %d read by their key index, %d read whole\n", plural(len(bs), "backup"),
		bs[0].Time.Format(timeLayout), bs[len(bs)-1].Time.Format(timeLayout), res.ReadIndex, res.ReadWhole)
	for _, v := range res.Versions {
		fmt.Fprintln(out)
		switch {
		case v.Event == timeline.Vanished:
			fmt.Fprintf(out, "== vanished\n")
		case v.Revision != 0 && v.Version > 0:
			fmt.Fprintf(out, "== revision %d: %s (version %d, created at revision %d)\n", v.Revision, v.Event, v.Version, v.CreateRevision)
		default:
			fmt.Fprintf(out, "== revision %d: %s\n", v.Revision, v.Event)
		}
		if v.Manager != "" {
			at := ""
			if v.ManagedTime != nil {
				at = " at " + v.ManagedTime.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "   by:      %s (%s)%s\n", termtext.Clean(v.Manager), termtext.Clean(v.Operation), at)
		}
		switch {
		case v.After != nil:
			fmt.Fprintf(out, "   between: %s (%s) and %s (%s)\n", termtext.Clean(v.After.Backup), v.After.Time.Format(timeLayout),
				termtext.Clean(v.Before.Backup), v.Before.Time.Format(timeLayout))
		case v.Before != nil:
			fmt.Fprintf(out, "   before:  %s (%s), the oldest backup\n", termtext.Clean(v.Before.Backup), v.Before.Time.Format(timeLayout))
		}
		switch {
		case v.SeenIn == 1:
			fmt.Fprintf(out, "   seen in: %s\n", termtext.Clean(v.FirstSeen))
		case v.SeenIn > 1:
			fmt.Fprintf(out, "   seen in: %s .. %s (%s)\n", termtext.Clean(v.FirstSeen), termtext.Clean(v.LastSeen), plural(v.SeenIn, "backup"))
		}
		if v.Restore != nil {
			fmt.Fprintf(out, "   restore: %s\n", termtext.Clean(restoreCommand(res, v)))
		}
		if v.Note != "" {
			fmt.Fprintf(out, "   note:    %s\n", termtext.Clean(v.Note))
		}
		switch {
		case v.Diff != "":
			fmt.Fprint(out, v.Diff)
		case v.Object != nil && v.Event == timeline.Updated:
			fmt.Fprintln(out, "(no change)")
		case v.Object != nil:
			if b, err := marshalYAML(v.Object); err == nil {
				_, _ = out.Write(b)
			}
		}
	}
}

const timeLayout = "2006-01-02 15:04:05"

func nsLabelShort(ns string) string {
	if ns == "" {
		return ""
	}
	return " -n " + ns
}

// restoreCommand is the get command that prints version v create-ready.
func restoreCommand(res *timeline.Result, v *timeline.Version) string {
	obj := res.Object
	what := obj.Type + "/" + obj.Name + nsLabelShort(obj.Namespace)
	if obj.Key != "" {
		what = "--key " + obj.Key
	}
	return fmt.Sprintf("etcdsafe get --revision %d %s %s", v.Revision, v.Restore.Where, what)
}

// readProgress redraws one line on a terminal while archives are read
// whole.
type readProgress struct {
	w     io.Writer // nil: not a terminal
	drawn bool
}

func newReadProgress(stderr io.Writer) *readProgress {
	p := &readProgress{}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.w = f
	}
	return p
}

func (p *readProgress) read(i, n int, b *timeline.Backup) {
	if p.w == nil {
		return
	}
	p.drawn = true
	if n > 0 {
		fmt.Fprintf(p.w, "\r\033[Kreading archive %d/%d (no key index): %s", i+1, n, termtext.Clean(b.Name))
		return
	}
	fmt.Fprintf(p.w, "\r\033[Kreading archive for a version's value: %s", termtext.Clean(b.Name))
}

func (p *readProgress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
