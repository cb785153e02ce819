package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Identity is a newly generated age identity. Its String method never
// reveals the secret key.
type Identity struct {
	id        age.Identity
	secret    string
	recipient string
}

// GenerateIdentity returns a new identity: the post-quantum hybrid
// (ML-KEM-768 + X25519, recipient "age1pq1...") when pq is true, else
// classic X25519 ("age1...").
func GenerateIdentity(pq bool) (*Identity, error) {
	if pq {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, fmt.Errorf("generate hybrid identity: %w", err)
		}
		return &Identity{id: id, secret: id.String(), recipient: id.Recipient().String()}, nil
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate x25519 identity: %w", err)
	}
	return &Identity{id: id, secret: id.String(), recipient: id.Recipient().String()}, nil
}

// Age returns the identity for decryption.
func (i *Identity) Age() age.Identity { return i.id }

// Recipient returns the public recipient string to encrypt to.
func (i *Identity) Recipient() string { return i.recipient }

// String returns "redacted".
func (i *Identity) String() string { return "redacted" }

// File returns the identity file content, in age-keygen's format.
func (i *Identity) File(created time.Time) []byte {
	return []byte(fmt.Sprintf("# created: %s\n# public key: %s\n%s\n",
		created.UTC().Format(time.RFC3339), i.recipient, i.secret))
}

// WriteIdentityFile writes id to a new file at path with mode 0600. It
// refuses to replace an existing file (the error wraps [os.ErrExist]) and
// removes a partly written file on error.
func WriteIdentityFile(path string, id *Identity) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create identity file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(id.File(time.Now())); err != nil {
		return fmt.Errorf("write identity file %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync identity file %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close identity file %q: %w", path, err)
	}
	return nil
}

// ParseRecipients parses recipients, one per line as in age's -R files:
// age X25519 ("age1..."), age post-quantum hybrid ("age1pq1..."),
// "ssh-ed25519 ..." and "ssh-rsa ..." public keys. Blank lines and lines
// starting with "#" are skipped. Errors name the line, never its content.
func ParseRecipients(lines []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for n, l := range lines {
		l = strings.TrimSpace(l)
		if skipRecipientLine(l) {
			continue
		}
		var r age.Recipient
		var err error
		switch {
		case strings.HasPrefix(l, "age1pq1"):
			r, err = age.ParseHybridRecipient(l)
		case strings.HasPrefix(l, "age1"):
			r, err = age.ParseX25519Recipient(l)
		case strings.HasPrefix(l, "ssh-ed25519 "), strings.HasPrefix(l, "ssh-rsa "):
			r, err = agessh.ParseRecipient(l)
		case strings.HasPrefix(l, "AGE-SECRET-KEY-"):
			return nil, fmt.Errorf("recipient line %d is a secret key, not a recipient", n+1)
		default:
			return nil, fmt.Errorf("recipient line %d: unsupported recipient type", n+1)
		}
		if err != nil {
			return nil, fmt.Errorf("recipient line %d: %w", n+1, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("no recipients found")
	}
	return out, nil
}

// RecipientFingerprints returns the [RecipientFingerprint] of each
// recipient among lines, skipping what [ParseRecipients] skips.
func RecipientFingerprints(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); !skipRecipientLine(l) {
			out = append(out, RecipientFingerprint(l))
		}
	}
	return out
}

// skipRecipientLine reports whether a trimmed recipient line is blank or a
// comment.
func skipRecipientLine(l string) bool { return l == "" || strings.HasPrefix(l, "#") }

// ParseIdentities parses an identity file: age identities (X25519 and
// post-quantum hybrid, one per line, "#" comments) or one unencrypted
// OpenSSH/PEM private key (ed25519 or RSA). Errors never include key
// material. Passphrase-protected ssh keys are refused.
func ParseIdentities(data []byte) ([]age.Identity, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(trimmed)
		if err != nil {
			var pm *ssh.PassphraseMissingError
			if errors.As(err, &pm) {
				return nil, errors.New("ssh identity is passphrase-protected; decrypt it or use an age identity")
			}
			return nil, fmt.Errorf("parse ssh identity: %w", err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse age identities: %w", err)
	}
	return ids, nil
}

// PassphraseRecipient returns an scrypt recipient for pass. age requires it
// to be the archive's only recipient. logN is scrypt's work factor (log2
// of N); 0 is age's default (18, about a second), what every archive
// should use; tests pass a small one.
func PassphraseRecipient(pass []byte, logN int) (age.Recipient, error) {
	if len(pass) == 0 {
		return nil, errors.New("empty passphrase")
	}
	r, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return nil, fmt.Errorf("passphrase recipient: %w", err)
	}
	if logN != 0 {
		r.SetWorkFactor(logN)
	}
	return r, nil
}

// PassphraseIdentity returns an scrypt identity for pass.
func PassphraseIdentity(pass []byte) (age.Identity, error) {
	if len(pass) == 0 {
		return nil, errors.New("empty passphrase")
	}
	id, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, fmt.Errorf("passphrase identity: %w", err)
	}
	return id, nil
}
