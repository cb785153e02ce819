package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
)

// sourceOptions are the flags every read command shares.
type sourceOptions struct {
	decryptionConfig string
	prefix           string
	lockTimeout      time.Duration
	// for backup archives
	identity string
	passFile string
	tmpDir   string
}

func (o *sourceOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.decryptionConfig, "decryption-config", os.Getenv("ETCDSAFE_DECRYPTION_CONFIG"),
		"EncryptionConfiguration file with the keys of values encrypted at rest (env ETCDSAFE_DECRYPTION_CONFIG)")
	fs.StringVar(&o.prefix, "etcd-prefix", "/registry", "kube-apiserver's --etcd-prefix")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 2*time.Second, "how long to wait for a db another process holds")
	fs.StringVarP(&o.identity, "identity", "i", "", "for a backup archive: age identity file or unencrypted ssh key [$ETCDSAFE_IDENTITY]")
	fs.StringVar(&o.passFile, "passphrase-file", "", "for a backup archive: file holding its passphrase (or set ETCDSAFE_PASSPHRASE)")
	fs.StringVar(&o.tmpDir, "tmp-dir", "", "for a backup archive: where its snapshot is extracted (0600, removed on exit)")
}

// source is an opened SOURCE with what is needed to decode its objects.
type source struct {
	snap      *inspect.Snapshot
	dec       *decode.Decoder
	table     *decode.ResourceTable
	prefix    string
	crdLoaded bool
	cleanup   func()
	archive   bool // the db was extracted from a backup archive
}

func openSource(cmd *cobra.Command, path string, o *sourceOptions) (_ *source, err error) {
	var dcr *decode.Decrypter
	if o.decryptionConfig != "" {
		b, err := os.ReadFile(o.decryptionConfig)
		if err != nil {
			return nil, fmt.Errorf("read decryption config: %w", err)
		}
		if dcr, err = decode.ParseEncryptionConfig(b); err != nil {
			return nil, fmt.Errorf("decryption config %s: %w", o.decryptionConfig, err)
		}
	}
	dbPath, cleanup := path, func() {}
	if a, _, _ := archive.SniffFile(path); a {
		as, err := openArchive(cmd.Context(), path, o, cmd.ErrOrStderr())
		if err != nil {
			return nil, err
		}
		dbPath, cleanup = as.dbPath, as.cleanup
		defer func() {
			if err != nil {
				cleanup()
			}
		}()
		if dcr == nil && as.encConfig != nil {
			// the cluster's own keys, from the backed-up kube dir
			if dcr, err = decode.ParseEncryptionConfig(as.encConfig); err != nil {
				return nil, fmt.Errorf("archive's kubernetes/%s: %w", as.encName, err)
			}
		}
	}
	snap, err := inspect.Open(dbPath, inspect.OpenOptions{LockTimeout: o.lockTimeout})
	if err != nil {
		return nil, err
	}
	return &source{snap: snap, dec: decode.NewDecoder(dcr), table: decode.BuiltinResources(),
		prefix: strings.TrimSuffix(o.prefix, "/"), cleanup: cleanup, archive: dbPath != path}, nil
}

// Close closes the db and removes what an archive was extracted to.
func (s *source) Close() error {
	err := s.snap.Close()
	s.cleanup()
	return err
}

// loadCRDs teaches the resource table the custom resources defined by the
// CRDs in the file itself (as of revision rev, 0 = newest).
func (s *source) loadCRDs(ctx context.Context, rev int64, fails *failures) error {
	if s.crdLoaded {
		return nil
	}
	s.crdLoaded = true
	entries, _, err := s.snap.Index(ctx, inspect.Query{Prefixes: [][]byte{[]byte(s.crdPrefix())}, Revision: rev})
	if err != nil {
		return err
	}
	for _, e := range entries {
		s.learnCRD(e, fails)
	}
	return nil
}

func (s *source) crdPrefix() string {
	return s.prefix + "/apiextensions.k8s.io/customresourcedefinitions/"
}

