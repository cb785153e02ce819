// Package fsx holds the durable-write helpers every etcdsafe output goes
// through: a temp file created 0600 beside its target, committed by
// write → count check → Sync → Close → Rename → fsync of the directory, and
// an advisory lock that keeps two runs out of one directory.
//
// Invariants: a final name only ever appears after its content has been
// synced; on any error before Commit returns nil the final name is untouched
// and the temp file is removed by Abort. Non-guarantees: a process killed by
// SIGKILL leaves its temp file (".<name>.tmp-*") behind, since nothing runs
// to remove it; callers may sweep such files. The lock is advisory (flock)
// and only excludes other etcdsafe processes.
package fsx
