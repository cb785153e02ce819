package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// VerifyStagingPrefix names the private dirs [Verify] extracts a snapshot
// into: fsx.ReadStagingPrefix, shared with the read commands, so that each
// sweeps what the other's killed runs left.
const VerifyStagingPrefix = fsx.ReadStagingPrefix

// ErrSnapshotProblems is returned, with a [VerifyReport], when the archive
// verified but some of its snapshot's records could not be decoded
// (listed in the report's Status.Problems).
var ErrSnapshotProblems = errors.New("some records of the snapshot could not be read")

// VerifyOptions configures [Verify].
type VerifyOptions struct {
	// Identities open an encrypted archive; none fails one with
	// archive.ErrWrongKey.
	Identities []age.Identity
	// AllowUnencrypted accepts a plain .tar.zst archive, which proves
	// nothing about who wrote it (archive.ErrUnencrypted otherwise).
	AllowUnencrypted bool
	// TmpDir holds the private staging dir the snapshot is extracted to
	// for the bbolt check (default: the system temp dir).
	TmpDir string
	// OnSwept, if set, is called with each staging dir of a killed run
	// that Verify removed; OnSweepError with an error of that sweep, which
	// does not stop the verification.
	OnSwept      func(dir string)
	OnSweepError func(err error)
	// Object, when set, is read instead of opening the path given to
	// Verify, which then only names it (its URL).
	Object *Object
}

// Object is an archive kept in an object store (an S3 object), which
// [Verify] and [VerifyQuickObject] read instead of a file. The caller
// opens it with the store's client: this package depends on none.
type Object struct {
	// R reads the archive's bytes. Verify reads it once, to its end;
	// VerifyQuickObject does not read it. The caller closes it.
	R io.Reader
	// Size is the object's size as the store records it.
	Size int64
	// Meta is the user metadata stored with the object (backup sets
	// etcdsafe-created, -host, -cluster and -revision); nil for none.
	Meta map[string]string
	// Sidecar reads the archive's sidecar; an error wrapping
	// fs.ErrNotExist means there is none, as does nil (a stream such as
	// standard input).
	Sidecar func() (*archive.Sidecar, error)
	// Index opens the archive's key index (package keyindex); an error
	// wrapping fs.ErrNotExist, or a nil Index, means there is none. The
	// caller of Index closes what it returns.
	Index func() (io.ReadCloser, error)
	// Checksum, called once R has returned io.EOF, names the store's own
	// checksum of the object ("S3 CRC-32C") and tells whether it was
	// compared with the bytes read (false: the store keeps none for the
	// object). A mismatch is not reported here: R returns it instead of
	// io.EOF, and Verify fails with it. nil: the store has none.
	Checksum func() (name string, compared bool)
}

// VerifyReport is what [Verify] found; its JSON form is verify -o json.
type VerifyReport struct {
	// Archive is the path verified; ArchiveBytes and SHA256 (hex) its
	// size and hash as read.
	Archive      string `json:"archive"`
	ArchiveBytes int64  `json:"archiveBytes"`
	SHA256       string `json:"sha256"`
	// Encrypted is false for an archive read with AllowUnencrypted.
	Encrypted bool              `json:"encrypted"`
	Manifest  *archive.Manifest `json:"manifest"`
	// Trailer is the snapshot's SHA-256 trailer verdict: "verified",
	// "MISMATCH" or "absent (...)".
	Trailer string `json:"trailer"`
	// Status is the snapshot's status, with bbolt's consistency check.
	Status *inspect.Status `json:"status"`
	// Sidecar compares the archive with its sidecar: "matches",
	// "MISMATCH", "none" or "unreadable".
	Sidecar string `json:"sidecar"`
	// ChecksumName and Checksum are, for an [Object] whose store keeps a
	// checksum of its own, its name ("S3 CRC-32C") and its verdict on the
	// bytes read: "matches", or "none" when the store keeps none for
	// this object. Empty for a file. A mismatch fails Verify instead.
	ChecksumName string `json:"checksumName,omitempty"`
	Checksum     string `json:"checksum,omitempty"`
	// Index is the key index's verdict: "matches" (it decrypts, describes
	// this archive and lists every record of its snapshot), "none", or
	// "BAD" (Verify then fails with why).
	Index string `json:"index"`
}

// Checksum verdicts of [VerifyReport.Checksum].
const (
	ChecksumMatches = "matches"
	ChecksumNone    = "none"
)

