package restore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/etcdsafe/etcdsafe/internal/fsx"
)

// DefaultManifestPath is where kubeadm writes etcd's static pod manifest.
const DefaultManifestPath = "/etc/kubernetes/manifests/etcd.yaml"

// maxManifestSize bounds a static pod manifest read into memory.
const maxManifestSize = 1 << 20

// EtcdManifest is what etcdsafe reads from etcd's static pod manifest: the
// flags of the container that runs etcd. Flags given as "--k=v" or as two
// list items "--k", "v" are both understood. Empty fields were not set.
type EtcdManifest struct {
	// Path is the file it was read from, if any.
	Path string
	// Name is --name.
	Name string
	// InitialAdvertisePeerURLs is --initial-advertise-peer-urls, split on commas.
	InitialAdvertisePeerURLs []string
	// InitialCluster is --initial-cluster as written ("n1=u1,n2=u2").
	InitialCluster string
	// InitialClusterState is --initial-cluster-state ("new" or "existing").
	InitialClusterState string
	// InitialClusterToken is --initial-cluster-token.
	InitialClusterToken string
	// DataDir is --data-dir (a path inside the container).
	DataDir string
	// WALDir is --wal-dir.
	WALDir string
	// ListenClientURLs is --listen-client-urls, split on commas.
	ListenClientURLs []string
	// ForceNewCluster reports whether --force-new-cluster is on.
	ForceNewCluster bool
	// QuotaBackendBytes is --quota-backend-bytes as written (etcd reads
	// it as a number of bytes); empty when not set.
	QuotaBackendBytes string
}

