// Package termtext makes untrusted names (etcd keys, object names, paths
// from an archive) safe to print on a terminal: control characters, escape
// sequences, invalid UTF-8 and the bidirectional overrides that reorder what
// a reader sees are shown as Go escapes instead of reaching the terminal.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Safe reports whether s prints as itself: valid UTF-8 with no control or
// bidirectional formatting characters.
func Safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			return safeSlow(s)
		}
	}
	return true
}

func safeSlow(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			return false
		}
	}
	return true
}

// Clean returns s with every unsafe byte or rune written as a Go escape
// (\x1b, \u202e, \xff for invalid UTF-8); a safe s is returned as is, and
// backslashes are left alone (names rarely hold them, and doubling them
// would make every Windows-looking path unreadable).
func Clean(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune: C0 and C1 controls, DEL, and the Unicode format characters
// (bidi embeddings, overrides and isolates, zero-width joiners) that change
// how the rest of a line is shown.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
