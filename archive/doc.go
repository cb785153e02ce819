// Package archive reads and writes etcdsafe backup archives: a tar stream,
// compressed with zstd, encrypted with age. The layout is specified in
// docs/FORMAT.md; the short version is
//
//	age( zstd( tar( MANIFEST.json, etcd/snapshot.db, kubernetes/... ) ) )
//
// so that `age -d -i key.txt B | zstd -d | tar -x` opens it with stock tools.
//
// MANIFEST.json is the first entry and already lists the size and SHA-256 of
// every later entry. The writer therefore needs the snapshot's size and
// SHA-256 up front (the snapshot stage computes them while saving) and
// hashes the small kube directory in a first pass; it re-hashes everything
// while streaming and fails if a source changed. Nothing is spooled.
//
// Invariants and non-guarantees:
//   - A [Writer]'s output is not a valid archive until [Writer.Close]
//     returns nil; callers write to a temp file and commit it only then.
//   - [Extract] is the one read path: verify, the read commands and
//     restore all read archives through it, so the checks below (encryption
//     required unless Insecure, bounded sizes, every entry against the
//     manifest, nothing written outside its directory or through a symlink,
//     cancellation, the sidecar's word on what age cannot tell apart) hold
//     for every reader. It reads to the end and returns a result only if
//     the whole archive verified; a failed Extract removes the snapshot it
//     wrote.
//   - A [Reader], the primitive under Extract, decrypts and decompresses as
//     it goes. age authenticates each 64 KiB chunk, so plaintext it returns
//     is authentic, but truncation shows only at the end: nothing is
//     verified until [Reader.Next] has returned io.EOF.
//   - Integrity failures wrap [ErrTruncated], [ErrTampered] or
//     [ErrTrailingData]; key problems wrap [ErrWrongKey]; foreign input wraps
//     [ErrNotArchive]; archives from a newer etcdsafe wrap
//     [ErrUnsupportedVersion].
//   - The package knows nothing of etcd or Kubernetes beyond entry names.
package archive