// ReadEtcdManifest reads and parses the static pod manifest at path.
func ReadEtcdManifest(path string) (*EtcdManifest, error) {
	b, err := readSmallFile(path, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("read etcd manifest: %w", err)
	}
	m, err := ParseEtcdManifest(b)
	if err != nil {
		return nil, fmt.Errorf("etcd manifest %s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

// ParseEtcdManifest parses a static pod manifest and returns the flags of
// its etcd container (the one named "etcd", else the one whose command
// runs etcd). Errors wrap [ErrBadManifest].
func ParseEtcdManifest(b []byte) (*EtcdManifest, error) {
	args, err := etcdArgs(b)
	if err != nil {
		return nil, err
	}
	m := &EtcdManifest{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, hasV := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !hasV && k != "force-new-cluster" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			i++
			v = args[i]
		}
		switch k {
		case "name":
			m.Name = v
		case "initial-advertise-peer-urls":
			m.InitialAdvertisePeerURLs = splitList(v)
		case "initial-cluster":
			m.InitialCluster = v
		case "initial-cluster-state":
			m.InitialClusterState = v
		case "initial-cluster-token":
			m.InitialClusterToken = v
		case "data-dir":
			m.DataDir = v
		case "wal-dir":
			m.WALDir = v
		case "listen-client-urls":
			m.ListenClientURLs = splitList(v)
		case "quota-backend-bytes":
			m.QuotaBackendBytes = v
		case "force-new-cluster":
			m.ForceNewCluster = !hasV || v == "true"
		}
	}
	return m, nil
}

// etcdArgs returns the command and args of the etcd container.
func etcdArgs(b []byte) ([]string, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		return nil, fmt.Errorf("parse: %w: %w", ErrBadManifest, err)
	}
	if pod.Kind != "Pod" {
		return nil, fmt.Errorf("kind %q, want Pod: %w", pod.Kind, ErrBadManifest)
	}
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		ci := &pod.Spec.Containers[i]
		if ci.Name == "etcd" {
			c = ci
			break
		}
		if c == nil && len(ci.Command) > 0 && filepath.Base(ci.Command[0]) == "etcd" {
			c = ci
		}
	}
	if c == nil {
		return nil, fmt.Errorf("no etcd container: %w", ErrBadManifest)
	}
	return append(slices.Clone(c.Command), c.Args...), nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// forceFlagLine matches a block-list item holding --force-new-cluster,
// quoted or not, with or without a value.
var forceFlagLine = regexp.MustCompile(`^[ \t]*-[ \t]+(["']?)--force-new-cluster(=[^"'\s]*)?(["']?)[ \t]*(#.*)?\r?\n?$`)

// nameFlagLine matches the block-list item holding --name, after which
// --force-new-cluster is inserted with the same indentation and quoting.
var nameFlagLine = regexp.MustCompile(`^([ \t]*-[ \t]+)(["']?)--name=.*\r?\n?$`)

// SetForceNewCluster returns the manifest b with --force-new-cluster added
// (on) or removed (off), every other byte unchanged, and whether anything
// changed. It edits the text, not a re-serialized object, so comments, key
// order and quoting survive; it then re-parses the result and checks that
// only that flag changed. Manifests whose etcd command is not a YAML block
// list with a --name item are refused with [ErrBadManifest].
func SetForceNewCluster(b []byte, on bool) ([]byte, bool, error) {
	before, err := etcdArgs(b)
	if err != nil {
		return nil, false, err
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	var out [][]byte
	var flagLines, nameLines []int
	for i, l := range lines {
		if forceFlagLine.Match(l) {
			flagLines = append(flagLines, i)
		}
		if nameFlagLine.Match(l) {
			nameLines = append(nameLines, i)
		}
	}
	switch {
	case !on:
		if len(flagLines) == 0 {
			return b, false, nil
		}
		for i, l := range lines {
			if !slices.Contains(flagLines, i) {
				out = append(out, l)
			}
		}
	case len(flagLines) > 0:
		allOn := true
		for _, i := range flagLines {
			m := forceFlagLine.FindSubmatch(lines[i])
			if len(m[2]) > 0 && string(m[2]) != "=true" {
				allOn = false
			}
		}
		if allOn {
			return b, false, nil
		}
		// A --force-new-cluster=false item: rewrite just that value.
		for i, l := range lines {
			if slices.Contains(flagLines, i) {
				l = regexp.MustCompile(`--force-new-cluster=[^"'\s]*`).ReplaceAll(l, []byte("--force-new-cluster"))
			}
			out = append(out, l)
		}
	default:
		if len(nameLines) != 1 {
			return nil, false, fmt.Errorf("found %d '- --name' list items, want exactly 1; edit the manifest by hand: %w", len(nameLines), ErrBadManifest)
		}
		n := nameLines[0]
		m := nameFlagLine.FindSubmatch(lines[n])
		eol := []byte("\n")
		if bytes.HasSuffix(lines[n], []byte("\r\n")) {
			eol = []byte("\r\n")
		}
		newLine := slices.Concat(m[1], m[2], []byte("--force-new-cluster"), m[2], eol)
		for i, l := range lines {
			if i == n && !bytes.HasSuffix(l, []byte("\n")) {
				l = slices.Concat(l, eol) // --name was the last line, without a newline
				newLine = newLine[:len(newLine)-len(eol)]
			}
			out = append(out, l)
			if i == n {
				out = append(out, newLine)
			}
		}
	}
	res := bytes.Join(out, nil)
	after, err := etcdArgs(res)
	if err != nil {
		return nil, false, fmt.Errorf("edited manifest does not parse: %w", err)
	}
	isForce := func(a string) bool { return a == "--force-new-cluster" || strings.HasPrefix(a, "--force-new-cluster=") }
	pm, err := ParseEtcdManifest(res)
	if err != nil {
		return nil, false, err
	}
	if pm.ForceNewCluster != on || !slices.Equal(slices.DeleteFunc(before, isForce), slices.DeleteFunc(after, isForce)) {
		return nil, false, fmt.Errorf("editing --force-new-cluster would change more than that flag; edit the manifest by hand: %w", ErrBadManifest)
	}
	return res, true, nil
}

// ManifestEdit reports what [EditForceNewCluster] did.
type ManifestEdit struct {
	// Path is the manifest.
	Path string
	// Changed is false when the flag was already as requested; nothing was
	// written then.
	Changed bool
	// Backup is the copy of the previous file, when Changed.
	Backup string
}

// EditForceNewCluster turns --force-new-cluster on or off in the manifest
// at path. The previous file is first copied to a hidden sibling
// ".<name>.etcdsafe-<UTC time>" (hidden, because the kubelet runs every
// other file in its manifest directory as a pod), then the new content is
// written atomically with the old file's mode (and owner, when running as
// root). On error the manifest is unchanged. now may be nil.
func EditForceNewCluster(path string, on bool, now func() time.Time) (ManifestEdit, error) {
	ed := ManifestEdit{Path: path}
	st, err := os.Lstat(path)
	if err != nil {
		return ed, fmt.Errorf("read etcd manifest: %w", err)
	}
	if !st.Mode().IsRegular() {
		return ed, fmt.Errorf("etcd manifest %s is not a regular file: %w", path, ErrBadManifest)
	}
	b, err := readSmallFile(path, maxManifestSize)
	if err != nil {
		return ed, fmt.Errorf("read etcd manifest: %w", err)
	}
	nb, changed, err := SetForceNewCluster(b, on)
	if err != nil {
		return ed, fmt.Errorf("etcd manifest %s: %w", path, err)
	}
	if !changed {
		return ed, nil
	}
	if now == nil {
		now = time.Now
	}
	dir, base := filepath.Split(path)
	// Two edits in one second (on, then off) must not collide: a copy
	// is never overwritten, the next free name is taken.
	backup := filepath.Join(dir, "."+base+".etcdsafe-"+stamp(now()))
	for i := 1; ; i++ {
		err := writeLike(backup, b, st, true)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i == 100 {
			return ed, fmt.Errorf("keep a copy of the etcd manifest: %w", err)
		}
		backup = filepath.Join(dir, fmt.Sprintf(".%s.etcdsafe-%s-%d", base, stamp(now()), i))
	}
	if err := writeLike(path, nb, st, false); err != nil {
		return ed, fmt.Errorf("write etcd manifest: %w", err)
	}
	ed.Changed, ed.Backup = true, backup
	return ed, nil
}

// writeLike writes data atomically to path with the mode (and, as root,
// the owner) of st.
func writeLike(path string, data []byte, st os.FileInfo, noReplace bool) error {
	f, err := fsx.Create(path, st.Mode().Perm())
	if err != nil {
		return err
	}
	defer f.Abort()
	f.NoReplace = noReplace
	f.ExpectSize = int64(len(data))
	if _, err := f.Write(data); err != nil {
		return err
	}
	if uid, gid, ok := fileOwner(st); ok && os.Geteuid() == 0 {
		if err := os.Lchown(f.Name(), uid, gid); err != nil {
			return fmt.Errorf("chown %q: %w", f.Name(), err)
		}
	}
	return f.Commit()
}

func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes is larger than %d: %w", path, st.Size(), limit, ErrBadManifest)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// stamp is the UTC time used in backup names, sortable and without colons.
func stamp(t time.Time) string { return t.UTC().Format("20060102T150405Z") }
