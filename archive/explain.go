package archive

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"filippo.io/age"
)

// explainTruncation tells a cut archive from a damaged one where age
// cannot: a flipped bit in the last chunk (in an archive of one chunk, the
// whole payload) fails exactly as a cut does, so the reader reports
// [ErrTruncated]. When path has a sidecar and the file has the size the
// sidecar records, nothing was cut: the error is [ErrTampered] instead,
// saying why. Any other err is returned as it is. [Extract] calls it when
// given the archive's Path.
func explainTruncation(path string, err error) error {
	if !errors.Is(err, ErrTruncated) {
		return err
	}
	sc, serr := ReadSidecar(SidecarPath(path))
	if serr != nil {
		return err
	}
	st, serr := os.Stat(path)
	if serr != nil || st.Size() != sc.ArchiveSize {
		return err
	}
	return fmt.Errorf("%s has the %d bytes its sidecar records, so it was not cut short: its content was damaged or changed: %w", path, sc.ArchiveSize, ErrTampered)
}

// explainWrongKey tells a damaged age header from a wrong key where age
// cannot: a flipped bit in the recipient stanza meant for ids fails
// exactly as a key the archive was not made for, [ErrWrongKey]. When path
// has a sidecar listing the fingerprint of one of ids' recipients, the key
// is right and the header was damaged: the error is [ErrTampered]
// instead. Any other err (or identities whose recipient cannot be
// derived, such as ssh keys and passphrases) is returned as it is.
// [Extract] calls it when given the archive's Path.
func explainWrongKey(path string, ids []age.Identity, err error) error {
	if !errors.Is(err, ErrWrongKey) || len(ids) == 0 {
		return err
	}
	sc, serr := ReadSidecar(SidecarPath(path))
	if serr != nil {
		return err
	}
	for _, id := range ids {
		fp := identityFingerprint(id)
		if fp != "" && slices.Contains(sc.Recipients, fp) {
			return fmt.Errorf("%s was made for this identity (its sidecar lists %s), but its age header does not open with it: the header was damaged or changed: %w", path, fp, ErrTampered)
		}
	}
	return err
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
