package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
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
			return runPrune(o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
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

func runPrune(o *pruneOptions, dir string, out, stderr io.Writer) error {
	unlock, err := fsx.Lock(dir)
	if err != nil {
		return fmt.Errorf("%s is locked: %w", dir, err)
	}
	defer unlock()
	verb := "remove"
	if o.dryRun {
		verb = "would remove"
	}
	// Under the lock no backup is writing: temp files are killed runs'.
	temps, terr := sweepBackupTemps(dir, o.dryRun)
	for _, p := range temps {
		fmt.Fprintf(stderr, "etcdsafe: %s partial archive %s (left by a killed run)\n", verb, termtext.Clean(p))
	}
	if terr != nil {
		fmt.Fprintf(stderr, "etcdsafe: warning: %v\n", terr)
	}
	gb, _ := archive.ParseGroupBy(o.groupBy) // checked by the command
	res, err := pruneBackups(dir, o.keep, o.dryRun, pruneScope{groupBy: gb})
	for _, u := range res.unmanaged {
		fmt.Fprintf(stderr, "etcdsafe: warning: %s has no readable sidecar; kept\n", termtext.Clean(u))
	}
	for _, f := range res.future {
		fmt.Fprintf(stderr, "etcdsafe: warning: the sidecar of %s is dated in the future (clock skew?)\n", termtext.Clean(f))
	}
	group := "\x00" // no group key has a NUL: the first decision prints its header
	for _, d := range res.decisions {
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

type pruneResult struct {
	decisions []archive.RetentionDecision // by group, newest first
	removed   []string
	unmanaged []string // archives without a usable sidecar, always kept
	future    []string // archives whose sidecar is dated ahead of now
}

// pruneScope says which backups a prune looks at and how it groups them.
type pruneScope struct {
	groupBy archive.GroupBy
	// only, if set, limits the prune to the group with this key.
	only string
	// current is the archive the running backup just wrote: always kept.
	current string
}

// futureSlack is how far ahead of now a sidecar may be dated before it is
// reported as clock skew.
const futureSlack = 5 * time.Minute

// pruneBackups applies policy to each group of dir's backups and, unless
// dryRun, deletes each archive the policy drops and then its sidecar. The
// caller holds the directory lock. It stops at the first failed deletion.
func pruneBackups(dir string, policy archive.RetentionPolicy, dryRun bool, scope pruneScope) (pruneResult, error) {
	var res pruneResult
	if policy.Empty() {
		return res, errors.New("prune: empty retention policy")
	}
	entries, err := scanBackups(dir)
	if err != nil {
		return res, err
	}
	var items []archive.RetentionItem
	paths := map[string]string{}
	now := time.Now()
	for _, e := range entries {
		if e.Sidecar == nil {
			res.unmanaged = append(res.unmanaged, e.Name)
			continue
		}
		g := scope.groupBy.Key(e.Sidecar.Cluster, e.Sidecar.Host)
		if scope.only != "" && g != scope.only {
			continue
		}
		if e.Time.After(now.Add(futureSlack)) {
			res.future = append(res.future, e.Name)
		}
		items = append(items, archive.RetentionItem{Name: e.Name, Time: e.Time.UTC(), Group: g, Current: e.Name == scope.current})
		paths[e.Name] = e.Path
	}
	res.decisions = archive.ApplyRetention(items, policy)
	if dryRun {
		return res, nil
	}
	for _, d := range res.decisions {
		if d.Keep || d.Current {
			continue
		}
		p := paths[d.Name]
		// Archive first: a leftover sidecar is harmless and list ignores it.
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("remove %s: %w", p, err)
		}
		if err := os.Remove(archive.SidecarPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("remove %s: %w", archive.SidecarPath(p), err)
		}
		res.removed = append(res.removed, d.Name)
	}
	if len(res.removed) > 0 {
		if err := fsx.SyncDir(dir); err != nil {
			return res, err
		}
	}
	return res, nil
}
