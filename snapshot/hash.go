package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// FileHash describes a snapshot or db file as [HashFile] read it.
type FileHash struct {
	// Size is the number of bytes read: the whole file.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the whole file, trailer
	// included (what archive.Writer.AddSnapshot takes).
	SHA256 string
	// CRC32C is the CRC-32C (Castagnoli) of the whole file, from the same
	// read (for archive.Writer.AddSnapshotCRC, which checks its own second
	// read against it).
	CRC32C uint32
	// Trailer says whether the file ends with a valid SHA-256 trailer.
	Trailer TrailerStatus
}

// HashFile reads the file at path once and returns its size, whole-file
// SHA-256 and CRC-32C, and its trailer status. A mismatching trailer is
// not an error here: Trailer is [TrailerMismatch] and the caller decides.
// A file that changes size while it is read fails with an error wrapping
// [io.ErrUnexpectedEOF].
func HashFile(path string) (FileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileHash{}, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileHash{}, fmt.Errorf("stat snapshot: %w", err)
	}
	// One hasher, one pass: the trailer is the SHA-256 of the body, and the
	// whole file's SHA-256 goes on from that same state (Sum does not
	// change it). The CRC-32C rides along (~10x cheaper than SHA-256).
	h := sha256.New()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	hasTrailer := HasTrailerSize(st.Size())
	bodyLen := st.Size()
	if hasTrailer {
		bodyLen -= TrailerSize
	}
	n, err := io.CopyBuffer(io.MultiWriter(h, crc), io.NewSectionReader(f, 0, bodyLen), make([]byte, 1<<20))
	if err != nil {
		return FileHash{}, fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if n != bodyLen {
		return FileHash{}, fmt.Errorf("snapshot %s changed size while read: %w", path, io.ErrUnexpectedEOF)
	}
	status := TrailerNone
	if hasTrailer {
		bodySum := h.Sum(nil)
		trailer := make([]byte, TrailerSize)
		if _, err := f.ReadAt(trailer, bodyLen); err != nil {
			return FileHash{}, fmt.Errorf("read trailer of %s: %w", path, err)
		}
		h.Write(trailer)
		crc.Write(trailer)
		n += TrailerSize
		status = TrailerValid
		if !bytes.Equal(trailer, bodySum) {
			status = TrailerMismatch
		}
	}
	return FileHash{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), CRC32C: crc.Sum32(), Trailer: status}, nil
}
