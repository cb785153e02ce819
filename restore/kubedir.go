package restore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/ctxio"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

const copyBufSize = 1 << 20

// parseOnly validates --only values.
func parseOnly(vals []string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, v := range vals {
		for _, s := range splitList(v) {
			switch s {
			case "pki", "manifests", "kubeconfigs", "all":
				m[s] = true
			default:
				return nil, fmt.Errorf("--only %q: want pki, manifests, kubeconfigs or all", s)
			}
		}
	}
	if len(m) == 0 {
		m["all"] = true
	}
	return m, nil
}

// selected reports whether rel (relative to the kube dir) is in the --only
// set: pki/..., manifests/..., or the top-level *.conf kubeconfigs.
func selected(only map[string]bool, rel string) bool {
	if only["all"] {
		return true
	}
	top, _, nested := strings.Cut(rel, "/")
	switch {
	case top == "pki":
		return only["pki"]
	case top == "manifests":
		return only["manifests"]
	case !nested && strings.HasSuffix(rel, ".conf"):
		return only["kubeconfigs"]
	}
	return false
}

// stageArchive reads the archive once, to the end, through
// archive.Extract: the snapshot goes to stage/snapshot.db, the kube dir (if
// kube) under stage/kube, and the bytes of kubernetes/manifests/etcd.yaml
// are returned. Nothing is trusted until Extract returned, which verifies
// every entry. src is the archive's stream ([Options.Input]); nil opens
// the file Source.
func (p *Plan) stageArchive(ctx context.Context, kube bool, src io.Reader) (etcdManifest []byte, err error) {
	x := archive.ExtractOptions{
		Name:     p.opts.Source,
		Keep:     func(rel string) bool { return rel == "manifests/etcd.yaml" },
		OnStaged: p.staged,
	}
	if src == nil {
		f, err := os.Open(p.opts.Source)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		defer f.Close()
		src, x.Path = f, p.opts.Source
	} else {
		x.Sidecar = p.opts.Input.Sidecar
	}
	p.snapPath = filepath.Join(p.stage.Path, "snapshot.db")
	x.SnapshotTo = p.snapPath
	if kube {
		p.kubeRoot = filepath.Join(p.stage.Path, "kube")
		if err := os.Mkdir(p.kubeRoot, 0o700); err != nil {
			return nil, fmt.Errorf("create staging dir: %w", err)
		}
		x.KubeDirTo = p.kubeRoot
	}
	res, err := archive.Extract(ctx, src, archive.ReaderOptions{Identities: p.opts.Identities, Insecure: p.opts.AllowUnencrypted}, x)
	if err != nil {
		return nil, err
	}
	p.Archive = res.Manifest
	// The archive's SHA-256 covers the snapshot; a trailer, if the
	// snapshot has one, must match as well.
	ts, err := snapshot.VerifyTrailer(p.snapPath)
	p.Trailer = ts.String()
	if ts == snapshot.TrailerMismatch && !p.opts.SkipHashCheck {
		return nil, err
	} else if err != nil && ts != snapshot.TrailerMismatch {
		return nil, err
	}
	if ts == snapshot.TrailerNone {
		p.Trailer = "none (archive sha256 verified)"
	}
	return res.Kept["manifests/etcd.yaml"], nil
}

// stageSnapshot writes the snapshot or raw db read from src (a stream)
// to stage/snapshot.db.
func (p *Plan) stageSnapshot(ctx context.Context, src io.Reader) error {
	path, err := p.stage.WriteNew("snapshot.db", ctxio.NewReader(ctx, src))
	if err != nil {
		return fmt.Errorf("read snapshot from %s: %w", p.Source, err)
	}
	p.snapPath = path
	return p.hook(stepSnapshot)
}

// staged records a kube dir entry staged by archive.Extract, and gives
// the tests' kill points their chance.
func (p *Plan) staged(e *archive.EntryInfo) error {
	if e.Path == archive.SnapshotPath {
		return p.hook(stepSnapshot)
	}
	rel := strings.TrimPrefix(e.Path, archive.KubeDirPath+"/")
	p.KubeChanges = append(p.KubeChanges, KubeChange{Path: rel, Type: e.Type, entry: *e})
	return p.hook(stepKubeStaged)
}

