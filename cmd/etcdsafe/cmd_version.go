package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/internal/buildinfo"
)

// commit and commitTime are set by the release build with -ldflags
// "-X main.commit=... -X main.commitTime=..." (see scripts/release.sh), as
// version is; without them, the build's version control information is
// used when it has any.
var (
	commit     string
	commitTime string
)

type versionOptions struct {
	output string
}

func newVersionCmd() *cobra.Command {
	o := &versionOptions{}
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and the versions of the main modules",
		Long: `Print what this binary was built from: its version, commit and commit time (set by the
release build), whether the tree had uncommitted changes, the Go toolchain and platform, and
the versions of the modules that decide what etcdsafe reads and writes: etcd's server (the
db format), k8s.io/apimachinery (object decoding), age (archive encryption) and the AWS S3
client. Include it in bug reports.` + exitStatus(exitLocal...),
		Example: `  etcdsafe version
  etcdsafe version -o json | jq -r .commit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(o, cmd.OutOrStdout())
		},
	}
	addOutputFlag(c.Flags(), &o.output, "text", "json")
	return c
}

func runVersion(o *versionOptions, out io.Writer) error {
	in := buildinfo.Read(buildinfo.Linked{Version: version, Commit: commit, CommitTime: commitTime})
	if o.output == "json" {
		return printJSON(out, in)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\n", in.Version)
	c := in.Commit
	if c == "" {
		c = "unknown"
	}
	if in.Modified {
		c += " (with uncommitted changes)"
	}
	fmt.Fprintf(tw, "commit:\t%s\n", c)
	t := "unknown"
	if !in.CommitTime.IsZero() {
		t = in.CommitTime.Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "commit time:\t%s\n", t)
	fmt.Fprintf(tw, "go:\t%s %s\n", in.GoVersion, in.Platform)
	for _, m := range in.Modules {
		fmt.Fprintf(tw, "%s\t%s\n", m.Path, m.Version)
	}
	return tw.Flush()
}