// learnCRD adds the custom resource the CRD at e defines.
func (s *source) learnCRD(e inspect.Entry, fails *failures) {
	v, err := s.decodeEntry(e)
	if err != nil {
		fails.add(e.Key, fmt.Errorf("CRD not learned: %w", err))
		return
	}
	if err := s.table.AddCRD(v.Object); err != nil {
		fails.add(e.Key, fmt.Errorf("CRD not learned: %w", err))
	}
}

func (s *source) decodeEntry(e inspect.Entry) (*decode.Value, error) {
	rec, err := s.snap.Get(e.Rev)
	if err != nil {
		return nil, err
	}
	return s.dec.Decode(rec.Key, rec.Value)
}

// resolve turns a kubectl-style TYPE into a resource, learning the CRDs in
// the file when the type is not built in.
func (s *source) resolve(ctx context.Context, typ string, rev int64, fails *failures) (decode.Resource, error) {
	r, err := s.table.Resolve(typ)
	if err == nil || !errors.Is(err, decode.ErrUnknownResource) {
		return r, err
	}
	if err := s.loadCRDs(ctx, rev, fails); err != nil {
		return decode.Resource{}, err
	}
	r, err = s.table.Resolve(typ)
	if err != nil {
		return decode.Resource{}, usageError{err}
	}
	return r, nil
}

// selector is what a TYPE[/NAME] -n NS -A --prefix command line selects.
type selector struct {
	resource  *decode.Resource
	names     []string
	namespace string // "" = all namespaces
	rawPrefix string // --prefix
}

// query builds the index query for the selection.
func (s *source) query(sel selector, rev int64, deleted bool) inspect.Query {
	q := inspect.Query{Revision: rev, Deleted: deleted}
	switch {
	case sel.rawPrefix != "":
		q.Prefixes = [][]byte{[]byte(sel.rawPrefix)}
	case sel.resource == nil:
		// everything, special keys such as compact_rev_key included
	case len(sel.names) > 0 && sel.namespace != "" || len(sel.names) > 0 && !sel.resource.Namespaced:
		for _, n := range sel.names {
			q.Prefixes = append(q.Prefixes, []byte(s.table.KeyPrefix(s.prefix, *sel.resource, sel.namespace)+n))
		}
	default:
		q.Prefixes = [][]byte{[]byte(s.table.KeyPrefix(s.prefix, *sel.resource, sel.namespace))}
	}
	return q
}

// keep filters index entries by the exact names wanted (a prefix query for
// "api" also matches "api-headless").
func (s *source) keep(sel selector, e inspect.Entry) (decode.KeyInfo, bool) {
	ki, ok := s.table.ForKey(s.prefix, e.Key)
	if sel.resource == nil || sel.rawPrefix != "" {
		// -n without TYPE: only the namespaced objects of that namespace
		return ki, sel.namespace == "" || ok && ki.Namespace == sel.namespace
	}
	if !ok || ki.Resource.KeyPath != sel.resource.KeyPath {
		return ki, false
	}
	if sel.namespace != "" && ki.Namespace != sel.namespace {
		return ki, false
	}
	if len(sel.names) == 0 {
		return ki, true
	}
	for _, n := range sel.names {
		if ki.Name == n {
			return ki, true
		}
	}
	return ki, false
}

// parseTypeArgs reads "TYPE", "TYPE/NAME", "TYPE NAME..." like kubectl.
func parseTypeArgs(args []string) (typ string, names []string, err error) {
	if len(args) == 0 {
		return "", nil, nil
	}
	typ = args[0]
	if i := strings.Index(typ, "/"); i >= 0 {
		if len(args) > 1 {
			return "", nil, usagef("use either TYPE/NAME or TYPE NAME..., not both")
		}
		typ, names = typ[:i], []string{typ[i+1:]}
		if names[0] == "" {
			return "", nil, usagef("empty name in %q", args[0])
		}
		return typ, names, nil
	}
	return typ, args[1:], nil
}
