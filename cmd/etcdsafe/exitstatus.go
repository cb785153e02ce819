package main

import (
	"fmt"
	"strings"
)

// exitCodeHelp says what each exit code means, for --help.
var exitCodeHelp = map[int]string{
	exitOK:        "success",
	exitFailure:   "failure (some objects could not be decoded, I/O errors, bugs)",
	exitUsage:     "usage error",
	exitIntegrity: "integrity: truncated, corrupted or mismatching input",
	exitKey:       "wrong or missing decryption key",
	exitLocked: `locked: a running etcd holds the db (use a copy or a snapshot), or another
       etcdsafe backup/prune holds the output directory`,
	exitInterrupted: "interrupted",
}

// Which codes each kind of command can return, for its --help.
var (
	// exitRead: commands that read a SOURCE (a db, data dir or archive).
	exitRead = []int{exitOK, exitFailure, exitUsage, exitIntegrity, exitKey, exitLocked, exitInterrupted}
	// exitLocal: commands that read or write nothing but their arguments.
	exitLocal = []int{exitOK, exitFailure, exitUsage}
)

// exitStatus is the EXIT STATUS block of a command's --help: the codes it
// can return, in the order given; a code's meaning can be replaced with
// exitStatusWith.
func exitStatus(codes ...int) string { return exitStatusWith(nil, codes...) }

// exitStatusWith is exitStatus with some codes explained as the command
// means them (diff's 1: the sources differ).
func exitStatusWith(own map[int]string, codes ...int) string {
	var b strings.Builder
	b.WriteString("\n\nEXIT STATUS")
	for _, c := range codes {
		text, ok := own[c]
		if !ok {
			text = exitCodeHelp[c]
		}
		fmt.Fprintf(&b, "\n  %-4d %s", c, text)
	}
	return b.String()
}
