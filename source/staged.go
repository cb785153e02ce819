package source

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
	"github.com/etcdsafe/etcdsafe/internal/ctxio"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// staged is a snapshot staged in a private dir: the one in a backup
// archive (with the EncryptionConfiguration found in its kube dir, if
// any), or the snapshot read from standard input or an [Input].
type staged struct {
	dbPath    string
	archive   bool
	encConfig []byte // nil when the archive holds none
	encName   string // its path inside the archive
	etcdPod   []byte // the archive's kubernetes/manifests/etcd.yaml, if any
	apiPod    []byte // its kubernetes/manifests/kube-apiserver.yaml, if any
	manifest  *archive.Manifest
	cleanup   func()
}

// openStaged stages the snapshot of p in a new private staging dir,
// flocked while in use so that a later run can sweep it if this one is
// killed. p is an archive file, or the stream ("-" for standard input, or
// [Options.Input]) named name, which may hold an archive or a snapshot.
func openStaged(ctx context.Context, p, name string, o *Options) (_ *staged, err error) {
	var src io.Reader
	file, sidecar := "", (func() (*archive.Sidecar, error))(nil)
	switch {
	case o.Input != nil:
		src, sidecar = o.Input.R, o.Input.Sidecar
	case p == "-":
		if src = o.Stdin; src == nil {
			src = os.Stdin
		}
	default:
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		defer f.Close()
		src, file = f, p
	}
	head := make([]byte, archive.SniffLen)
	n, err := io.ReadFull(src, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	head = head[:n]
	src = io.MultiReader(bytes.NewReader(head), src)
	st, err := fsx.NewStaging(o.TmpDir, StagingPrefix)
	if err != nil {
		return nil, err
	}
	ss := &staged{dbPath: filepath.Join(st.Path, "snapshot.db"), cleanup: func() { _ = st.Remove() }}
	defer func() {
		if err != nil {
			ss.cleanup()
		}
	}()
	if a, _ := archive.Sniff(head); !a {
		// a stream holding a snapshot or raw db
		if _, err := st.WriteNew("snapshot.db", ctxio.NewReader(ctx, src)); err != nil {
			return nil, fmt.Errorf("read snapshot from %s: %w", name, err)
		}
		return ss, nil
	}
	ss.archive = true
	x := archive.ExtractOptions{Path: file, Name: name, Sidecar: sidecar}
	if err := ss.extractArchive(ctx, src, x, o); err != nil {
		return nil, err
	}
	return ss, nil
}

// extractArchive reads the archive through archive.Extract, which verifies
// it to the end: the snapshot goes to ss.dbPath, the kube dir's
// EncryptionConfiguration (the file kube-apiserver's manifest names, else
// any) is kept in memory. x names the archive and says where its sidecar
// is.
func (ss *staged) extractArchive(ctx context.Context, src io.Reader, x archive.ExtractOptions, o *Options) error {
	var ids []age.Identity
	if o.Identities != nil {
		var err error
		if ids, err = o.Identities(); err != nil {
			return err
		}
	}
	x.SnapshotTo = ss.dbPath
	x.Keep = func(rel string) bool {
		ext := path.Ext(rel)
		return ext == ".yaml" || ext == ".yml" || ext == ".json"
	}
	res, err := archive.Extract(ctx, src, archive.ReaderOptions{Identities: ids, Insecure: o.AllowUnencrypted}, x)
	if err != nil {
		return err
	}
	if !res.Encrypted && o.OnUnencrypted != nil {
		o.OnUnencrypted(x.Name)
	}
	ss.encConfig, ss.encName = encryptionConfig(res.Kept)
	ss.etcdPod = res.Kept["manifests/etcd.yaml"]
	ss.apiPod = res.Kept["manifests/kube-apiserver.yaml"]
	ss.manifest = res.Manifest
	return nil
}

// encryptionConfig picks the EncryptionConfiguration among the kube dir
// files kept: the one kube-apiserver's manifest names, by its path on the
// master under /etc/kubernetes (the archive's kubernetes/), else the first
// by name.
func encryptionConfig(kept map[string][]byte) (b []byte, rel string) {
	named := strings.TrimPrefix(encryptionFlag(kept["manifests/kube-apiserver.yaml"]), "/etc/kubernetes/")
	for r, c := range kept {
		if !bytes.Contains(c, []byte("EncryptionConfiguration")) {
			continue
		}
		if r == named {
			return c, r
		}
		if rel == "" || r < rel {
			b, rel = c, r
		}
	}
	return b, rel
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
