package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
)

type keygenOptions struct {
	out    string
	x25519 bool
}

func newKeygenCmd() *cobra.Command {
	o := &keygenOptions{}
	c := &cobra.Command{
		Use:   "keygen [-o FILE]",
		Short: "Generate an age identity for encrypting backups",
		Long: `Generate a new age identity, post-quantum hybrid (ML-KEM-768 + X25519, recipient
"age1pq1...") unless --x25519 is given. With -o the identity is written to a new file with
mode 0600 (an existing file is never replaced) and the recipient is printed on stdout; without
-o the identity file goes to stdout and the recipient to stderr, as age-keygen does.
The file works with 'age -d -i FILE' (age v1.3 or later for post-quantum keys).
Keep the identity off the cluster; give 'backup -r' only the recipient.` + exitStatus(exitLocal...),
		Example: `  etcdsafe keygen -o /root/etcd-backup.key
  etcdsafe backup -r "$(etcdsafe keygen -o key.txt)" --out /var/backups/etcd`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeygen(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&o.out, "output", "o", "", "write the identity to this new file (mode 0600)")
	c.Flags().BoolVar(&o.x25519, "x25519", false, "classic X25519 key instead of the post-quantum hybrid")
	return c
}

func runKeygen(o *keygenOptions, stdout, stderr io.Writer) error {
	id, err := archive.GenerateIdentity(!o.x25519)
	if err != nil {
		return err
	}
	if o.out == "" {
		if _, err := stdout.Write(id.File(time.Now())); err != nil {
			return fmt.Errorf("write identity: %w", err)
		}
		fmt.Fprintf(stderr, "Public key: %s\n", id.Recipient())
		return nil
	}
	if err := archive.WriteIdentityFile(o.out, id); err != nil {
		return err
	}
	fmt.Fprintln(stdout, id.Recipient())
	return nil
}
