// Package source opens a SOURCE of the read commands: an etcd snapshot
// (with or without its SHA-256 trailer), the db of a data dir, a backup
// archive, standard input holding a snapshot or an archive, or any other
// stream ([Options.Input]: an object in a bucket) holding one. It hands
// back an [inspect.Snapshot] with the decoder of the file's values, works
// out the integrity verdict on the file's bytes on a core of its own, and
// renders single records as Kubernetes objects.
//
// Guarantees:
//   - Evidence is read-only. An archive or standard input is staged, after
//     full verification by [archive.Extract], in a private 0700 directory
//     ([fsx.Staging]) that [Source.Close] removes; a failed [Open] leaves
//     nothing behind, and the leftovers of killed runs are swept first.
//   - Messages name the file as the user named it ("standard input",
//     "ARCHIVE (its etcd/snapshot.db)"), never the staged copy.
//   - A damaged snapshot (SHA-256 trailer mismatch, or a failed page check
//     with [Options.Check]) is reported as such: [Source.Verdict] and
//     [Source.Settle] return it in preference to any other error, and
//     nothing reaches a writer wrapped by [Source.Gate] before the verdict
//     is in.
//   - Fifos, sockets and devices are refused ([ErrSpecialFile]) before they
//     are opened: opening a fifo blocks beyond the reach of signals.
//
// Non-guarantees: a db without a trailer (a copied member/snap/db, a data
// dir) can only be checked page by page ([Options.Check]); without it, its
// integrity is unchecked and [Options.OnUnchecked] is told. The package
// never prints: what a caller may want to say goes through the callbacks
// of [Options].
package source
