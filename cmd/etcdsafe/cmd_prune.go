package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

type pruneOptions struct {
	keep    archive.RetentionPolicy
	dryRun  bool
	groupBy string
	// partialAge: incomplete uploads older than this are aborted (S3).
	partialAge time.Duration
	s3         s3Flags
}

func newPruneCmd() *cobra.Command {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune DIR|s3://BUCKET/PREFIX --keep-last N | --keep-daily N | --keep-weekly N | --keep-monthly N [--dry-run]",
		Short: "Delete old backups by a grandfather-father-son policy, without the key",
		Long: `Delete the backups in DIR that no --keep-* rule keeps, as restic's 'forget' does: each rule
keeps the newest backup of each of its last N periods (UTC days, ISO weeks, months) that hold
one, --keep-last the N newest; -1 means every period. A backup kept by any rule stays. The
rules apply to each group of backups on its own, by default each (cluster, host) pair, so
that one master's backups never push out another's in a shared directory (--group-by). Times
come from the sidecars; archives without a readable sidecar are never deleted. The directory
lock keeps prune and backup from running at once; prune also removes the partial archives
(.NAME.tmp-*) that killed backup runs left.

prune s3://BUCKET/PREFIX prunes a fleet: the archives directly under PREFIX and under each
prefix one level down (one per cluster, as backup writes them), each on its own. An archive
the rules drop but an S3 object lock still protects is kept and reported as "keep (locked)"
with the lock's end, never an error: a later prune removes it once the lock has ended. A
bucket has no lock file: prune aborts the incomplete multipart uploads of killed backups
only once they are older than --partials-older-than (default 24h), so that it never takes
the upload of a backup running on another master; 0s aborts every incomplete upload under
the prefix at once, running ones included.` + exitStatus(exitOK, exitFailure, exitUsage, exitLocked, exitInterrupted),
		Example: `  etcdsafe prune /var/backups/etcd --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  etcdsafe prune s3://etcd-backups/fleet --keep-daily 30 --keep-monthly 12`,
		Args: cobra.ExactArgs(1),
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
			if s3store.IsURL(args[0]) {
				return runPruneBucket(cmd.Context(), o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if cmd.Flags().Changed("partials-older-than") {
				return usagef("--partials-older-than is for s3:// prefixes: a directory's partial archives are removed under its lock")
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
	o.partialAge = s3store.DefaultPartialAge
	f.Var(durationValue{p: &o.partialAge, name: "--partials-older-than"}, "partials-older-than",
		"s3:// only: abort the incomplete uploads older than this (30m, 2d; 0s: all, running backups' too)")
	o.s3.register(f)
	return c
}

func runPrune(ctx context.Context, o *pruneOptions, dir string, out, stderr io.Writer) error {
	gb, _ := archive.ParseGroupBy(o.groupBy) // checked by the command
	res, err := backup.Prune(ctx, store.NewLocal(dir), backup.PruneOptions{Policy: o.keep, GroupBy: gb, DryRun: o.dryRun})
	if res == nil {
		return err
	}
	printPrune(o, res, "", out, stderr)
	return err
}

// runPruneBucket prunes the archives under the prefix and under each
// prefix one level down, one target after the other; it stops at the
// first that fails.
func runPruneBucket(ctx context.Context, o *pruneOptions, url string, out, stderr io.Writer) error {
	root, err := bucketOf(ctx, &o.s3, url)
	if err != nil {
		return err
	}
	tree, err := root.Tree(ctx)
	if err != nil {
		return err
	}
	gb, _ := archive.ParseGroupBy(o.groupBy) // checked by the command
	for _, d := range tree {
		t := d.Bucket
		// 0 is the bucket's default age: the smallest age there is
		// stands for "now".
		t.PartialAge = max(o.partialAge, time.Nanosecond)
		res, err := backup.Prune(ctx, t, backup.PruneOptions{Policy: o.keep, GroupBy: gb, DryRun: o.dryRun})
		if res != nil {
			printPrune(o, res, t.String(), out, stderr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// printPrune prints what a prune of one target decided and did; where,
// if set, names the target in the group headers (a bucket prefix).
func printPrune(o *pruneOptions, res *backup.PruneResult, where string, out, stderr io.Writer) {
	locked := map[string]backup.LockedArchive{}
	for _, l := range res.Locked {
		locked[l.Name] = l
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
			if where != "" {
				fmt.Fprintf(out, "backups of %s in %s:\n", termtext.Clean(group), termtext.Clean(where))
			} else {
				fmt.Fprintf(out, "backups of %s:\n", termtext.Clean(group))
			}
		}
		l, isLocked := locked[d.Name]
		switch {
		case d.Keep:
			fmt.Fprintf(out, "keep          %s  %s (%s)\n", d.Time.Format("2006-01-02 15:04:05"), termtext.Clean(d.Name), strings.Join(d.Reasons, ", "))
		case isLocked && !d.Current:
			fmt.Fprintf(out, "keep (locked) %s  %s (%s)\n", d.Time.Format("2006-01-02 15:04:05"), termtext.Clean(d.Name), lockedReason(l))
		default:
			fmt.Fprintf(out, "%-13s %s  %s\n", verb, d.Time.Format("2006-01-02 15:04:05"), termtext.Clean(d.Name))
		}
	}
}

// lockedReason says why a prune kept an archive its rules drop.
func lockedReason(l backup.LockedArchive) string {
	if l.Until.IsZero() {
		return "locked: the server refused to delete it; a later prune retries"
	}
	return fmt.Sprintf("%s lock until %s; a later prune removes it", strings.ToLower(l.Mode), l.Until.UTC().Format("2006-01-02 15:04:05"))
}
