package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCmd replaces cobra's default completion command: the same
// generator, for the shells etcdsafe is packaged for, with where each
// script goes. Dynamic completion (TYPE, NAME and -n from the SOURCE on the
// command line) is in complete.go.
func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the completion script for bash, zsh or fish. Besides commands and flags, it completes
TYPE, NAME and -n NAMESPACE from the SOURCE already on the command line: a snapshot, a db
or a data dir is opened read-only for it (for at most 5 seconds); a backup archive only
when -i or --passphrase-file is on the command line; standard input and s3:// SOURCEs
never.

The .deb and .rpm packages install the scripts where each shell finds them:
/usr/share/bash-completion/completions/etcdsafe, /usr/share/zsh/vendor-completions/_etcdsafe
and /usr/share/fish/vendor_completions.d/etcdsafe.fish.` + exitStatus(exitLocal...),
		Example: `  source <(etcdsafe completion bash)
  etcdsafe completion zsh > "${fpath[1]}/_etcdsafe"
  etcdsafe completion fish > ~/.config/fish/completions/etcdsafe.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(out, true)
			case "zsh":
				err = root.GenZshCompletion(out)
			case "fish":
				err = root.GenFishCompletion(out, true)
			}
			if err != nil {
				return fmt.Errorf("write %s completion: %w", args[0], err)
			}
			return nil
		},
	}
}
