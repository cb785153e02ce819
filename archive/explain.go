package archive

import (
	"errors"
	"fmt"
	"os"
)

// ExplainTruncation tells a cut archive from a damaged one where age
// cannot: a flipped bit in the last chunk (in an archive of one chunk, the
// whole payload) fails exactly as a cut does, so readers report
// [ErrTruncated]. When path has a sidecar and the file has the size the
// sidecar records, nothing was cut: the error is [ErrTampered] instead,
// saying why. Any other err is returned as it is.
func ExplainTruncation(path string, err error) error {
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
