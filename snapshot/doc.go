// Package snapshot obtains a consistent bbolt image of an etcd member and
// checks the SHA-256 trailer that etcd appends to streamed snapshots.
//
// A snapshot streamed through the Maintenance Snapshot RPC (what `etcdctl
// snapshot save` does) is the bbolt file followed by 32 bytes: the SHA-256
// of everything before them. Such a file's size is a multiple of 512 plus
// 32. A raw copy of member/snap/db carries no trailer; bbolt opens both.
//
// Invariants: [Save] never leaves a partial file under its target path. It
// writes a 0600 temp file beside the target, verifies byte count and
// trailer at EOF, fsyncs, links it into place and fsyncs the directory. On
// any error, including a cancelled context, nothing exists under the
// target path and the temp file is removed.
//
// [SaveSpool] streams the snapshot into a temp file that never holds
// plaintext (AES-256-CTR under a random in-memory key, the file unlinked at
// once), for a caller that reads it once more to archive it; since bbolt
// cannot open it, [NewestRevision] reads the newest revision from a few
// pages through any io.ReaderAt.
//
// [Connect] dials one live member; when the etcd client cannot connect it
// probes the endpoint itself (TCP, a TLS handshake with the same
// configuration, an HTTP/2 preface) and returns a [*DialError] whose
// [Cause] names what is wrong (an unknown CA, a rejected client
// certificate, a certificate that does not name the host, http against
// https, nothing listening, another service on the port), not the
// client's "context deadline exceeded".
//
// Non-guarantees: the trailer proves the stream was not damaged in transit
// or at rest; it is not a signature and says nothing about who wrote it.
package snapshot
