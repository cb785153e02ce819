package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/etcdsafe/etcdsafe/archive"
)

// Keys, passphrases and the environment: where recipients, identities and
// passphrases come from (flags naming files, the variables below, the
// terminal), never a flag value; etcdctl's ETCDCTL_* variables for the
// connection flags. Every environment variable etcdsafe reads is read in
// this file.

const (
	envIdentity         = "ETCDSAFE_IDENTITY"          // identity file opening archives
	envPassphrase       = "ETCDSAFE_PASSPHRASE"        // passphrase of passphrase archives
	envDecryptionConfig = "ETCDSAFE_DECRYPTION_CONFIG" // EncryptionConfiguration for values encrypted at rest
	envCPUProfile       = "ETCDSAFE_CPUPROFILE"        // write a CPU profile of the run
	envGoMemLimit       = "GOMEMLIMIT"                 // the Go runtime's own; set, etcdsafe keeps its hands off
)

// decryptionConfigDefault is --decryption-config's default.
func decryptionConfigDefault() string { return os.Getenv(envDecryptionConfig) }

// memLimitFromEnv reports whether GOMEMLIMIT is set (and so wins over
// etcdsafe's default limit).
func memLimitFromEnv() bool { return os.Getenv(envGoMemLimit) != "" }

// cpuProfilePath is where to write a CPU profile, or "".
func cpuProfilePath() string { return os.Getenv(envCPUProfile) }

// backupRecipients parses -r, -R and the passphrase; fps are the
// fingerprints recorded in the sidecar.
func backupRecipients(o *backupOptions) (recips []age.Recipient, fps []string, err error) {
	if o.insecure {
		return nil, nil, nil
	}
	lines := append([]string(nil), o.recipients...)
	for _, f := range o.recipFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read recipients file: %w", err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	if len(lines) > 0 {
		recips, err = archive.ParseRecipients(lines)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("recipients: %w", err)}
		}
		return recips, archive.RecipientFingerprints(lines), nil
	}
	pass, err := readPassphrase(o.passFile, true)
	if err != nil {
		return nil, nil, err
	}
	r, err := archive.PassphraseRecipient(pass, testOnlyScryptLogN)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return []age.Recipient{r}, []string{archive.RecipientFingerprint("")}, nil
}

// readPassphrase reads a passphrase from file (first line) or, when file
// is empty, from ETCDSAFE_PASSPHRASE; file "tty" prompts on the terminal
// (twice when confirm is set, as for a new backup). Never from a flag value.
func readPassphrase(file string, confirm bool) ([]byte, error) {
	if file == "tty" {
		return promptPassphrase(confirm)
	}
	if file == "" {
		if v := os.Getenv(envPassphrase); v != "" {
			return []byte(v), nil
		}
		return nil, usagef("no passphrase: use --passphrase-file FILE, --passphrase-file tty or ETCDSAFE_PASSPHRASE")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	switch {
	case line == "" && strings.TrimSpace(rest) != "":
		// Never guess which later line was meant: the passphrase is the
		// first line, and a wrong guess would encrypt to a passphrase
		// nobody knows.
		return nil, usagef("the first line of passphrase file %s is blank: the passphrase must be on the first line", file)
	case line == "":
		return nil, usagef("passphrase file %s is empty", file)
	}
	return []byte(line), nil
}

// testOnlyScryptLogN, when non-zero, is the scrypt work factor of new
// passphrase archives (tests: age's default takes a second per archive).
var testOnlyScryptLogN int

// testOnlyPrompt replaces the terminal in tests.
var testOnlyPrompt func(prompt string) ([]byte, error)

// promptPassphrase asks on the controlling terminal, without echo.
func promptPassphrase(confirm bool) ([]byte, error) {
	ask := testOnlyPrompt
	if ask == nil {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, usagef("--passphrase-file tty needs a terminal: %v", err)
		}
		defer tty.Close()
		ask = func(prompt string) ([]byte, error) {
			fmt.Fprint(tty, prompt)
			b, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			return b, err
		}
	}
	pass, err := ask("Passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, usagef("empty passphrase")
	}
	if confirm {
		again, err := ask("Passphrase again: ")
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if string(again) != string(pass) {
			return nil, usagef("the passphrases differ")
		}
	}
	return pass, nil
}

// applyEnv fills unset connection flags from etcdctl's environment.
func (o *backupOptions) applyEnv(cmd *cobra.Command) {
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{"endpoints", "ETCDCTL_ENDPOINTS", &o.endpoints},
		{"cacert", "ETCDCTL_CACERT", &o.cacert},
		{"cert", "ETCDCTL_CERT", &o.cert},
		{"key", "ETCDCTL_KEY", &o.key},
	} {
		if v := os.Getenv(e.env); v != "" && !cmd.Flags().Changed(e.flag) {
			*e.dst = v
		}
	}
}

// validateRecipients checks that exactly one way of encrypting was chosen.
func (o *backupOptions) validateRecipients() error {
	hasPass := o.passFile != "" || os.Getenv(envPassphrase) != ""
	hasRecip := len(o.recipients) > 0 || len(o.recipFiles) > 0
	switch {
	case o.insecure && (hasRecip || o.passFile != ""):
		return usagef("--insecure-no-encryption excludes -r, -R and --passphrase-file")
	case !o.insecure && !hasRecip && !hasPass:
		return usagef("no recipient: pass -r, -R, --passphrase-file (or ETCDSAFE_PASSPHRASE), or --insecure-no-encryption")
	case hasRecip && o.passFile != "":
		return usagef("a passphrase cannot be combined with -r/-R (age allows a passphrase only alone)")
	}
	return nil
}

// readIdentities loads the identity file (-i, else $ETCDSAFE_IDENTITY) or
// the passphrase (--passphrase-file, else $ETCDSAFE_PASSPHRASE) that opens
// an archive. None at all is not an error: an unencrypted archive needs
// none, and an encrypted one then fails with archive.ErrWrongKey.
func readIdentities(identity, passFile string, stderr io.Writer) ([]age.Identity, error) {
	path := identity
	if path == "" {
		path = os.Getenv(envIdentity)
	}
	if path != "" {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o004 != 0 {
			fmt.Fprintf(stderr, "etcdsafe: warning: identity file %s is readable by everyone\n", path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read identity file: %w: %w", err, archive.ErrWrongKey)
		}
		ids, err := archive.ParseIdentities(b)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w: %w", path, err, archive.ErrWrongKey)
		}
		return ids, nil
	}
	if passFile != "" || os.Getenv(envPassphrase) != "" {
		pass, err := readPassphrase(passFile, false)
		if err != nil {
			return nil, err
		}
		id, err := archive.PassphraseIdentity(pass)
		if err != nil {
			return nil, err
		}
		return []age.Identity{id}, nil
	}
	return nil, nil
}
