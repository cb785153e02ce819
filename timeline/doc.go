// Package timeline follows one object across many backups: its versions
// as each backup's snapshot holds them (history inside a snapshot
// included), when each was written (between which backups, and by which
// field manager at which time), its deletions and re-creations, the YAML
// diff from one version to the next, and the archive each version can be
// restored from.
//
// The flow is [Discover] (the backups of a directory or a bucket prefix,
// with their sidecars and key indexes) then [Run]. Run reads each
// backup's key index (package keyindex) when it has one, which names the
// object's records and their value hashes without any value, and reads
// whole only the archives that hold a version no other read gave a value
// for, plus every backup without a usable index.
//
// Guarantees: an index is used only when it decrypts, verifies to its
// end and is bound to its archive (the sidecar's archive size and SHA-256,
// the revision); otherwise the archive is read whole and a warning says
// why. An archive read whole for a version must hold the records its
// index listed, with the same value hashes: a difference fails Run with
// keyindex.ErrMismatch, never a silently wrong timeline. Secret values
// are masked unless [Options.ShowSecrets]. Nothing is written but the
// staging each archive read needs (package source removes it).
//
// Non-guarantees: a change made and overwritten between two backups, and
// compacted away before the second, is in no backup: the timeline shows
// the versions the backups hold, and says when an object vanished from
// one backup to the next without a deletion record.
package timeline
