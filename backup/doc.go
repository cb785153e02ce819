// Package backup writes etcdsafe backups and manages the places they are
// kept: [Run] takes a snapshot (from a live member over TLS, a db file or
// a stopped member's data dir), archives it with the control plane's
// config directory (archive.Writer: tar, zstd, age) and publishes the
// archive and its sidecar on a [store.Target]; [List] and [Prune] read and thin
// out a target without the key; [Verify] reads an archive back end to end
// (decryption, every entry, the snapshot's trailer and bbolt's check,
// the sidecar) and [VerifyQuick] compares it with its sidecar without the
// key; [WriteMetrics] writes the Prometheus textfile-collector file of a
// run.
//
// A [store.Target] stores named objects behind a small interface (list, stat,
// put with atomic publish, get, delete, lock, sweep of partial uploads),
// as restic's backend.Backend; [store.Local], a directory, is the first.
//
// Invariants:
//   - Nothing appears under an archive's or sidecar's name before it is
//     complete and durable ([store.Local]: temp file, byte count, fsync, link or
//     rename, directory fsync). A killed run leaves at most a partial
//     upload, which the next run or Prune removes under the lock.
//   - One run at a time per target: Run and Prune hold its lock.
//   - A live snapshot never touches the disk as plaintext: it is spooled
//     AES-CTR encrypted under an in-memory key (snapshot.SaveSpool) in a
//     locked 0700 staging dir under TmpDir, never inside a [store.Local]
//     target; every Run removes the staging dirs killed runs left.
//   - A db without a SHA-256 trailer is page-checked by bbolt before it
//     is archived; one with a mismatching trailer is refused.
//   - The kube dir is checked against the manifest's bound before the
//     snapshot is taken.
//   - Verify extracts the snapshot only into a locked 0700 staging dir
//     under its TmpDir, removed before it returns (a killed run's by the
//     next Verify or read command).
//   - Retention after a run applies only to that run's group and never
//     removes the archive just written; archives without a usable
//     sidecar are never deleted.
//
// Non-guarantees: the sidecar is not authenticated (only decrypting the
// archive proves who wrote it); the package never prints: it logs through
// a *slog.Logger and reports progress through [Progress].
package backup
