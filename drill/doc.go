// Package drill runs the automatic restore drill: it restores an opened
// SOURCE (a [source.Source]: a verified archive, snapshot or db) into a
// private temp dir with the restore package's own Prepare and Execute (a
// single member, Kubernetes-safe revision bump and compaction mark),
// starts an embedded etcd on it (loopback, a unix socket for clients when
// the path fits), reads every key back through a clientv3 client in pages
// and compares each with the snapshot's newest record of it (key set, mod
// and create revision, version, value bytes), decodes every object the
// way the read commands do (Secrets decrypted with the source's
// EncryptionConfiguration), compares the restored member's revision with
// the snapshot's and the archive manifest's, reports what would block a
// real restore (alarms carried in the snapshot, a db larger than the
// quota of the archived etcd manifest, KMS values whose plugin did not
// answer) and finally writes and deletes one key.
//
// Invariants:
//   - Everything is written inside one private 0700 dir
//     ".etcdsafe-drill-*" (internal/fsx.Staging, flocked while in use),
//     under [Options.TmpDir] or the system temp dir. [Run] removes it on
//     every return, errors and a cancelled context included; one that a
//     killed run left is removed by the next Run (reported to
//     [Options.OnSweep]).
//   - The source is only read; the embedded etcd listens on loopback
//     only, and is stopped before Run returns.
//   - A [Report] is returned whenever the drill got as far as the
//     restore, also on failure; the error is nil only when every check
//     passed and nothing blocks a restore.
//
// Non-guarantees: the drill proves that this snapshot restores and is
// served as it was taken; it does not start kube-apiserver, and values
// encrypted by a KMS provider are decrypted only through a KMS v2 plugin
// the source's decoder reaches (the others are counted, with the reason).
package drill
