// Package restore rebuilds an etcd data dir and a Kubernetes kube dir
// (/etc/kubernetes) from a backup archive, a snapshot file or a raw db (a
// file, or a stream: [Options.Input], standard input or an object in a
// bucket), and
// edits etcd's static pod manifest for --force-new-cluster.
//
// A restore is two steps. [Prepare] first removes the staging dirs that
// killed restores left, then reads and verifies the whole source (an
// archive to its end, a snapshot's SHA-256 trailer), resolves the
// membership from flags and the static pod manifest ([ResolveMembership]),
// checks that no etcd holds the data dir's db or listens on the manifest's
// client URLs, and compares the kube dir with the archive. It writes only
// inside a private staging dir, so the resulting [Plan] is also the dry
// run. [Plan.Execute] then builds the data dir with etcdutl's restore logic
// (go.etcd.io/etcd/etcdutl/v3/snapshot: bump revision, mark compacted,
// initial mmap size) in a staging dir beside it, renames the old data dir
// to "<dir>.etcdsafe-<UTC time>" and the new one into place.
//
// Invariants:
//   - Only an etcd data dir (a directory with member/snap/db) is moved
//     aside, an empty directory replaced, a missing one created; anything
//     else at the data dir (a file, a symlink, another directory) is
//     refused with [ErrNotDataDir] before anything is written.
//   - The data dir is never taken from a static pod manifest (the
//     archive's, this host's or --manifest) without the caller naming it:
//     a dry run shows the manifest's as a candidate, a real one fails with
//     [ErrDataDirNotConfirmed].
//   - An unencrypted archive is read only with AllowUnencrypted.
//   - Plaintext (the extracted snapshot and kube dir, the new data dir
//     while it is built) lives only in 0700 staging dirs named
//     ".etcdsafe-restore-*", flocked while in use (internal/fsx.Staging),
//     beside the data dir or in TmpDir, never in a backup directory. A run
//     killed at any point leaves at most such a dir, and every Prepare
//     removes the unlocked ones first.
//   - The old data dir is never deleted. Interrupted before the first
//     rename, nothing changed; between the two renames, [Plan.Recover] is
//     the one rename that puts it back; after them the restore is complete.
//   - Kube dir entries never escape the kube dir (os.Root, plus a check that
//     no entry is written through a symlink), every entry the archive holds
//     is restored whatever its name (temp and backup names are chosen so
//     that they never take an existing or restored name), and a differing
//     existing file is replaced only with Force, after being renamed to a
//     hidden sibling. Manifests are written last, so static pods start
//     with their files in place.
//   - [EditForceNewCluster] changes exactly the one flag's line, writes
//     atomically and keeps the previous file as a hidden sibling (the
//     kubelet would run a visible copy as a second pod).
//   - The restored cluster comes up writable: alarms in the snapshot are
//     cleared from the restored db (etcdutl's restore copies them); a db
//     within [MaxRequestBytes] of etcd's quota is refused unless
//     [Options.Compact], which compacts and defragments it through etcd's
//     mvcc and backend code and checks the quota again before any rename.
//     [Options.CleanLeases] deletes [Plan.StaleKeys] in one mvcc write.
//   - A dry run fails only on what stops it from making a plan; what a
//     real restore would refuse after that is a [Blocker], and
//     [Plan.Refusal] returns the error the real restore would return.
//
// Non-guarantees: the kube dir restore is not atomic as a whole (each file
// is); the WAL always goes inside the data dir (no --wal-dir); the package
// does not start or stop etcd or the kubelet, and owners are restored only
// when running as root.
package restore
