// Package store is where backups are kept: a [Target] stores named
// objects behind a small interface (list, stat, put with atomic publish,
// get, delete, lock, sweep of partial uploads), as restic's
// backend.Backend. [Local] is a directory; package store/s3store is an
// S3-compatible bucket. Naming, sidecars and retention are package
// backup's: a Target only stores bytes.
package store
