// Package keyindex writes and reads the key index that backup puts beside
// each archive (ARCHIVE.index): one line per record of the snapshot's key
// bucket (key, revision, create revision, version, lease, value size and
// the value's SHA-256; deletions too), never a value, so that timeline can
// tell in which archives an object changed by reading indexes of a few
// megabytes instead of whole archives. The layout is in docs/FORMAT.md
// ("Key index").
//
// Invariants:
//   - An index is encrypted with age to the archive's recipients and
//     compressed with zstd, as the archive is; reading one needs an
//     identity of the archive.
//   - An index is bound to its archive: its header holds the snapshot's
//     size, SHA-256 and revision (as the archive's manifest does), its
//     trailer the archive's size and SHA-256 (as the sidecar does).
//     [Index.CheckArchive] compares them; a value read from the archive is
//     compared with its record by [Record.Matches].
//   - Nothing read is trusted before the end: the trailer's record count
//     and the SHA-256 of the records, age's final chunk and zstd's end are
//     checked before [Read] returns. Sizes are bounded (keys, header and
//     trailer, zstd window and memory).
//   - Errors wrap this package's sentinels and, for the command's exit
//     codes, the archive package's (a damaged index is
//     archive.ErrTampered, a cut one archive.ErrTruncated, a wrong key
//     archive.ErrWrongKey).
//
// Non-guarantees: an index proves what an archive holds only as far as
// age does: whoever holds a recipient can write one. It is an accelerator:
// readers that cannot use one read the archive whole.
package keyindex