// Verify reads the whole archive at path as restore would (decryption,
// every entry against the manifest, nothing missing, added or trailing),
// extracts its snapshot into a private staging dir under TmpDir, checks
// the snapshot's SHA-256 trailer and runs bbolt's consistency check on it,
// compares the archive with its sidecar, and checks its key index if it has
// one (with the same identities). The staging dir is removed
// before Verify returns; the ones killed runs left are removed first.
//
// When the archive or its snapshot cannot be read, Verify returns a nil
// report and an error wrapping the archive package's sentinels,
// snapshot's or inspect's. Otherwise it returns the report, with an error
// for the first of these that holds: bbolt's check found errors
// (inspect.ErrCorrupt), some records could not be decoded
// ([ErrSnapshotProblems]), the sidecar could not be read or describes
// another file (archive.ErrTampered), the key index is damaged or
// describes another archive or snapshot (keyindex's errors, which wrap
// archive.ErrTampered, archive.ErrTruncated or archive.ErrWrongKey). It
// may be retried.
//
// With [VerifyOptions.Object] it reads that object's bytes, once, as it
// would a file's, takes the sidecar from [Object.Sidecar], and reports
// the store's own checksum verdict besides the archive's SHA-256 against
// the sidecar: a store checksum mismatch fails it with R's error.
func Verify(ctx context.Context, path string, o VerifyOptions) (*VerifyReport, error) {
	var src io.Reader
	x := archive.ExtractOptions{Path: path, SHA256: true}
	if obj := o.Object; obj != nil {
		src, x.Path, x.Sidecar = obj.R, "", obj.Sidecar
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		defer f.Close()
		src = f
	}
	removed, err := fsx.SweepStaging(o.TmpDir, VerifyStagingPrefix)
	for _, d := range removed {
		if o.OnSwept != nil {
			o.OnSwept(d)
		}
	}
	if err != nil && o.OnSweepError != nil {
		o.OnSweepError(err)
	}
	stage, err := fsx.NewStaging(o.TmpDir, VerifyStagingPrefix)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stage.Remove() }() // best effort; the next run sweeps what is left
	x.SnapshotTo = filepath.Join(stage.Path, "snapshot.db")
	res, err := archive.Extract(ctx, src, archive.ReaderOptions{Identities: o.Identities, Insecure: o.AllowUnencrypted}, x)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	rep := &VerifyReport{Archive: path, ArchiveBytes: res.ArchiveBytes, SHA256: res.ArchiveSHA256, Encrypted: res.Encrypted, Manifest: res.Manifest}
	readSidecar := func() (*archive.Sidecar, error) { return archive.ReadSidecar(archive.SidecarPath(path)) }
	openIndex := fileIndex(path)
	if obj := o.Object; obj != nil {
		readSidecar, openIndex = obj.sidecar, obj.Index
		if obj.Checksum != nil {
			// Extract read R to its end: the store's verdict is in
			name, compared := obj.Checksum()
			rep.ChecksumName, rep.Checksum = name, ChecksumNone
			if compared {
				rep.Checksum = ChecksumMatches
			}
		}
	}
	if err := rep.checkSnapshot(ctx, res.Snapshot); err != nil {
		return nil, err
	}
	sideErr := rep.checkSidecar(readSidecar)
	if err := rep.checkIndex(ctx, openIndex, o.Identities, res.Snapshot); err != nil && sideErr == nil {
		sideErr = err
	}
	switch st := rep.Status; {
	case len(st.CheckErrors) > 0:
		return rep, fmt.Errorf("bbolt consistency check of the snapshot found %d error(s): %w", len(st.CheckErrors), inspect.ErrCorrupt)
	case len(st.Problems) > 0:
		return rep, fmt.Errorf("%d record(s): %w", len(st.Problems), ErrSnapshotProblems)
	}
	return rep, sideErr
}

// trailerVerdicts are [VerifyReport.Trailer]'s words.
var trailerVerdicts = map[snapshot.TrailerStatus]string{
	snapshot.TrailerValid:    "verified",
	snapshot.TrailerMismatch: "MISMATCH",
	snapshot.TrailerNone:     "absent (snapshot came from a raw db copy)",
}

// checkSnapshot checks the extracted snapshot p's trailer and runs bbolt's
// consistency check, filling in Trailer and Status.
func (r *VerifyReport) checkSnapshot(ctx context.Context, p string) error {
	// The trailer's SHA-256 (1.4 s for 2 GB) on a second core while the
	// status and bbolt's consistency check read the same file.
	type trailerResult struct {
		ts  snapshot.TrailerStatus
		err error
	}
	trailer := make(chan trailerResult, 1)
	go func() {
		ts, err := snapshot.VerifyTrailer(p)
		trailer <- trailerResult{ts, err}
	}()
	snap, err := inspect.Open(p, inspect.OpenOptions{Name: r.Archive + " (its etcd/snapshot.db)"})
	var st *inspect.Status
	if err == nil {
		st, err = snap.Status(ctx, true)
		_ = snap.Close()
	}
	tr := <-trailer
	r.Trailer = trailerVerdicts[tr.ts]
	if tr.err != nil {
		if tr.ts == snapshot.TrailerMismatch {
			// tr.err names the staged copy; the user knows the archive
			return fmt.Errorf("snapshot in %s: its SHA-256 trailer does not match its contents: %w", r.Archive, snapshot.ErrTrailerMismatch)
		}
		return fmt.Errorf("snapshot in %s: %w", r.Archive, tr.err)
	}
	if err != nil {
		return fmt.Errorf("snapshot in %s: %w", r.Archive, err)
	}
	r.Status = st
	return nil
}

