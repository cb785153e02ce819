package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/restore"
)

func newManifestCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "manifest",
		Short: "Edit etcd's static pod manifest safely",
	}
	c.AddCommand(newForceNewClusterCmd())
	return c
}

type forceNewClusterOptions struct {
	on, off bool
}

func newForceNewClusterCmd() *cobra.Command {
	o := &forceNewClusterOptions{}
	c := &cobra.Command{
		Use:   "force-new-cluster --on|--off [FILE]",
		Short: "Add or remove --force-new-cluster in etcd's static pod manifest",
		Long: `Add (--on) or remove (--off) the --force-new-cluster flag of the etcd container in
FILE (default ` + restore.DefaultManifestPath + `). Every other byte of the file is kept:
the flag's line is inserted after the --name line, with the same indentation, or deleted.
The file is written atomically with its mode and owner, after its previous content is
copied to the hidden .NAME.etcdsafe-<UTC time> beside it (hidden, so the kubelet does not
run it as a second pod). Nothing is written if the flag is already as asked.

--force-new-cluster makes etcd drop every other member on start. Remove it (--off) as soon
as the member is up, or each restart forgets members added since.` + exitStatus(exitLocal...),
		Example: `  etcdsafe manifest force-new-cluster --on
  etcdsafe manifest force-new-cluster --off /etc/kubernetes/manifests/etcd.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := restore.DefaultManifestPath
			if len(args) == 1 {
				path = args[0]
			}
			return runForceNewCluster(o, path, cmd.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&o.on, "on", false, "add --force-new-cluster")
	c.Flags().BoolVar(&o.off, "off", false, "remove --force-new-cluster")
	return c
}

func runForceNewCluster(o *forceNewClusterOptions, path string, out io.Writer) error {
	if o.on == o.off {
		return usagef("give exactly one of --on and --off")
	}
	ed, err := restore.EditForceNewCluster(path, o.on, nil)
	if err != nil {
		return err
	}
	state := "off"
	if o.on {
		state = "on"
	}
	if !ed.Changed {
		fmt.Fprintf(out, "%s: --force-new-cluster is already %s; nothing written\n", path, state)
		return nil
	}
	fmt.Fprintf(out, "%s: --force-new-cluster is now %s (previous file kept as %s)\n", path, state, ed.Backup)
	return nil
}
