package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/units"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
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
consistency check.

Kubernetes is the kube-apiserver version the file names, and where it was read: an archive's
kubernetes/manifests/kube-apiserver.yaml (image tag), ConfigMap kube-system/kubeadm-config,
Deckhouse's Secret kube-system/d8-cluster-configuration, or the kube-apiserver mirror Pods
in kube-system (image tag). get, dump and history --raw print objects as that version
serves them.` + exitStatus(exitRead...),
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
	// Kubernetes is the kube-apiserver version the file names; nil when
	// it names none.
	Kubernetes *kubernetesVersion `json:"kubernetes,omitempty"`
	*inspect.Status
}

// kubernetesVersion is a [source.ServerVersion] as status prints it.
type kubernetesVersion struct {
	Version string `json:"version"` // as written where it was found
	From    string `json:"from"`
}

func runStatus(cmd *cobra.Command, o *statusOptions, path string, out io.Writer) error {
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	// The trailer check (and the page check) run on their own core while
	// the status pass walks the buckets, and so does the search for the
	// kube-apiserver version (waited for before the source is closed).
	var sv source.ServerVersion
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// a db that does not read fails the status pass: its error is the one shown
		sv, _ = s.ServerVersion(cmd.Context(), 0)
	})
	st, err := s.Snapshot.Status(cmd.Context(), false)
	if err != nil {
		return s.Settle(cmd.Context(), err)
	}
	wg.Wait()
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
	if sv.Version != nil {
		rep.Kubernetes = &kubernetesVersion{Version: sv.Raw, From: sv.From}
	}
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
	if k := r.Kubernetes; k != nil {
		row("Kubernetes", fmt.Sprintf("%s (%s)", k.Version, k.From))
	} else {
		row("Kubernetes", "-")
	}
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
