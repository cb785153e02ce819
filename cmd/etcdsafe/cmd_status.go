package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/units"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

type statusOptions struct {
	src    sourceOptions
	output string
}

func newStatusCmd() *cobra.Command {
	o := &statusOptions{}
	c := &cobra.Command{
		Use:   "status SOURCE",
		Short: "Show revisions, members, key counts and integrity of a snapshot or data dir",
		Long: `Show what a snapshot holds: storage and cluster version, current and compacted revision,
consistent index and term, members, alarms, live keys, revisions, tombstones, db size and
space in use, and whether the SHA-256 trailer is present and matches. The hash and key count
are computed as 'etcdutl snapshot status' computes them. --check runs bbolt's full
consistency check.` + exitStatus(exitRead...),
		Example: `  etcdsafe status /var/backups/etcd/snapshot.db
  etcdsafe status /var/lib/etcd --check -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd, o, args[0], cmd.OutOrStdout())
		},
	}
	o.src.addFlags(c.Flags())
	addOutputFlag(c.Flags(), &o.output, "table", "json")
	return c
}

// statusReport is status plus the trailer verdict.
type statusReport struct {
	Source  string `json:"source"`
	DBPath  string `json:"dbPath"`
	Trailer string `json:"trailer"` // "verified", "MISMATCH", "absent ..."
	*inspect.Status
}

func runStatus(cmd *cobra.Command, o *statusOptions, path string, out io.Writer) error {
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	// The trailer check (and the page check) run on their own core while
	// the status pass walks the buckets.
	st, err := s.Snapshot.Status(cmd.Context(), false)
	if err != nil {
		return s.Settle(cmd.Context(), err)
	}
	if err := cmd.Context().Err(); err != nil {
		return err
	}
	verdict := s.Verdict(cmd.Context())
	var ce *inspect.CheckError
	if s.Checked() {
		st.CheckRun = true
		if errors.As(verdict, &ce) {
			st.CheckErrors = ce.Problems
		} else if verdict != nil {
			st.CheckErrors = []string{verdict.Error()}
		}
	}
	rep := statusReport{Source: path, DBPath: s.Snapshot.DBPath, Status: st}
	if s.Archive {
		rep.DBPath = "etcd/snapshot.db in the archive"
	}
	switch s.Trailer() {
	case snapshot.TrailerValid:
		rep.Trailer = "verified"
	case snapshot.TrailerMismatch:
		rep.Trailer = "MISMATCH"
	default:
		rep.Trailer = "absent (a raw db copy, or the trailer was cut)"
	}
	if o.output == "json" {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		printStatus(out, &rep)
	}
	switch {
	case verdict != nil:
		return verdict
	case len(st.Problems) > 0:
		return &partialError{n: len(st.Problems), code: exitIntegrity}
	}
	return nil
}

func printStatus(out io.Writer, r *statusReport) {
	st := r.Status
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("Source", r.Source)
	if r.DBPath != r.Source {
		row("DB file", r.DBPath)
	}
	row("Storage version", orDash(st.StorageVersion))
	row("Cluster version", orDash(st.ClusterVersion))
	row("Revision", st.Revision)
	row("Compacted revision", st.CompactRevision)
	if st.ScheduledCompactRevision != st.CompactRevision {
		row("Scheduled compaction", st.ScheduledCompactRevision)
	}
	row("Consistent index", st.ConsistentIndex)
	row("Raft term", st.Term)
	for i, m := range st.Members {
		role := "voter"
		if m.IsLearner {
			role = "learner"
		}
		label := ""
		if i == 0 {
			label = "Members"
		}
		row(label, fmt.Sprintf("%s %s (%s) peers=%s", m.IDString(), orDash(m.Name), role, strings.Join(m.PeerURLs, ",")))
	}
	if len(st.Members) == 0 {
		row("Members", "-")
	}
	if len(st.RemovedMembers) > 0 {
		row("Removed members", strings.Join(st.RemovedMembers, ","))
	}
	alarms := "none"
	if len(st.Alarms) > 0 {
		var a []string
		for _, al := range st.Alarms {
			a = append(a, fmt.Sprintf("%s (member %x)", al.Type, al.MemberID))
		}
		alarms = strings.Join(a, ", ")
	}
	row("Alarms", alarms)
	row("Live keys", st.LiveKeys)
	row("Revisions", st.Revisions)
	row("Tombstones", st.Tombstones)
	row("File size", humanBytes(st.FileSize))
	row("DB size", fmt.Sprintf("%s (in use %s)", humanBytes(st.DBSize), humanBytes(st.DBSizeInUse)))
	row("Hash (etcdutl)", fmt.Sprintf("%x", st.Hash))
	row("SHA-256 trailer", r.Trailer)
	if st.CheckRun {
		if len(st.CheckErrors) == 0 {
			row("Consistency check", "ok")
		} else {
			row("Consistency check", fmt.Sprintf("%d error(s)", len(st.CheckErrors)))
			for _, e := range st.CheckErrors {
				row("", e)
			}
		}
	}
	for _, p := range st.Problems {
		row("Problem", p)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanBytes is units.Bytes under the name the commands use.
var humanBytes = units.Bytes
