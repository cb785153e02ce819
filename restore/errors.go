package restore

import (
	"errors"
	"os"
	"syscall"

	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

var (
	// ErrNoTrailer means the source is a raw db (copied from a data dir) with
	// no SHA-256 trailer, so its integrity cannot be checked; restoring it
	// needs SkipHashCheck.
	ErrNoTrailer = errors.New("the db has no sha256 trailer (a raw copy of member/snap/db), so its integrity cannot be checked")
	// ErrEtcdRunning means a running etcd holds the data dir's db or listens
	// on the manifest's client URL.
	ErrEtcdRunning = errors.New("etcd is running")
	// ErrMembership means the requested membership is inconsistent: the
	// member's peer URLs differ from its entry in the initial cluster, or a
	// flag contradicts the static pod manifest. etcd would crash-loop.
	ErrMembership = errors.New("etcd membership does not match")
	// ErrBadManifest means the static pod manifest cannot be read or edited.
	ErrBadManifest = errors.New("not a usable etcd static pod manifest")
	// ErrConflict means files in the kube dir differ from the archive's and
	// Force was not set; [ConflictError] lists them.
	ErrConflict = errors.New("files differ from the archive")
	// ErrNoKubeDir means a kube dir restore was asked of a source that holds
	// none (a snapshot file, or an archive without kubernetes/).
	ErrNoKubeDir = errors.New("the source holds no kube dir")
	// ErrNotDataDir means the data dir to restore exists and is neither an
	// empty directory nor an etcd data dir (a directory with
	// member/snap/db): a file, a symbolic link, or a directory holding
	// something else. The message says what was found; nothing was moved.
	ErrNotDataDir = errors.New("not an etcd data dir")
	// ErrDataDirNotConfirmed means no data dir was given and the only one
	// known comes from a static pod manifest (the archive's or this
	// host's). A dry run shows it as a candidate; a real restore needs it
	// passed explicitly as [Options.DataDir].
	ErrDataDirNotConfirmed = errors.New("the data dir must be given explicitly")
)

// ConflictError lists the kube dir paths (relative to the kube dir) that
// exist and differ from the archive. It wraps [ErrConflict]. Its message
// shows the paths through termtext.Clean: they come from the archive.
type ConflictError struct {
	// Paths are slash-separated, relative to the kube dir, sorted.
	Paths []string
}

func (e *ConflictError) Error() string {
	s := ""
	for i, p := range e.Paths {
		if i == 10 {
			s += ", ..."
			break
		}
		if i > 0 {
			s += ", "
		}
		s += termtext.Clean(p)
	}
	return ErrConflict.Error() + ": " + s
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

func fileOwner(st os.FileInfo) (uid, gid int, ok bool) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), int(s.Gid), true
	}
	return 0, 0, false
}

// hiddenPathError is an error whose message names what the user knows (the
// archive, the data dir) instead of the private staging paths the
// underlying error mentions. errors.Is and errors.As see the original.
type hiddenPathError struct {
	err error
	msg string
}

func (e *hiddenPathError) Error() string { return e.msg }
func (e *hiddenPathError) Unwrap() error { return e.err }
