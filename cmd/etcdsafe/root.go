package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/drill"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/restore"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// Exit codes, documented in the README and in --help.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitIntegrity   = 3
	exitKey         = 4
	exitLocked      = 5
	exitInterrupted = 130
)

// exitStatusHelp is the EXIT STATUS block of the root command: every code.
// Each command lists its own (see exitstatus.go).
var exitStatusHelp = exitStatus(exitRead...)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks errors in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// partialError: the command went on past per-object failures and reports
// them at the end; code is the most specific exit code among them.
type partialError struct {
	n    int
	code int
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%d object(s) could not be read (see the messages above)", e.n)
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "etcdsafe",
		Short: "Offline backup and forensic restore of etcd for Kubernetes control planes",
		Long: `etcdsafe reads etcd snapshots and data dirs directly (no etcd running), decodes the
Kubernetes objects in them (protobuf, JSON, CBOR, encrypted at rest) into clean YAML,
and shows history and deleted objects still in the file.

SOURCE is a snapshot file (with or without its SHA-256 trailer), a copied member/snap/db,
an etcd data dir, an etcdsafe backup archive, an archive or snapshot in a bucket
(s3://BUCKET/KEY, credentials from the AWS chain), or - for standard input. SOURCE is only ever
read, and nothing from it is printed before its SHA-256 trailer, when it has one, matched.` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newStatusCmd(), newLsCmd(), newGetCmd(), newDumpCmd(), newHistoryCmd())
	root.AddCommand(newBackupCmd(), newVerifyCmd(), newListCmd(), newPruneCmd(), newKeygenCmd())
	root.AddCommand(newRestoreCmd(), newManifestCmd())
	root.AddCommand(newDiffCmd(), newTimelineCmd(), newDuCmd())
	root.AddCommand(newDrillCmd())
	root.AddCommand(newVersionCmd(), newCompletionCmd(), newManCmd())
	root.CompletionOptions.DisableDefaultCmd = true // cmd_completion.go replaces it
	// cobra's own checks (argument counts, unknown commands) are usage
	// errors too: exit 2 with the hint, like a bad flag.
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			// a command group: bare, it shows its help; with an unknown
			// subcommand, a usage error (cobra would show the help, exit 0)
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usagef("unknown command %q for %q", args[0], c.CommandPath())
				}
				return nil
			}
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					if errors.As(err, new(usageError)) {
						return err
					}
					return usagef("%s: %w; usage: %s", c.CommandPath(), err, c.UseLine())
				}
				return nil
			}
		}
		completeChoices(c)
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	return root
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	ctx, closeKMS := withKMSConnectors(ctx)
	err := root.ExecuteContext(ctx)
	closeKMS()
	if err == nil {
		return exitOK
	}
	if errors.As(err, new(errDiffers)) {
		return exitFailure // diff --exit-code: the answer, not an error (as git diff)
	}
	code, hints := classify(ctx, err)
	if code == exitInterrupted {
		fmt.Fprintln(stderr, "etcdsafe: interrupted: stopped, and what this run had staged was removed")
		return code
	}
	fmt.Fprintf(stderr, "etcdsafe: error: %s\n", cleanMessage(err))
	for _, h := range hints {
		fmt.Fprintf(stderr, "etcdsafe: hint: %s\n", h)
	}
	return code
}

