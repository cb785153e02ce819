// Package archtest holds a test that enforces the import directions of
// STYLE.md: decode, archive and snapshot are leaves; inspect builds on
// decode; restore on archive, decode, inspect and snapshot; only cmd
// imports everything, and nothing imports cmd.
package archtest
