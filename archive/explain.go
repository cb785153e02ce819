package archive

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"filippo.io/age"
)

// sidecarOf says where [Extract]'s explanations find the archive's
// sidecar and size: the file at x.Path and the sidecar beside it, or, for a
// stream, x.Sidecar and the bytes read from it (n). ok is false when
// neither is given: there is nothing to explain with.
type sidecarOf struct {
	name    string // the archive in messages
	path    string
	sidecar func() (*Sidecar, error)
	n       func() int64
}

func (s sidecarOf) ok() bool { return s.path != "" || s.sidecar != nil }

func (s sidecarOf) read() (*Sidecar, error) {
	if s.path != "" {
		return ReadSidecar(SidecarPath(s.path))
	}
	return s.sidecar()
}

// size is the archive's size: the file's, or the bytes the stream held.
func (s sidecarOf) size() (int64, error) {
	if s.path != "" {
		st, err := os.Stat(s.path)
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	return s.n(), nil
}

// explainCut tells a cut archive from a damaged one where age cannot: a
// flipped bit in the last chunk (in an archive of one chunk, the
// whole payload) fails exactly as a cut does, so the reader reports
// [ErrTruncated]. When the archive has a sidecar and has the size the
// sidecar records, nothing was cut: the error is [ErrTampered] instead,
// saying why. For a stream the size is what was read of it: age reads a
// damaged last chunk to its end before it fails, and a cut stream ends
// short of the sidecar's size. Any other err is returned as it is.
// [Extract] calls it when given the archive's Path or Sidecar.
func explainCut(s sidecarOf, err error) error {
	if !errors.Is(err, ErrTruncated) || !s.ok() {
		return err
	}
	sc, serr := s.read()
	if serr != nil {
		return err
	}
	size, serr := s.size()
	if serr != nil || size != sc.ArchiveSize {
		return err
	}
	return fmt.Errorf("%s has the %d bytes its sidecar records, so it was not cut short: its content was damaged or changed: %w", s.name, sc.ArchiveSize, ErrTampered)
}

// explainKey tells a damaged age header from a wrong key where age cannot:
// a flipped bit in the recipient stanza meant for ids fails exactly as a
// key the archive was not made for, [ErrWrongKey]. When the archive has a
// sidecar listing the fingerprint of one of ids' recipients, the key is
// right and the header was damaged: the error is [ErrTampered] instead. Any other err (or identities whose recipient cannot be
// derived, such as ssh keys and passphrases) is returned as it is.
// [Extract] calls it when given the archive's Path or Sidecar.
func explainKey(s sidecarOf, ids []age.Identity, err error) error {
	if !errors.Is(err, ErrWrongKey) || len(ids) == 0 || !s.ok() {
		return err
	}
	sc, serr := s.read()
	if serr != nil {
		return err
	}
	for _, id := range ids {
		fp := identityFingerprint(id)
		if fp != "" && slices.Contains(sc.Recipients, fp) {
			return fmt.Errorf("%s was made for this identity (its sidecar lists %s), but its age header does not open with it: the header was damaged or changed: %w", s.name, fp, ErrTampered)
		}
	}
	return err
}

// explainTruncation is [explainCut] for the archive file at path.
func explainTruncation(path string, err error) error {
	return explainCut(sidecarOf{name: path, path: path}, err)
}

// explainWrongKey is [explainKey] for the archive file at path.
func explainWrongKey(path string, ids []age.Identity, err error) error {
	return explainKey(sidecarOf{name: path, path: path}, ids, err)
}

// identityFingerprint is the [RecipientFingerprint] of id's recipient, or
// "" when it cannot be derived.
func identityFingerprint(id age.Identity) string {
	switch i := id.(type) {
	case *age.X25519Identity:
		return RecipientFingerprint(i.Recipient().String())
	case *age.HybridIdentity:
		return RecipientFingerprint(i.Recipient().String())
	}
	return ""
}