// classify maps an error to an exit code and hints: the one place that
// inspects errors.
func classify(ctx context.Context, err error) (int, []string) {
	var ue usageError
	var oe *backup.OptionsError    // backup's options contradict each other
	var se *inspect.SelectionError // TYPE/NAME/-n that select nothing sensible
	var pe *partialError
	var kms *decode.KMSError
	var dial *snapshot.DialError // a live etcd that cannot be reached, and why
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted, nil
	case errors.As(err, &ue), errors.Is(err, source.ErrSpecialFile), errors.As(err, &oe), errors.As(err, &se):
		return exitUsage, []string{"run 'etcdsafe help' for usage"}
	case errors.As(err, &pe):
		return pe.code, nil
	case errors.Is(err, fsx.ErrLocked):
		return exitLocked, []string{"another etcdsafe backup or prune is running on this directory; wait for it, or check the pid named above"}
	case errors.Is(err, archive.ErrWrongKey):
		return exitKey, []string{"pass the identity matching one of the archive's recipients with -i FILE or ETCDSAFE_IDENTITY (or the passphrase with --passphrase-file)"}
	case errors.Is(err, archive.ErrTruncated):
		return exitIntegrity, []string{"the archive is incomplete (cut off during copy or write), or damaged in its last 64 KiB; use another backup"}
	case errors.Is(err, archive.ErrTrailingData):
		return exitIntegrity, []string{"bytes follow the end of the archive; the file was appended to or concatenated"}
	case errors.Is(err, archive.ErrTampered):
		return exitIntegrity, []string{"the archive was damaged or modified after it was written; do not restore from it"}
	case errors.Is(err, archive.ErrUnsupportedVersion):
		return exitIntegrity, []string{"the archive was written by a newer etcdsafe; upgrade to read it"}
	case errors.Is(err, archive.ErrUnencrypted):
		return exitIntegrity, []string{"the archive is not encrypted, so nothing proves who wrote it; pass --allow-unencrypted only if it was written with --insecure-no-encryption on purpose"}
	case errors.Is(err, archive.ErrNotArchive):
		return exitIntegrity, []string{"this file is not an etcdsafe archive"}
	case errors.Is(err, restore.ErrEtcdRunning):
		return exitLocked, []string{"stop etcd first (move etcd.yaml out of the kubelet's manifest dir and wait for the container to exit), or pass --force if you are sure"}
	case errors.Is(err, restore.ErrNoTrailer):
		return exitIntegrity, []string{"a snapshot from 'etcdctl snapshot save' or an etcdsafe archive carries a checksum; a copied member/snap/db does not: pass --skip-hash-check if it is one, taken while etcd was stopped"}
	case errors.Is(err, restore.ErrMembership):
		return exitUsage, []string{"--name, --initial-advertise-peer-urls and --initial-cluster must agree with each other and with etcd's static pod manifest, or etcd crash-loops after the restore"}
	case errors.Is(err, restore.ErrConflict):
		return exitFailure, []string{"the files listed differ from the archive; compare them, then rerun with --force to replace them (the old ones are kept as hidden .NAME.etcdsafe-<time> files)"}
	case errors.Is(err, restore.ErrOverQuota):
		return exitFailure, []string{"nothing was moved: restore with --compact (only the newest revision of each key, defragmented), or raise --quota-backend-bytes in etcd's manifest (and pass it with --manifest)"}
	case errors.Is(err, restore.ErrBadManifest):
		return exitFailure, []string{"edit the manifest by hand, or name another one with --manifest"}
	case errors.Is(err, restore.ErrNoKubeDir):
		return exitUsage, []string{"--kube-dir needs a backup archive that holds a kube dir (etcdsafe backup --kube-dir)"}
	case errors.Is(err, restore.ErrNotDataDir):
		return exitUsage, []string{"nothing was moved: restore writes only where there is nothing, an empty directory or an etcd data dir (with member/snap/db); check --data-dir, or move that directory aside yourself if it really is etcd's"}
	case errors.Is(err, inspect.ErrLocked):
		return exitLocked, []string{"etcd holds this file: run etcdsafe on a snapshot ('etcdctl snapshot save') or a copy of member/snap/db"}
	case errors.Is(err, snapshot.ErrTrailerMismatch):
		return exitIntegrity, []string{"the file was changed or damaged after etcd wrote it: use another snapshot or backup; restore refuses it unless --skip-hash-check is given with a good reason"}
	case errors.Is(err, inspect.ErrTruncated), errors.Is(err, inspect.ErrCorrupt), errors.Is(err, inspect.ErrNotSnapshot), errors.Is(err, inspect.ErrNotEtcd):
		return exitIntegrity, []string{"the file is damaged or not an etcd db; 'etcdsafe status --check' tells more"}
	case errors.As(err, &kms):
		return exitKey, nil
	case errors.Is(err, decode.ErrEncrypted):
		return exitKey, []string{"pass the cluster's EncryptionConfiguration with --decryption-config"}
	case errors.Is(err, decode.ErrDecrypt), errors.Is(err, decode.ErrBadEncryptionConfig):
		return exitKey, []string{"check that --decryption-config is the file kube-apiserver used when these values were written"}
	case errors.Is(err, drill.ErrMismatch):
		return exitIntegrity, []string{"the restored etcd does not serve what the backup holds: do not rely on this backup; take another and drill it"}
	case errors.Is(err, archive.ErrDirTooLarge):
		return exitFailure, []string{"leave parts of the kube dir out with --exclude GLOB (repeatable), or back it up with another tool; no snapshot was taken"}
	case errors.As(err, new(*backup.OutputsError)):
		return exitFailure, []string{"the outputs printed above hold the archive; fix the others before the next run"}
	case errors.Is(err, store.ErrNoRetention):
		return exitUsage, []string{"create the bucket with object lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket), or drop --object-lock"}
	case errors.Is(err, s3store.ErrChecksum):
		return exitIntegrity, []string{"the object's bytes differ from what the server recorded when it was written: use another backup"}
	case errors.Is(err, s3store.ErrUnreachable), errors.Is(err, s3store.ErrNoBucket), errors.Is(err, s3store.ErrDenied):
		return exitFailure, nil // the message carries the hint
	case errors.As(err, &dial):
		return exitFailure, []string{dialHint(dial.Cause)}
	case errors.Is(err, os.ErrNotExist):
		return exitFailure, nil
	}
	return exitFailure, nil
}

// objectCode is the exit code one per-object failure contributes.
func objectCode(err error) int {
	switch {
	case errors.Is(err, decode.ErrEncrypted), errors.Is(err, decode.ErrDecrypt), errors.Is(err, decode.ErrKMS):
		return exitKey
	case errors.Is(err, decode.ErrBadRevision), errors.Is(err, decode.ErrBadKeyValue), errors.Is(err, decode.ErrBadValue):
		// a malformed record or value is damage (exit 3), not a bug
		return exitIntegrity
	}
	return exitFailure
}

// failures collects per-object errors: printed at once, summed up at the end.
type failures struct {
	w    io.Writer
	n    int
	code int
}

func (f *failures) add(key string, err error) {
	f.n++
	if c := objectCode(err); f.code == 0 || c > f.code && c != exitFailure {
		f.code = c
	}
	if key != "" {
		fmt.Fprintf(f.w, "etcdsafe: error: %s: %s\n", termtext.Clean(key), cleanMessage(err))
	} else {
		fmt.Fprintf(f.w, "etcdsafe: error: %s\n", cleanMessage(err))
	}
}

func (f *failures) addProblems(ps []inspect.Problem) {
	for _, p := range ps {
		f.add("", p)
	}
}

func (f *failures) err() error {
	if f.n == 0 {
		return nil
	}
	return &partialError{n: f.n, code: f.code}
}

// cleanMessage is err's text safe for a terminal: keys and names in it come
// from files, and may hold escape sequences. Line breaks (errors.Join) stay.
func cleanMessage(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = termtext.Clean(l)
	}
	return strings.Join(lines, "\n")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}
