package main

import (
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/source"
)

// sourceOptions are the flags every read command shares.
type sourceOptions struct {
	decryptionConfig string
	prefix           string
	lockTimeout      time.Duration
	check            bool
	// for backup archives
	identity         string
	passFile         string
	tmpDir           string
	allowUnencrypted bool
}

func (o *sourceOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.decryptionConfig, "decryption-config", decryptionConfigDefault(),
		"EncryptionConfiguration file with the keys of values encrypted at rest (env ETCDSAFE_DECRYPTION_CONFIG)")
	fs.StringVar(&o.prefix, "etcd-prefix", "/registry", "kube-apiserver's --etcd-prefix")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 2*time.Second, "how long to wait for a db another process holds")
	fs.BoolVar(&o.check, "check", false, "also run bbolt's page check over the whole file (the only check a db without SHA-256 trailer can have)")
	fs.StringVarP(&o.identity, "identity", "i", "", "for a backup archive: age identity file or unencrypted ssh key [$ETCDSAFE_IDENTITY]")
	fs.StringVar(&o.passFile, "passphrase-file", "", "for a backup archive: file holding its passphrase (or set ETCDSAFE_PASSPHRASE)")
	fs.StringVar(&o.tmpDir, "tmp-dir", "", "for a backup archive or standard input: where the snapshot is staged (0700 dir, removed on exit)")
	fs.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "read an unencrypted (.tar.zst) archive: nothing proves who wrote it")
}

// openSource opens SOURCE with the read commands' flags, printing what
// source.Open has to say on stderr.
func openSource(cmd *cobra.Command, path string, o *sourceOptions) (*source.Source, error) {
	stderr := cmd.ErrOrStderr()
	return source.Open(cmd.Context(), path, source.Options{
		DecryptionConfigPath: o.decryptionConfig, Prefix: o.prefix, LockTimeout: o.lockTimeout, Check: o.check,
		Identities:       func() ([]age.Identity, error) { return readIdentities(o.identity, o.passFile, stderr) },
		AllowUnencrypted: o.allowUnencrypted, TmpDir: o.tmpDir, Stdin: cmd.InOrStdin(),
		OnSwept: sweptPrinter(stderr), OnSweepError: warnPrinter(stderr),
		OnUnencrypted: func(name string) {
			fmt.Fprintf(stderr, "etcdsafe: warning: %s is not encrypted: nothing proves who wrote it (read because of --allow-unencrypted)\n", termtext.Clean(name))
		},
		OnUnchecked: func(name, why string) {
			fmt.Fprintf(stderr, "etcdsafe: warning: %s %s: its integrity is unchecked; --check runs bbolt's page check\n", termtext.Clean(name), why)
		},
	})
}

// sweptPrinter says that a staging dir a killed run left was removed.
func sweptPrinter(stderr io.Writer) func(dir string) {
	return func(dir string) {
		fmt.Fprintf(stderr, "etcdsafe: removed %s, left by an interrupted run\n", termtext.Clean(dir))
	}
}

// warnPrinter prints an error that did not stop the command as a warning.
func warnPrinter(stderr io.Writer) func(error) {
	return func(err error) { fmt.Fprintf(stderr, "etcdsafe: warning: %v\n", err) }
}

// newSelector is the selection engine over s for one command: CRDs it
// cannot learn and records it cannot read go to fails, and a revision
// older than the last compaction is warned of.
func newSelector(cmd *cobra.Command, s *source.Source, fails *failures) *inspect.Selector {
	stderr := cmd.ErrOrStderr()
	return s.Selector(inspect.SelectorOptions{OnProblem: fails.add,
		OnCompacted: func(rev, c int64) {
			fmt.Fprintf(stderr, "etcdsafe: warning: revision %d is older than the last compaction (%d): the file no longer holds the objects that changed between the two, so they are missing here\n", rev, c)
		}})
}
