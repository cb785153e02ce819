package main

import (
	"errors"
	"strings"
	"testing"
)

// TestPromptPassphrase: --passphrase-file tty asks on the terminal, twice
// for a new backup, and refuses a mismatch or an empty answer.
func TestPromptPassphrase(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		confirm bool
		want    string
		wantErr string
	}{
		{"verify asks once", []string{"s3cret"}, false, "s3cret", ""},
		{"backup asks twice", []string{"s3cret", "s3cret"}, true, "s3cret", ""},
		{"mismatch", []string{"s3cret", "s3creT"}, true, "", "passphrases differ"},
		{"empty", []string{""}, false, "", "empty passphrase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			testOnlyPrompt = func(prompt string) ([]byte, error) {
				asked = append(asked, prompt)
				if len(asked) > len(tc.answers) {
					return nil, errors.New("asked too often")
				}
				return []byte(tc.answers[len(asked)-1]), nil
			}
			defer func() { testOnlyPrompt = nil }()
			got, err := readPassphrase("tty", tc.confirm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want %q (without the passphrase)", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want || len(asked) != len(tc.answers) {
				t.Fatalf("got %q, %v after %d prompts", got, err, len(asked))
			}
		})
	}
}

// TestPromptPassphraseNoTerminal: without a terminal, a clear usage error.
func TestPromptPassphraseNoTerminal(t *testing.T) {
	t.Parallel()
	if _, err := readPassphrase("tty", false); err == nil {
		t.Skip("this test process has a controlling terminal")
	} else if !strings.Contains(err.Error(), "needs a terminal") {
		t.Fatalf("err = %v", err)
	}
}
