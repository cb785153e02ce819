package main

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// Dynamic shell completion of the read commands: TYPE, NAME and -n are
// completed from the SOURCE already on the command line, opened read-only
// as the commands open it. Completion never prints an error (a shell
// would show it as a candidate): whatever fails completes nothing.

// completeTimeout bounds the work of one completion: a shell waits for it.
const completeTimeout = 5 * time.Second

// completeLockTimeout: a db a running etcd holds is not waited for.
const completeLockTimeout = 200 * time.Millisecond

// errNoKeyGiven: an archive is completed from only when -i or
// --passphrase-file is on the command line (decrypting needs the key, and
// completion should not pick one from the environment on its own).
var errNoKeyGiven = errors.New("completion: no -i or --passphrase-file for an archive")

// objectArgs says where TYPE and NAME sit in a command's arguments.
type objectArgs struct {
	// sources is the number of SOURCE arguments before TYPE; -1 is one or
	// more (timeline): the leading arguments that name existing files.
	sources int
	// names is how many separate NAME arguments may follow TYPE: 0 (only
	// TYPE/NAME), a number, or -1 for any.
	names int
	// slash offers "TYPE/" (no space after) instead of "TYPE": the command
	// needs TYPE/NAME.
	slash bool
}

// completeObjects makes c complete its TYPE and NAME arguments and its -n
// flag (when it has one) from the SOURCE on its command line.
func completeObjects(c *cobra.Command, o *sourceOptions, a objectArgs) {
	c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return a.complete(cmd, o, args, toComplete)
	}
	if c.Flags().Lookup("namespace") != nil {
		_ = c.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return a.completeNamespace(cmd, o, args, toComplete)
		})
	}
}

// split returns the SOURCE arguments and those after them; ok is false
// while SOURCEs are still being typed.
func (a objectArgs) split(args []string) (srcs, rest []string, ok bool) {
	if a.sources >= 0 {
		if len(args) < a.sources {
			return nil, nil, false
		}
		return args[:a.sources], args[a.sources:], true
	}
	n := 0
	for n < len(args) && isSourceArg(args[n]) {
		n++
	}
	return args[:n], args[n:], n > 0
}

// isSourceArg tells a SOURCE from a TYPE where either may stand.
func isSourceArg(arg string) bool {
	if arg == "-" || s3store.IsURL(arg) {
		return true
	}
	_, err := os.Stat(arg)
	return err == nil
}

func (a objectArgs) complete(cmd *cobra.Command, o *sourceOptions, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	srcs, rest, ok := a.split(args)
	if !ok || a.sources < 0 && len(rest) == 0 && !strings.Contains(toComplete, "/") && isSourceArg(toComplete) {
		return nil, cobra.ShellCompDirectiveDefault // a SOURCE: file names
	}
	if f := cmd.Flags().Lookup("key"); f != nil && f.Changed || cmd.Flags().Changed("prefix") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	fallback := cobra.ShellCompDirectiveNoFileComp
	if a.sources < 0 && len(rest) == 0 {
		fallback = cobra.ShellCompDirectiveDefault // maybe one more SOURCE
	}
	var out []string
	directive := cobra.ShellCompDirectiveNoFileComp
	withSelector(cmd, o, srcs[0], func(ctx context.Context, r *inspect.Selector) error {
		ns, _ := cmd.Flags().GetString("namespace")
		rev := revisionFlag(cmd)
		switch {
		case len(rest) == 0 && strings.Contains(toComplete, "/"): // TYPE/NA
			typ, prefix, _ := strings.Cut(toComplete, "/")
			names, err := namesOf(ctx, r, typ, ns, rev)
			for _, n := range names {
				if strings.HasPrefix(n, prefix) {
					out = append(out, typ+"/"+n)
				}
			}
			return err
		case len(rest) == 0: // TYPE
			types, err := r.Types(ctx, rev)
			for _, t := range types {
				if strings.HasPrefix(t, toComplete) {
					if a.slash {
						t += "/"
					}
					out = append(out, t)
				}
			}
			if a.slash {
				directive |= cobra.ShellCompDirectiveNoSpace
			}
			return err
		case !strings.Contains(rest[0], "/") && (a.names < 0 || len(rest) <= a.names): // TYPE NAME...
			names, err := namesOf(ctx, r, rest[0], ns, rev)
			for _, n := range names {
				if strings.HasPrefix(n, toComplete) && !slices.Contains(rest[1:], n) {
					out = append(out, n)
				}
			}
			return err
		}
		return nil
	})
	if len(out) == 0 {
		return nil, fallback
	}
	return out, directive
}

func (a objectArgs) completeNamespace(cmd *cobra.Command, o *sourceOptions, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	srcs, rest, ok := a.split(args)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	withSelector(cmd, o, srcs[0], func(ctx context.Context, r *inspect.Selector) error {
		sel := inspect.Selection{}
		if len(rest) > 0 {
			typ, _, _ := strings.Cut(rest[0], "/")
			res, err := r.Resolve(ctx, typ, revisionFlag(cmd))
			if err != nil {
				return err
			}
			sel.Resource = &res
		}
		nss, err := r.Namespaces(ctx, &sel, revisionFlag(cmd))
		for _, n := range nss {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return err
	})
	return out, cobra.ShellCompDirectiveNoFileComp
}

// namesOf returns the names of the objects of typ, in namespace ns or in
// every one.
func namesOf(ctx context.Context, r *inspect.Selector, typ, ns string, rev int64) ([]string, error) {
	sel, err := r.Select(ctx, inspect.SelectArgs{Args: []string{typ}, Namespace: ns, Revision: rev})
	if err != nil {
		return nil, err
	}
	return r.Names(ctx, &sel, rev)
}

func revisionFlag(cmd *cobra.Command) int64 {
	rev, _ := cmd.Flags().GetInt64("revision")
	return max(rev, 0)
}

// withSelector opens path read-only as the read commands do, within
// [completeTimeout], and calls fn with a selector over it. Standard input
// and s3:// SOURCEs are not read; an archive only with a key given on the
// command line. Errors are dropped (see cobra.CompDebugln for a trace).
func withSelector(cmd *cobra.Command, o *sourceOptions, path string, fn func(context.Context, *inspect.Selector) error) {
	if path == "-" || s3store.IsURL(path) {
		return
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	s, err := source.Open(ctx, path, source.Options{
		DecryptionConfigPath: o.decryptionConfig, Prefix: o.prefix, LockTimeout: completeLockTimeout,
		Identities: func() ([]age.Identity, error) {
			if o.identity == "" && o.passFile == "" {
				return nil, errNoKeyGiven
			}
			return readIdentities(o.identity, o.passFile, io.Discard)
		},
		AllowUnencrypted: o.allowUnencrypted, TmpDir: o.tmpDir, Stdin: strings.NewReader(""),
	})
	if err != nil {
		cobra.CompDebugln("open "+path+": "+err.Error(), false)
		return
	}
	defer s.Close()
	if err := fn(ctx, s.Selector(inspect.SelectorOptions{})); err != nil {
		cobra.CompDebugln(err.Error(), false)
	}
}