// planKubeDir keeps the selected entries, compares each with the kube dir
// and fails with a [ConflictError] if some differ and Force is not set.
func (p *Plan) planKubeDir(only map[string]bool) error {
	if p.kubeRoot == "" || len(p.KubeChanges) == 0 {
		return fmt.Errorf("archive %s: %w", p.Source, ErrNoKubeDir)
	}
	kept := p.KubeChanges[:0]
	for _, c := range p.KubeChanges {
		if selected(only, c.Path) {
			kept = append(kept, c)
		}
	}
	// Manifests last: the kubelet starts static pods as soon as their
	// manifest appears, so everything they mount must be in place first.
	slices.SortStableFunc(kept, func(a, b KubeChange) int {
		am, bm := strings.HasPrefix(a.Path, "manifests"), strings.HasPrefix(b.Path, "manifests")
		switch {
		case am == bm:
			return 0
		case am:
			return 1
		}
		return -1
	})
	p.KubeChanges = kept
	var dst *os.Root
	if fi, err := os.Lstat(p.KubeDir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("kube dir %s is not a directory", p.KubeDir)
		}
		if dst, err = os.OpenRoot(p.KubeDir); err != nil {
			return fmt.Errorf("open kube dir: %w", err)
		}
		defer dst.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kube dir: %w", err)
	}
	// Names a backup must not take: every path the archive restores.
	taken := map[string]bool{}
	for _, c := range p.KubeChanges {
		taken[c.Path] = true
	}
	var conflicts []string
	for i := range p.KubeChanges {
		c := &p.KubeChanges[i]
		c.Action = "create"
		if dst == nil {
			continue
		}
		same, exists, err := p.compare(dst, c)
		if err != nil {
			return err
		}
		switch {
		case same:
			c.Action = "unchanged"
		case exists && p.opts.Force:
			c.Action = "replace"
			c.Backup = freeBackupName(dst, c.Path, stamp(p.opts.Now()), taken)
		case exists:
			c.Action = "conflict"
			conflicts = append(conflicts, c.Path)
		}
	}
	if len(conflicts) > 0 {
		slices.Sort(conflicts)
		return &ConflictError{Paths: conflicts}
	}
	return nil
}

