package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/kms"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// sourceOptions are the flags every read command shares.
type sourceOptions struct {
	decryptionConfig string
	kmsSocket        string
	prefix           string
	lockTimeout      time.Duration
	check            bool
	// for backup archives
	identity         string
	passFile         string
	tmpDir           string
	allowUnencrypted bool
	// for s3:// SOURCEs
	s3 s3Flags
}

func (o *sourceOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.decryptionConfig, "decryption-config", decryptionConfigDefault(),
		"EncryptionConfiguration file with the keys of values encrypted at rest (env ETCDSAFE_DECRYPTION_CONFIG)")
	fs.StringVar(&o.kmsSocket, "kms-socket", "",
		"unix socket of the KMS v2 plugin that decrypts kms values (overrides the endpoints of --decryption-config)")
	fs.StringVar(&o.prefix, "etcd-prefix", "/registry", "kube-apiserver's --etcd-prefix")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 2*time.Second, "how long to wait for a db another process holds")
	fs.BoolVar(&o.check, "check", false, "also run bbolt's page check over the whole file (the only check a db without SHA-256 trailer can have)")
	fs.StringVarP(&o.identity, "identity", "i", "", "for a backup archive: age identity file or unencrypted ssh key [$ETCDSAFE_IDENTITY]")
	fs.StringVar(&o.passFile, "passphrase-file", "", "for a backup archive: file holding its passphrase (or set ETCDSAFE_PASSPHRASE)")
	fs.StringVar(&o.tmpDir, "tmp-dir", "", "for a backup archive, standard input or an s3:// object: where the snapshot is staged (0700 dir, removed on exit)")
	fs.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "read an unencrypted (.tar.zst) archive: nothing proves who wrote it")
	o.s3.register(fs)
}

// openSource opens SOURCE with the read commands' flags, printing what
// source.Open has to say on stderr. An s3:// SOURCE is read from the
// bucket, its sidecar beside it.
func openSource(cmd *cobra.Command, path string, o *sourceOptions) (*source.Source, error) {
	stderr := cmd.ErrOrStderr()
	if p, ok := strings.CutPrefix(o.kmsSocket, "unix://"); !ok && strings.Contains(o.kmsSocket, "://") || ok && p == "" {
		return nil, usagef("--kms-socket %q: want a unix socket path or unix:///path", o.kmsSocket)
	}
	var in *source.Input
	if s3store.IsURL(path) {
		obj, err := openObject(cmd.Context(), &o.s3, path)
		if err != nil {
			return nil, err
		}
		defer obj.r.Close() // source.Open reads it to its end
		in = &source.Input{R: obj.r, Sidecar: obj.sidecar}
	}
	return source.Open(cmd.Context(), path, source.Options{
		// the connector dials a plugin on the first kms value only; one
		// serves every source of the run (see kmsConnectors)
		KMS:                  kmsConnectorFor(cmd.Context(), o.kmsSocket),
		DecryptionConfigPath: o.decryptionConfig, Prefix: o.prefix, LockTimeout: o.lockTimeout, Check: o.check,
		Identities:       func() ([]age.Identity, error) { return readIdentities(o.identity, o.passFile, stderr) },
		AllowUnencrypted: o.allowUnencrypted, TmpDir: o.tmpDir, Stdin: cmd.InOrStdin(), Input: in,
		OnSwept: sweptPrinter(stderr), OnSweepError: warnPrinter(stderr),
		OnUnencrypted: func(name string) {
			fmt.Fprintf(stderr, "etcdsafe: warning: %s is not encrypted: nothing proves who wrote it (read because of --allow-unencrypted)\n", termtext.Clean(name))
		},
		OnUnchecked: func(name, why string) {
			fmt.Fprintf(stderr, "etcdsafe: warning: %s %s: its integrity is unchecked; --check runs bbolt's page check\n", termtext.Clean(name), why)
		},
	})
}

// object is an S3 object opened for reading, with its sidecar.
type object struct {
	r *s3store.Reader
	// sidecar fetches the archive's sidecar (URL.json) when called.
	sidecar func() (*archive.Sidecar, error)
	// index opens the archive's key index (URL.index) when called.
	index func() (io.ReadCloser, error)
}

// openObject opens the object at url with the client f makes. The caller
// closes obj.r.
func openObject(ctx context.Context, f *s3Flags, url string) (*object, error) {
	c, err := f.clientFor(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	sidecar, err := objectSidecar(ctx, c, url)
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	bkt, name, err := c.Split(url)
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	index := func() (io.ReadCloser, error) { return bkt.Get(ctx, name+keyindex.Suffix) }
	return &object{r: r, sidecar: sidecar, index: index}, nil
}

// statObject reads an object's size and metadata without its content,
// with the function that fetches its sidecar.
func statObject(ctx context.Context, f *s3Flags, url string) (*s3store.Info, func() (*archive.Sidecar, error), error) {
	c, err := f.clientFor(ctx)
	if err != nil {
		return nil, nil, err
	}
	info, err := c.Stat(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	sidecar, err := objectSidecar(ctx, c, url)
	return info, sidecar, err
}

// objectSidecar returns the function that fetches the sidecar beside the
// object at url.
func objectSidecar(ctx context.Context, c *s3store.Client, url string) (func() (*archive.Sidecar, error), error) {
	bkt, name, err := c.Split(url)
	if err != nil {
		return nil, err
	}
	return func() (*archive.Sidecar, error) {
		rc, err := bkt.Get(ctx, name+archive.SidecarSuffix)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return archive.DecodeSidecar(rc, bkt.Where(name+archive.SidecarSuffix))
	}, nil
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

// kmsConnectors are the KMS v2 connectors of one run, by --kms-socket: the
// sources a command opens (diff's two, timeline's backups) share a
// plugin's connection and the data keys it unwrapped. run closes them.
type kmsConnectors struct {
	mu sync.Mutex
	by map[string]*kms.Connector
}

type kmsConnectorsKey struct{}

// withKMSConnectors returns ctx carrying a new set, and the function that
// closes them.
func withKMSConnectors(ctx context.Context) (context.Context, func()) {
	kc := &kmsConnectors{by: map[string]*kms.Connector{}}
	return context.WithValue(ctx, kmsConnectorsKey{}, kc), func() {
		kc.mu.Lock()
		defer kc.mu.Unlock()
		for _, c := range kc.by {
			_ = c.Close() // closing a client connection loses nothing
		}
		kc.by = map[string]*kms.Connector{}
	}
}

// kmsConnectorFor is the run's connector for socket (a new one when ctx
// carries no set: a command run outside run).
func kmsConnectorFor(ctx context.Context, socket string) *kms.Connector {
	kc, ok := ctx.Value(kmsConnectorsKey{}).(*kmsConnectors)
	if !ok {
		return kms.NewConnector(kms.Options{Socket: socket})
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	c, ok := kc.by[socket]
	if !ok {
		c = kms.NewConnector(kms.Options{Socket: socket})
		kc.by[socket] = c
	}
	return c
}