// checkSidecar compares the archive's size and SHA-256 with its sidecar,
// as read reads it, filling in Sidecar; a sidecar that describes another
// file is an integrity error.
func (r *VerifyReport) checkSidecar(read func() (*archive.Sidecar, error)) error {
	sc, err := read()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Sidecar = "none"
	case err != nil:
		r.Sidecar = "unreadable"
		return err
	case sc.ArchiveSize != r.ArchiveBytes || sc.ArchiveSHA256 != r.SHA256:
		r.Sidecar = "MISMATCH"
		return fmt.Errorf("the archive verified, but its sidecar describes another file (size %d, sha256 %s): %w",
			sc.ArchiveSize, sc.ArchiveSHA256, archive.ErrTampered)
	default:
		r.Sidecar = "matches"
	}
	return nil
}

// QuickReport is what [VerifyQuick] or [VerifyQuickObject] compared.
type QuickReport struct {
	// Archive is the path or URL checked; Sidecar the sidecar it matches.
	Archive string
	Sidecar *archive.Sidecar
	// Compared lists what matched the sidecar: "size" and "SHA-256" for
	// a file; "size" and the metadata the object carries ("created",
	// "host", "cluster", "revision") for an object.
	Compared []string
}

// VerifyQuick compares the size and SHA-256 of the archive at path with
// its sidecar, without a key: it proves the file is the one backup wrote,
// not that it decrypts or that the sidecar is genuine. A missing or
// unreadable sidecar is an error; a sidecar naming another archive, or a
// file that differs from it, wraps archive.ErrTampered (a shorter file
// archive.ErrTruncated).
func VerifyQuick(_ context.Context, path string) (*QuickReport, error) {
	sc, err := archive.ReadSidecar(archive.SidecarPath(path))
	if err != nil {
		return nil, fmt.Errorf("quick verify needs the sidecar: %w", err)
	}
	if sc.Archive != filepath.Base(path) {
		return nil, fmt.Errorf("sidecar %s names %q: %w", archive.SidecarPath(path), sc.Archive, archive.ErrTampered)
	}
	if err := archive.VerifyAgainstSidecar(path, sc); err != nil {
		return nil, fmt.Errorf("quick verify: %w", err)
	}
	return &QuickReport{Archive: path, Sidecar: sc, Compared: []string{"size", "SHA-256"}}, nil
}

// sidecar calls Sidecar; nil means none.
func (o *Object) sidecar() (*archive.Sidecar, error) {
	if o.Sidecar == nil {
		return nil, fmt.Errorf("no sidecar: %w", fs.ErrNotExist)
	}
	return o.Sidecar()
}

// VerifyQuickObject is [VerifyQuick] for an object named name (its URL),
// without reading it: its size as the store records it and the metadata
// backup stored with it (created, host, cluster, revision, those it
// carries) are compared with its sidecar. It proves the object is the
// one backup published, as far as a store's word goes, not that its bytes
// are intact (full [Verify] reads them) nor that the sidecar is genuine.
// A missing or unreadable sidecar is an error; a sidecar naming another
// archive, or an object that differs from it, wraps archive.ErrTampered
// (a shorter object archive.ErrTruncated).
func VerifyQuickObject(_ context.Context, name string, obj *Object) (*QuickReport, error) {
	sc, err := obj.sidecar()
	if err != nil {
		return nil, fmt.Errorf("quick verify needs the sidecar: %w", err)
	}
	if base := path.Base(name); sc.Archive != base {
		return nil, fmt.Errorf("the sidecar of %s names %q: %w", name, sc.Archive, archive.ErrTampered)
	}
	if obj.Size != sc.ArchiveSize {
		kind := archive.ErrTampered
		if obj.Size < sc.ArchiveSize {
			kind = archive.ErrTruncated
		}
		return nil, fmt.Errorf("quick verify: %s is %d bytes, its sidecar says %d: %w", name, obj.Size, sc.ArchiveSize, kind)
	}
	rep := &QuickReport{Archive: name, Sidecar: sc, Compared: []string{"size"}}
	for _, m := range []struct {
		field, key, side string
	}{
		{"created", MetaCreated, sc.Created.UTC().Format(time.RFC3339)},
		{"host", MetaHost, sc.Host},
		{"cluster", MetaCluster, sc.Cluster},
		{"revision", MetaRevision, strconv.FormatInt(sc.Revision, 10)},
	} {
		v, ok := obj.Meta[m.key]
		if !ok {
			continue
		}
		if m.field == "created" {
			// any zone backup wrote it in; the second is what it keeps
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				v = t.UTC().Format(time.RFC3339)
			}
		}
		if v != m.side {
			return nil, fmt.Errorf("quick verify: %s carries %s %q, its sidecar %q: %w", name, m.field, v, m.side, archive.ErrTampered)
		}
		rep.Compared = append(rep.Compared, m.field)
	}
	return rep, nil
}