// freeBackupName returns ".NAME.etcdsafe-<stamp>" beside rel, or with a
// "-N" suffix, such that neither the kube dir nor the archive has it (a
// rename onto an existing name would replace that file), and marks it
// taken.
func freeBackupName(dst *os.Root, rel, stamp string, taken map[string]bool) string {
	base := path.Join(path.Dir(rel), "."+path.Base(rel)+".etcdsafe-"+stamp)
	name := base
	for i := 1; ; i++ {
		if _, err := dst.Lstat(name); errors.Is(err, fs.ErrNotExist) && !taken[name] {
			taken[name] = true
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// compare tells whether the kube dir already holds c exactly (type,
// content, link target, permission bits).
func (p *Plan) compare(dst *os.Root, c *KubeChange) (same, exists bool, err error) {
	// A parent that is not a directory (or a symlink) conflicts too.
	for dir := path.Dir(c.Path); dir != "."; dir = path.Dir(dir) {
		if st, err := dst.Lstat(dir); err == nil && !st.IsDir() {
			return false, true, nil
		}
	}
	st, err := dst.Lstat(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, true, nil
	}
	e := c.entry
	switch e.Type {
	case archive.TypeDir:
		return st.IsDir(), true, nil
	case archive.TypeSymlink:
		if st.Mode()&fs.ModeSymlink == 0 {
			return false, true, nil
		}
		t, err := dst.Readlink(c.Path)
		return err == nil && t == e.LinkTarget, true, nil
	}
	if !st.Mode().IsRegular() || st.Size() != e.Size || uint32(st.Mode().Perm()) != e.Mode&0o777 {
		return false, true, nil
	}
	f, err := dst.Open(c.Path)
	if err != nil {
		return false, true, nil
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, true, nil
	}
	return hex.EncodeToString(h.Sum(nil)) == e.SHA256, true, nil
}

// applyKubeDir puts the staged entries in place. Each new file or link is
// created under a temp name in its directory and renamed over, so a file
// is either absent, the old one, or the new one; replaced entries are
// first renamed to their hidden Backup name.
func (p *Plan) applyKubeDir(ctx context.Context, res *Result) error {
	if err := os.MkdirAll(p.KubeDir, 0o700); err != nil {
		return fmt.Errorf("create kube dir: %w", err)
	}
	dst, err := os.OpenRoot(p.KubeDir)
	if err != nil {
		return fmt.Errorf("open kube dir: %w", err)
	}
	defer dst.Close()
	src, err := os.OpenRoot(p.kubeRoot)
	if err != nil {
		return fmt.Errorf("open staging dir: %w", err)
	}
	defer src.Close()
	asRoot := os.Geteuid() == 0
	buf := make([]byte, copyBufSize)
	var dirs []KubeChange
	for _, c := range p.KubeChanges {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Action == "unchanged" {
			res.KubeUnchanged++
			continue
		}
		if err := p.hook(stepKubeFile); err != nil {
			return err
		}
		if c.Action == "replace" {
			if err := dst.Rename(c.Path, c.Backup); err != nil {
				return fmt.Errorf("move %q aside: %w", c.Path, err)
			}
		}
		if err := archive.CheckParents(dst, c.Path); err != nil {
			return err
		}
		if parent := path.Dir(c.Path); parent != "." {
			if err := dst.MkdirAll(parent, 0o700); err != nil {
				return fmt.Errorf("create %q: %w", parent, err)
			}
		}
		e := c.entry
		switch e.Type {
		case archive.TypeDir:
			if err := dst.Mkdir(c.Path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create dir %q: %w", c.Path, err)
			}
			dirs = append(dirs, c)
		case archive.TypeSymlink:
			tmp, err := createTemp(dst, c.Path, func(tmp string) error { return dst.Symlink(e.LinkTarget, tmp) })
			if err != nil {
				return fmt.Errorf("create symlink %q: %w", c.Path, err)
			}
			if asRoot {
				if err := dst.Lchown(tmp, e.UID, e.GID); err != nil {
					return fmt.Errorf("chown %q: %w", c.Path, err)
				}
			}
			if err := dst.Rename(tmp, c.Path); err != nil {
				return fmt.Errorf("put %q in place: %w", c.Path, err)
			}
		default:
			tmp, err := copyInto(src, dst, c.Path, buf)
			if err != nil {
				return err
			}
			if err := e.ApplyMeta(dst, tmp, asRoot); err != nil {
				return err
			}
			if err := dst.Rename(tmp, c.Path); err != nil {
				return fmt.Errorf("put %q in place: %w", c.Path, err)
			}
		}
		if c.Action == "replace" {
			res.KubeReplaced++
		} else {
			res.KubeCreated++
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := dirs[i].entry.ApplyMeta(dst, dirs[i].Path, asRoot); err != nil {
			return err
		}
	}
	return nil
}

// createTemp makes a new entry with mk under a fresh random hidden name
// beside rel (".NAME.etcdsafe-tmp-<random>") and returns that name. It
// never removes or reuses an existing entry: the kube dir may hold any
// name, the archive's own files included.
func createTemp(dst *os.Root, rel string, mk func(tmp string) error) (string, error) {
	var b [8]byte
	for range 100 {
		_, _ = rand.Read(b[:])
		tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+".etcdsafe-tmp-"+hex.EncodeToString(b[:]))
		err := mk(tmp)
		if err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free temp name beside %q", rel)
}

// copyInto copies the staged rel into a new temp file beside rel in dst
// and returns the temp file's name.
func copyInto(src, dst *os.Root, rel string, buf []byte) (string, error) {
	in, err := src.Open(rel)
	if err != nil {
		return "", fmt.Errorf("open staged %q: %w", rel, err)
	}
	defer in.Close()
	var out *os.File
	tmp, err := createTemp(dst, rel, func(tmp string) (err error) {
		out, err = dst.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create a temp file for %q: %w", rel, err)
	}
	_, err = io.CopyBuffer(out, struct{ io.Reader }{in}, buf)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = dst.Remove(tmp)
		return "", fmt.Errorf("write %q: %w", rel, err)
	}
	return tmp, nil
}
