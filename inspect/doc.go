// Package inspect answers read-only queries over an etcd bbolt file (a
// snapshot, with or without its SHA-256 trailer, or the db of a data dir):
// status figures, the live and deleted keys of a prefix, one key's history.
//
// Invariants: the file is opened read-only (O_RDONLY, shared flock) and is
// never written; a db held by a running etcd is reported as [ErrLocked]
// after a timeout instead of blocking. Queries walk etcd's "key" bucket once,
// in revision order, with a cursor, and keep one small [Entry] per matching
// live key, never the values. Byte slices returned by a [Snapshot] are valid
// until its Close.
package inspect
