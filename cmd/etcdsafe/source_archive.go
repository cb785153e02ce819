package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// maxKubeConfigFile bounds the kube dir files read into memory while
// looking for the EncryptionConfiguration.
const maxKubeConfigFile = 1 << 20

// archiveSource is a backup archive opened for the read commands: its
// snapshot extracted to a private 0600 file, and the EncryptionConfiguration
// found in its kube dir, if any.
type archiveSource struct {
	dbPath    string
	encConfig []byte // nil when the archive holds none
	encName   string // its path inside the archive
	cleanup   func()
}

// openArchive reads the archive once, to the end (so it is verified): the
// snapshot goes to a private temp dir, the kube dir's EncryptionConfiguration
// (the file kube-apiserver's manifest names, else any) is kept in memory.
func openArchive(ctx context.Context, p string, o *sourceOptions, stderr io.Writer) (_ *archiveSource, err error) {
	ids, err := verifyIdentities(&verifyOptions{identity: o.identity, passFile: o.passFile}, stderr)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	dir, err := fsx.MkdirPrivate(o.tmpDir, "etcdsafe-read-")
	if err != nil {
		return nil, err
	}
	as := &archiveSource{cleanup: func() { os.RemoveAll(dir) }}
	defer func() {
		if err != nil {
			as.cleanup()
		}
	}()
	r, err := archive.NewReader(f, archive.ReaderOptions{Identities: ids, Insecure: true})
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", p, err)
	}
	defer r.Close()
	configs := map[string][]byte{}
	named := "" // --encryption-provider-config of the kube-apiserver manifest
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", p, err)
		}
		switch {
		case e.Path == "etcd/snapshot.db":
			as.dbPath = dir + "/snapshot.db"
			out, err := os.OpenFile(as.dbPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, r)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("archive %s: extract snapshot: %w", p, err)
			}
		case strings.HasPrefix(e.Path, "kubernetes/") && e.Type == "file" && e.Size <= maxKubeConfigFile:
			ext := path.Ext(e.Path)
			if ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(r, maxKubeConfigFile))
			if err != nil {
				return nil, fmt.Errorf("archive %s: %s: %w", p, e.Path, err)
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
	if as.dbPath == "" {
		return nil, fmt.Errorf("archive %s holds no etcd/snapshot.db: %w", p, archive.ErrTampered)
	}
	// The manifest names the file by its path on the master, under
	// /etc/kubernetes (the archive's kubernetes/).
	if rel := strings.TrimPrefix(named, "/etc/kubernetes/"); configs[rel] != nil {
		as.encConfig, as.encName = configs[rel], rel
	} else {
		for rel, b := range configs {
			if as.encName == "" || rel < as.encName {
				as.encConfig, as.encName = b, rel
			}
		}
	}
	return as, nil
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
