package main

import "testing"

// TestExitStatus: the block lists the codes given, in order, and only
// those; every code has a meaning.
func TestExitStatus(t *testing.T) {
	got := exitStatusWith(map[int]string{exitFailure: "the sources differ"}, exitOK, exitFailure, exitUsage)
	want := "\n\nEXIT STATUS\n  0    success\n  1    the sources differ\n  2    usage error"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, c := range exitRead {
		if exitCodeHelp[c] == "" {
			t.Errorf("exit code %d has no meaning", c)
		}
	}
}
