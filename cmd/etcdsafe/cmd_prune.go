package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

type pruneOptions struct {
	keep   archive.RetentionPolicy
	dryRun bool
}

func newPruneCmd() *cobra.Command {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune DIR --keep-last N | --keep-daily N | --keep-weekly N | --keep-monthly N [--dry-run]",
		Short: "Delete old backups by a grandfather-father-son policy, without the key",
		Long: `Delete the backups in DIR that no --keep-* rule keeps, as restic's 'forget' does: each rule
keeps the newest backup of each of its last N periods (UTC days, ISO weeks, months) that hold
one, --keep-last the N newest; -1 means every period. A backup kept by any rule stays. Times
come from the sidecars; archives without a readable sidecar are never deleted. The directory
lock keeps prune and backup from running at once.` + exitStatusHelp,
		Example: `  etcdsafe prune /var/backups/etcd --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.keep.Empty() {
				return usagef("give at least one --keep-* rule (prune never deletes everything)")
			}
			if o.keep.Last < 0 || o.keep.Daily < -1 || o.keep.Weekly < -1 || o.keep.Monthly < -1 {
				return usagef("--keep-last must be >= 0, the other --keep-* >= -1 (-1 = all)")
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
	return c
}

func runPrune(o *pruneOptions, dir string, out, stderr io.Writer) error {
	unlock, err := fsx.Lock(dir)
	if err != nil {
		return fmt.Errorf("%s is locked: %w", dir, err)
	}
	defer unlock()
	res, err := pruneBackups(dir, o.keep, o.dryRun)
	for _, u := range res.unmanaged {
		fmt.Fprintf(stderr, "etcdsafe: warning: %s has no readable sidecar; kept\n", u)
	}
	verb := "remove"
	if o.dryRun {
		verb = "would remove"
	}
	for _, d := range res.decisions {
		if d.Keep {
			fmt.Fprintf(out, "keep          %s  %s (%s)\n", d.Time.Format("2006-01-02 15:04:05"), d.Name, strings.Join(d.Reasons, ", "))
		} else {
			fmt.Fprintf(out, "%-13s %s  %s\n", verb, d.Time.Format("2006-01-02 15:04:05"), d.Name)
		}
	}
	return err
}

type pruneResult struct {
	decisions []archive.RetentionDecision // newest first
	removed   []string
	unmanaged []string // archives without a usable sidecar, always kept
}

// pruneBackups applies policy to dir's backups and, unless dryRun,
// deletes each archive the policy drops and then its sidecar. The caller
// holds the directory lock. It stops at the first failed deletion.
func pruneBackups(dir string, policy archive.RetentionPolicy, dryRun bool) (pruneResult, error) {
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
	for _, e := range entries {
		if e.Sidecar == nil {
			res.unmanaged = append(res.unmanaged, e.Name)
			continue
		}
		items = append(items, archive.RetentionItem{Name: e.Name, Time: e.Time.UTC()})
		paths[e.Name] = e.Path
	}
	res.decisions = archive.ApplyRetention(items, policy)
	if dryRun {
		return res, nil
	}
	for _, d := range res.decisions {
		if d.Keep {
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
