package decode

import (
	"strings"
	"testing"
)

// TestDecodeErrorsQuoteNoValue: a JSON-stored Secret without kind (or
// apiVersion, or with broken syntax) used to be printed whole, data
// included, in the decode error of get and dump.
func TestDecodeErrorsQuoteNoValue(t *testing.T) {
	t.Parallel()
	const secret = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk" // the value that must never show
	d := NewDecoder(nil)
	for _, tc := range []struct{ name, value, want string }{
		{"no kind", `{"apiVersion":"v1","metadata":{"name":"db"},"data":{"password":"` + secret + `"}}`, "names no kind"},
		{"cut", `{"kind":"Secret","apiVersion":"v1","data":{"password":"` + secret + `"}`, "unexpected end"},
		{"syntax", `{"kind":"Secret","apiVersion":"v1","data":{"password":"` + secret + `"}}}`, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Decode([]byte("/registry/secrets/default/db"), []byte(tc.value))
			if err == nil {
				t.Fatal("decoded")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, "password") {
				t.Fatalf("error quotes the value: %s", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
		})
	}
}

func TestCauseWithoutValue(t *testing.T) {
	t.Parallel()
	v := []byte(`{"data":{"token":"abcdefghijklmnop"}}`)
	if got := causeWithoutValue(errString("bad thing near abcdefghijkl"), v); strings.Contains(got, "abcdefgh") || !strings.Contains(got, "withheld") {
		t.Errorf("quoting message kept: %s", got)
	}
	if got := causeWithoutValue(errString("unexpected EOF"), v); got != "unexpected EOF" {
		t.Errorf("harmless message changed: %s", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
