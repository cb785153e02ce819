package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

type listBackupsOptions struct {
	output string
	s3     s3Flags
}

func newListCmd() *cobra.Command {
	o := &listBackupsOptions{}
	c := &cobra.Command{
		Use:   "list DIR|s3://BUCKET/PREFIX",
		Short: "List the backups in a directory or a bucket, newest first, without the key",
		Long: `List the backup archives written by 'etcdsafe backup --out DIR', newest first, with the
time, host, etcd revision and sizes read from their unencrypted sidecars. No key is needed.
An archive without a readable sidecar is listed with its file time and marked; 'prune'
never deletes such an archive.

list s3://BUCKET/PREFIX shows a fleet: the archives directly under PREFIX and under each
prefix one level down (backup --out s3://BUCKET/PREFIX writes under PREFIX/<cluster or
host>/), one cluster after the other, each newest first, with the object lock of each
archive (LOCK: its mode and end, or - for none or one that has ended). NAME is the key
below PREFIX.` + exitStatus(exitOK, exitFailure, exitUsage, exitIntegrity, exitInterrupted),
		Example: `  etcdsafe list /var/backups/etcd
  etcdsafe list /var/backups/etcd -o json | jq '.[0].archive'
  etcdsafe list s3://etcd-backups/fleet --s3-endpoint https://minio.example.com:9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s3store.IsURL(args[0]) {
				return runListBucket(cmd.Context(), o, args[0], cmd.OutOrStdout())
			}
			return runListBackups(cmd.Context(), o, args[0], cmd.OutOrStdout())
		},
	}
	addOutputFlag(c.Flags(), &o.output, "table", "json")
	o.s3.register(c.Flags())
	return c
}

// listRow is the JSON form of one backup. URL and Lock are set for
// archives in a bucket only.
type listRow struct {
	Archive      string    `json:"archive"`
	URL          string    `json:"url,omitempty"`
	Time         time.Time `json:"time"`
	Host         string    `json:"host,omitempty"`
	Cluster      string    `json:"cluster,omitempty"`
	Revision     int64     `json:"revision,omitempty"`
	ArchiveBytes int64     `json:"archiveBytes"`
	DBBytes      int64     `json:"dbBytes,omitempty"`
	Encrypted    *bool     `json:"encrypted,omitempty"`
	Lock         *listLock `json:"lock,omitempty"`
	// Index: a key index (ARCHIVE.index) lies beside the archive.
	Index        bool   `json:"index"`
	SidecarError string `json:"sidecarError,omitempty"`

	name string // the table's NAME: the key below the listed prefix
}

// listLock is an archive's object lock; it protects the archive while
// Until is ahead.
type listLock struct {
	Mode  string    `json:"mode"` // governance or compliance
	Until time.Time `json:"until"`
}

func newListRow(e backup.Entry) listRow {
	r := listRow{Archive: e.Name, Time: e.Time, ArchiveBytes: e.Size, Index: e.Index, name: e.Name}
	if sc := e.Sidecar; sc != nil {
		enc := sc.Encrypted
		r.Host, r.Cluster, r.Revision, r.DBBytes, r.Encrypted = sc.Host, sc.Cluster, sc.Revision, sc.DBSize, &enc
	} else {
		r.SidecarError = e.SidecarErr.Error()
	}
	if rt := e.Retention; rt != nil {
		r.Lock = &listLock{Mode: strings.ToLower(rt.Mode), Until: rt.Until.UTC()}
	}
	return r
}

func runListBackups(ctx context.Context, o *listBackupsOptions, dir string, out io.Writer) error {
	entries, err := backup.List(ctx, store.NewLocal(dir))
	if err != nil {
		return err
	}
	rows := make([]listRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, newListRow(e))
	}
	if o.output == "json" {
		return printJSON(out, rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// CLUSTER and HOST are the group prune applies its rules to by default.
	fmt.Fprintln(tw, "TIME (UTC)\tCLUSTER\tHOST\tREVISION\tSNAPSHOT\tARCHIVE\tINDEX\tENCRYPTED\tNAME")
	for _, r := range rows {
		if r.Encrypted == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\t%s\t?\t%s (no sidecar: file time)\n",
				r.Time.Format("2006-01-02 15:04:05"), humanize.IBytes(uint64(r.ArchiveBytes)), yesNo(r.Index), termtext.Clean(r.Archive))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format("2006-01-02 15:04:05"),
			orDash(termtext.Clean(r.Cluster)), orDash(termtext.Clean(r.Host)),
			r.Revision, humanize.IBytes(uint64(r.DBBytes)), humanize.IBytes(uint64(r.ArchiveBytes)), yesNo(r.Index), encryptedWord(*r.Encrypted), termtext.Clean(r.Archive))
	}
	return tw.Flush()
}

// yesNo says whether an archive has a key index.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func encryptedWord(enc bool) string {
	if enc {
		return "yes"
	}
	return "NO"
}

// runListBucket lists a fleet: the archives under the prefix and one
// level down, cluster by cluster.
func runListBucket(ctx context.Context, o *listBackupsOptions, url string, out io.Writer) error {
	fleet, err := listFleet(ctx, &o.s3, url)
	if err != nil {
		return err
	}
	rows := []listRow{}
	for _, f := range fleet {
		r := newListRow(f.Entry)
		r.URL = f.Where
		if f.dir != "" {
			r.name = f.dir + "/" + f.Name
		}
		rows = append(rows, r)
	}
	if o.output == "json" {
		return printJSON(out, rows)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tHOST\tTIME (UTC)\tREVISION\tSNAPSHOT\tSIZE\tINDEX\tENCRYPTED\tLOCK\tNAME")
	for _, r := range rows {
		lock := "-"
		if l := r.Lock; l != nil && l.Until.After(now) {
			lock = l.Mode + " until " + l.Until.Format("2006-01-02 15:04:05")
		}
		if r.Encrypted == nil {
			fmt.Fprintf(tw, "-\t-\t%s\t-\t-\t%s\t%s\t?\t%s\t%s (no sidecar: object time)\n",
				r.Time.Format("2006-01-02 15:04:05"), humanize.IBytes(uint64(r.ArchiveBytes)), yesNo(r.Index), lock, termtext.Clean(r.name))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(termtext.Clean(r.Cluster)), orDash(termtext.Clean(r.Host)),
			r.Time.Format("2006-01-02 15:04:05"), r.Revision, humanize.IBytes(uint64(r.DBBytes)), humanize.IBytes(uint64(r.ArchiveBytes)),
			yesNo(r.Index), encryptedWord(*r.Encrypted), lock, termtext.Clean(r.name))
	}
	return tw.Flush()
}

// fleetEntry is an archive of a fleet and the directory (a cluster, ""
// for the prefix itself) it is in.
type fleetEntry struct {
	backup.Entry
	dir string
}

// listFleet lists the archives under an s3:// prefix and one level down
// (see s3store.Bucket.Tree), directory by directory, each newest first.
func listFleet(ctx context.Context, f *s3Flags, url string) ([]fleetEntry, error) {
	root, err := bucketOf(ctx, f, url)
	if err != nil {
		return nil, err
	}
	tree, err := root.Tree(ctx)
	if err != nil {
		return nil, err
	}
	var out []fleetEntry
	for _, d := range tree {
		entries, err := backup.List(ctx, d.Bucket)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out = append(out, fleetEntry{Entry: e, dir: d.Name})
		}
	}
	return out, nil
}

// bucketOf is the target of an s3://BUCKET/PREFIX argument; an URL that
// names an archive is refused, since list and prune take a prefix.
func bucketOf(ctx context.Context, f *s3Flags, url string) (*s3store.Bucket, error) {
	bucket, prefix, err := s3store.ParseURL(url)
	if err != nil {
		return nil, usageError{err}
	}
	if !strings.HasSuffix(prefix, "/") && backup.IsArchiveName(prefix[strings.LastIndex(prefix, "/")+1:]) {
		return nil, usagef("%s names an archive: give the prefix that holds it", url)
	}
	client, err := f.clientFor(ctx)
	if err != nil {
		return nil, err
	}
	return client.Bucket(bucket, prefix), nil
}
