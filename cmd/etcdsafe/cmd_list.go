package main

import (
	"github.com/etcdsafe/etcdsafe/store"

	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

type listBackupsOptions struct {
	output string
}

func newListCmd() *cobra.Command {
	o := &listBackupsOptions{}
	c := &cobra.Command{
		Use:   "list DIR",
		Short: "List the backups in a directory, newest first, without the key",
		Long: `List the backup archives written by 'etcdsafe backup --out DIR', newest first, with the
time, host, etcd revision and sizes read from their unencrypted sidecars. No key is needed.
An archive without a readable sidecar is listed with its file time and marked; 'prune'
never deletes such an archive.` + exitStatusHelp,
		Example: `  etcdsafe list /var/backups/etcd
  etcdsafe list /var/backups/etcd -o json | jq '.[0].archive'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runListBackups(cmd.Context(), o, args[0], cmd.OutOrStdout())
		},
	}
	addOutputFlag(c.Flags(), &o.output, "table", "json")
	return c
}

// listRow is the JSON form of one backup.
type listRow struct {
	Archive      string    `json:"archive"`
	Time         time.Time `json:"time"`
	Host         string    `json:"host,omitempty"`
	Cluster      string    `json:"cluster,omitempty"`
	Revision     int64     `json:"revision,omitempty"`
	ArchiveBytes int64     `json:"archiveBytes"`
	DBBytes      int64     `json:"dbBytes,omitempty"`
	Encrypted    *bool     `json:"encrypted,omitempty"`
	SidecarError string    `json:"sidecarError,omitempty"`
}

func runListBackups(ctx context.Context, o *listBackupsOptions, dir string, out io.Writer) error {
	entries, err := backup.List(ctx, store.NewLocal(dir))
	if err != nil {
		return err
	}
	rows := make([]listRow, 0, len(entries))
	for _, e := range entries {
		r := listRow{Archive: e.Name, Time: e.Time, ArchiveBytes: e.Size}
		if sc := e.Sidecar; sc != nil {
			enc := sc.Encrypted
			r.Host, r.Cluster, r.Revision, r.DBBytes, r.Encrypted = sc.Host, sc.Cluster, sc.Revision, sc.DBSize, &enc
		} else {
			r.SidecarError = e.SidecarErr.Error()
		}
		rows = append(rows, r)
	}
	if o.output == "json" {
		return printJSON(out, rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// CLUSTER and HOST are the group prune applies its rules to by default.
	fmt.Fprintln(tw, "TIME (UTC)\tCLUSTER\tHOST\tREVISION\tSNAPSHOT\tARCHIVE\tENCRYPTED\tNAME")
	for _, r := range rows {
		if r.Encrypted == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\t?\t%s (no sidecar: file time)\n",
				r.Time.Format("2006-01-02 15:04:05"), humanize.IBytes(uint64(r.ArchiveBytes)), termtext.Clean(r.Archive))
			continue
		}
		encr := "yes"
		if !*r.Encrypted {
			encr = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Time.Format("2006-01-02 15:04:05"),
			orDash(termtext.Clean(r.Cluster)), orDash(termtext.Clean(r.Host)),
			r.Revision, humanize.IBytes(uint64(r.DBBytes)), humanize.IBytes(uint64(r.ArchiveBytes)), encr, termtext.Clean(r.Archive))
	}
	return tw.Flush()
}
