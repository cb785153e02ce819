package archive

import (
	"slices"
	"testing"

	"filippo.io/age"
)

// TestRecipientFingerprints: one fingerprint per recipient ParseRecipients
// reads, in order, blank lines and comments skipped, surrounding space
// ignored.
func TestRecipientFingerprints(t *testing.T) {
	t.Parallel()
	a, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := a.Recipient().String(), b.Recipient().String()
	lines := []string{"# backup keys", "", "  " + ra + "  ", "\t", rb, "#" + rb}
	rs, err := ParseRecipients(lines)
	if err != nil {
		t.Fatal(err)
	}
	got := RecipientFingerprints(lines)
	want := []string{RecipientFingerprint(ra), RecipientFingerprint(rb)}
	if !slices.Equal(got, want) || len(rs) != len(got) {
		t.Fatalf("fingerprints %v, want %v (%d recipients)", got, want, len(rs))
	}
	if RecipientFingerprints([]string{"", "# none"}) != nil {
		t.Error("fingerprints of no recipient")
	}
}
