package inspect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrLocked: another process (a running etcd) holds the db's lock.
	ErrLocked = errors.New("the db is locked by another process (a running etcd?)")
	// ErrNotSnapshot: the file is not a bbolt database.
	ErrNotSnapshot = errors.New("not an etcd snapshot or bbolt database")
	// ErrTruncated: the file is shorter than its own metadata says.
	ErrTruncated = errors.New("file is truncated")
	// ErrCorrupt: bbolt found damaged pages while reading.
	ErrCorrupt = errors.New("database is corrupted")
	// ErrNotEtcd: a bbolt file without etcd's "key" bucket.
	ErrNotEtcd = errors.New("bbolt database without etcd's key bucket")
)

// OpenOptions tunes [Open].
type OpenOptions struct {
	// LockTimeout is how long to wait for the file lock; default 2s.
	LockTimeout time.Duration
	// Name is the file as the user knows it, for messages and
	// [Snapshot.Path], when the db opened is a staged copy (of an archive's
	// snapshot, of standard input). Empty: the path given.
	Name string
}

func (o OpenOptions) nameOr(p string) string {
	if o.Name != "" {
		return o.Name
	}
	return p
}

// Snapshot is an open, read-only etcd db. It holds one read transaction for
// its whole life, so every query sees the same state.
type Snapshot struct {
	// Path is what the user named; DBPath the bbolt file actually opened.
	Path, DBPath string
	// FileSize is the size of DBPath in bytes (trailer included, if any).
	FileSize int64

	db *bolt.DB
	tx *bolt.Tx
}

// ResolveDBPath turns a SOURCE into a bbolt file: a file is itself; a
// directory is an etcd data dir (DIR/member/snap/db) or its member dir
// (DIR/snap/db).
func ResolveDBPath(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return path, nil
	}
	for _, rel := range []string{"member/snap/db", "snap/db"} {
		p := filepath.Join(path, rel)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is a directory but not an etcd data dir (no member/snap/db): %w", path, ErrNotSnapshot)
}

// Open opens path (a snapshot file or a data dir) read-only.
func Open(path string, opts OpenOptions) (s *Snapshot, err error) {
	dbPath, err := ResolveDBPath(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	name := dbPath // in messages
	if opts.Name != "" {
		name = opts.Name
	}
	fi, err := os.Stat(dbPath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if fi.Size() < 2*4096 {
		return nil, fmt.Errorf("open %s: %d bytes is too small for a bbolt database: %w", name, fi.Size(), ErrNotSnapshot)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("open %s: bbolt failed on damaged pages (%v): %w", name, r, ErrCorrupt)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	db, err := bolt.Open(dbPath, 0o400, &bolt.Options{ReadOnly: true, Timeout: opts.LockTimeout})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("open %s: %w", name, ErrLocked)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
			return nil, fmt.Errorf("open %s: %w: %w", name, ErrNotSnapshot, err)
		}
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	tx, err := db.Begin(false)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: begin read transaction: %w", name, err)
	}
	s = &Snapshot{Path: opts.nameOr(path), DBPath: dbPath, FileSize: fi.Size(), db: db, tx: tx}
	if tx.Size() > fi.Size() {
		s.Close()
		return nil, fmt.Errorf("open %s: metadata says %d bytes, file has %d: %w", name, tx.Size(), fi.Size(), ErrTruncated)
	}
	if tx.Bucket(bucketKey) == nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", name, ErrNotEtcd)
	}
	return s, nil
}

// Close ends the read transaction and closes the file.
func (s *Snapshot) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	_ = s.tx.Rollback()
	err := s.db.Close()
	s.db, s.tx = nil, nil
	return err
}

// guard runs fn turning a bbolt panic or a memory fault on a damaged or
// truncated page into an error wrapping [ErrCorrupt].
func guard(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: bbolt failed on damaged pages (%v): %w", what, r, ErrCorrupt)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return fn()
}

var (
	bucketKey     = []byte("key")
	bucketMeta    = []byte("meta")
	bucketMembers = []byte("members")
	bucketRemoved = []byte("members_removed")
	bucketAlarm   = []byte("alarm")
	bucketCluster = []byte("cluster")
)
