package decode

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// quoteWindow is the shortest run of a value's bytes that, found in a
// decoder's message, makes the message withheld.
const quoteWindow = 8

// causeWithoutValue describes a third-party decoder's error about value
// without quoting the value: apimachinery's "Object 'Kind' is missing in
// '<the whole object>'" would print a Secret's data in an error message.
// Known errors are described by their kind and offset; any other message
// is kept only if it quotes no 8-byte run of the value, else replaced by
// the value's length and SHA-256 (bbolt's redacted form).
func causeWithoutValue(err error, value []byte) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case runtime.IsMissingKind(err):
		return "the object names no kind"
	case runtime.IsMissingVersion(err):
		return "the object names no apiVersion"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("JSON field %q holds a value that is not a %s", typ.Field, typ.Type)
	}
	msg := err.Error()
	if quotes(msg, value) {
		return fmt.Sprintf("the decoder's message quotes the value and is withheld (value len=%d sha256=%x)", len(value), sha256.Sum256(value))
	}
	return msg
}

// quotes reports whether msg holds any run of quoteWindow bytes of value.
func quotes(msg string, value []byte) bool {
	for i := 0; i+quoteWindow <= len(msg); i++ {
		if bytes.Contains(value, []byte(msg[i:i+quoteWindow])) {
			return true
		}
	}
	return false
}
