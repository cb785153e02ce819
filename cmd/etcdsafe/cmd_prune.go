package main

import (
	"github.com/etcdsafe/etcdsafe/store"

	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

type pruneOptions struct {
	keep    archive.RetentionPolicy
	dryRun  bool
	groupBy string
}

func newPruneCmd() *cobra.Command {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune DIR --keep-last N | --keep-daily N | --keep-weekly N | --keep-monthly N [--dry-run]",
		Short: "Delete old backups by a grandfather-father-son policy, without the key",
		Long: `Delete the backups in DIR that no --keep-* rule keeps, as restic's 'forget' does: each rule
keeps the newest backup of each of its last N periods (UTC days, ISO weeks, months) that hold
one, --keep-last the N newest; -1 means every period. A backup kept by any rule stays. The
rules apply to each group of backups on its own, by default each (cluster, host) pair, so
that one master's backups never push out another's in a shared directory (--group-by). Times
come from the sidecars; archives without a readable sidecar are never deleted. The directory
lock keeps prune and backup from running at once; prune also removes the partial archives
(.NAME.tmp-*) that killed backup runs left.` + exitStatusHelp,
		Example: `  etcdsafe prune /var/backups/etcd --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.keep.Empty() {
				return usagef("give at least one --keep-* rule (prune never deletes everything)")
			}
			if o.keep.Last < 0 || o.keep.Daily < -1 || o.keep.Weekly < -1 || o.keep.Monthly < -1 {
				return usagef("--keep-last must be >= 0, the other --keep-* >= -1 (-1 = all)")
			}
			if _, err := archive.ParseGroupBy(o.groupBy); err != nil {
				return usagef("--group-by: %v", err)
			}
			return runPrune(cmd.Context(), o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.IntVar(&o.keep.Last, "keep-last", 0, "keep the N newest backups")
	f.IntVar(&o.keep.Daily, "keep-daily", 0, "keep the newest backup of each of the last N days")
	f.IntVar(&o.keep.Weekly, "keep-weekly", 0, "keep the newest backup of each of the last N ISO weeks")
	f.IntVar(&o.keep.Monthly, "keep-monthly", 0, "keep the newest backup of each of the last N months")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be deleted, delete nothing")
	f.StringVar(&o.groupBy, "group-by", archive.DefaultGroupBy.String(), "apply the rules per group of backups: cluster,host, host, cluster or none")
	return c
}

func runPrune(ctx context.Context, o *pruneOptions, dir string, out, stderr io.Writer) error {
	gb, _ := archive.ParseGroupBy(o.groupBy) // checked by the command
	res, err := backup.Prune(ctx, store.NewLocal(dir), backup.PruneOptions{Policy: o.keep, GroupBy: gb, DryRun: o.dryRun})
	if res == nil {
		return err
	}
	verb := "remove"
	if o.dryRun {
		verb = "would remove"
	}
	for _, p := range res.Partials {
		fmt.Fprintf(stderr, "etcdsafe: %s partial archive %s (left by a killed run)\n", verb, termtext.Clean(p))
	}
	if res.PartialsErr != nil {
		fmt.Fprintf(stderr, "etcdsafe: warning: %v\n", res.PartialsErr)
	}
	for _, u := range res.Unmanaged {
		fmt.Fprintf(stderr, "etcdsafe: warning: %s has no readable sidecar; kept\n", termtext.Clean(u))
	}
	for _, f := range res.Future {
		fmt.Fprintf(stderr, "etcdsafe: warning: the sidecar of %s is dated in the future (clock skew?)\n", termtext.Clean(f))
	}
	group := "\x00" // no group key has a NUL: the first decision prints its header
	for _, d := range res.Decisions {
		if d.Group != group {
			group = d.Group
			fmt.Fprintf(out, "backups of %s:\n", termtext.Clean(group))
		}
		if d.Keep {
			fmt.Fprintf(out, "keep          %s  %s (%s)\n", d.Time.Format("2006-01-02 15:04:05"), termtext.Clean(d.Name), strings.Join(d.Reasons, ", "))
		} else {
			fmt.Fprintf(out, "%-13s %s  %s\n", verb, d.Time.Format("2006-01-02 15:04:05"), termtext.Clean(d.Name))
		}
	}
	return err
}
