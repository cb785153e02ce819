package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// maxKubeConfigFile bounds the kube dir files read into memory while
// looking for the EncryptionConfiguration.
const maxKubeConfigFile = 1 << 20

// stagedSource is a snapshot staged in a private dir for the read
// commands: the one in a backup archive (with the EncryptionConfiguration
// found in its kube dir, if any), or the snapshot read from standard input.
type stagedSource struct {
	dbPath    string
	archive   bool
	encConfig []byte // nil when the archive holds none
	encName   string // its path inside the archive
	cleanup   func()
}

// openStaged stages the snapshot of p ("-" is standard input, which may
// hold an archive or a snapshot) in a new private staging dir, flocked
// while in use so that a later run can sweep it if this one is killed.
func openStaged(ctx context.Context, p string, o *sourceOptions, stdin io.Reader, stderr io.Writer) (_ *stagedSource, err error) {
	var src io.Reader
	if p == "-" {
		src = stdin
	} else {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		defer f.Close()
		src = f
	}
	head := make([]byte, archive.SniffLen)
	n, err := io.ReadFull(src, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	head = head[:n]
	src = io.MultiReader(bytes.NewReader(head), &ctxReader{ctx: ctx, r: src})
	st, err := fsx.NewStaging(o.tmpDir, readStagingPrefix)
	if err != nil {
		return nil, err
	}
	ss := &stagedSource{cleanup: func() { _ = st.Remove() }}
	defer func() {
		if err != nil {
			ss.cleanup()
		}
	}()
	if a, _ := archive.Sniff(head); !a {
		// standard input holding a snapshot or raw db
		ss.dbPath = filepath.Join(st.Path, "snapshot.db")
		if err := writeNew(ss.dbPath, src); err != nil {
			return nil, fmt.Errorf("read snapshot from standard input: %w", err)
		}
		return ss, nil
	}
	ss.archive = true
	if p == "-" {
		p = "standard input"
	}
	if err := ss.extractArchive(ctx, src, p, st.Path, o, stderr); err != nil {
		return nil, err
	}
	return ss, nil
}

// extractArchive reads the archive once, to the end (so it is verified):
// the snapshot goes to dir, the kube dir's EncryptionConfiguration (the file
// kube-apiserver's manifest names, else any) is kept in memory.
func (ss *stagedSource) extractArchive(ctx context.Context, src io.Reader, p, dir string, o *sourceOptions, stderr io.Writer) error {
	ids, err := verifyIdentities(&verifyOptions{identity: o.identity, passFile: o.passFile}, stderr)
	if err != nil {
		return err
	}
	r, err := archive.NewReader(src, archive.ReaderOptions{Identities: ids, Insecure: o.allowUnencrypted})
	if err != nil {
		return explainArchiveError(p, ids, fmt.Errorf("archive %s: %w", p, err))
	}
	defer r.Close()
	configs := map[string][]byte{}
	named := "" // --encryption-provider-config of the kube-apiserver manifest
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return explainArchiveError(p, ids, fmt.Errorf("archive %s: %w", p, err))
		}
		switch {
		case e.Path == "etcd/snapshot.db":
			ss.dbPath = filepath.Join(dir, "snapshot.db")
			if err := writeNew(ss.dbPath, r); err != nil {
				return fmt.Errorf("archive %s: extract snapshot: %w", p, err)
			}
		case strings.HasPrefix(e.Path, "kubernetes/") && e.Type == "file" && e.Size <= maxKubeConfigFile:
			ext := path.Ext(e.Path)
			if ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(r, maxKubeConfigFile))
			if err != nil {
				return fmt.Errorf("archive %s: %s: %w", p, e.Path, err)
			}
			rel := strings.TrimPrefix(e.Path, "kubernetes/")
			if bytes.Contains(b, []byte("EncryptionConfiguration")) {
				configs[rel] = b
			}
			if rel == "manifests/kube-apiserver.yaml" {
				named = encryptionFlag(b)
			}
		}
	}
	if !r.Encrypted() {
		fmt.Fprintf(stderr, "etcdsafe: warning: %s is not encrypted: nothing proves who wrote it (read because of --allow-unencrypted)\n", termtext.Clean(p))
	}
	if ss.dbPath == "" {
		return fmt.Errorf("archive %s holds no etcd/snapshot.db: %w", p, archive.ErrTampered)
	}
	// The manifest names the file by its path on the master, under
	// /etc/kubernetes (the archive's kubernetes/).
	if rel := strings.TrimPrefix(named, "/etc/kubernetes/"); configs[rel] != nil {
		ss.encConfig, ss.encName = configs[rel], rel
	} else {
		for rel, b := range configs {
			if ss.encName == "" || rel < ss.encName {
				ss.encConfig, ss.encName = b, rel
			}
		}
	}
	return nil
}

// explainArchiveError turns what age cannot tell apart (a flip in the
// last chunk and a cut; a damaged recipient stanza and a wrong key) into
// what the archive's sidecar shows it to be. p "standard input" has none.
func explainArchiveError(p string, ids []age.Identity, err error) error {
	if p == "standard input" {
		return err
	}
	return archive.ExplainWrongKey(p, ids, archive.ExplainTruncation(p, err))
}

// writeNew copies r to a new 0600 file at p.
func writeNew(p string, r io.Reader) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader ends a read with the context's error once ctx is done, so an
// interrupted extraction stops at the next buffer.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// encryptionFlag finds --encryption-provider-config=PATH in a static pod
// manifest, textually (the manifest is a plain YAML list of flags).
func encryptionFlag(manifest []byte) string {
	const flag = "--encryption-provider-config="
	i := bytes.Index(manifest, []byte(flag))
	if i < 0 {
		return ""
	}
	rest := manifest[i+len(flag):]
	if j := bytes.IndexAny(rest, "\"' \r\n"); j >= 0 {
		rest = rest[:j]
	}
	return string(rest)
}
