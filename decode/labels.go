package decode

import (
	"reflect"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Labels returns the labels of the object a stored value holds, for label
// selectors (-l). A protobuf value of a built-in type is read only as far
// as its metadata: its envelope, the object's fields on the wire, and the
// ObjectMeta's labels, the rest of the object neither decoded nor checked
// (0.6 µs against 15 µs for a whole decode of a small Deployment:
// BenchmarkLabels). Any other
// value (JSON, CBOR, a custom resource) is decoded whole. The errors are
// Decode's: decryption, and values that are no object.
func (d *Decoder) Labels(key, val []byte) (map[string]string, error) {
	plain, info, err := d.decrypter.Decrypt(key, val)
	if err != nil {
		return nil, err
	}
	if SniffEncoding(plain) == EncodingProtobuf {
		if l, ok := protobufLabels(plain); ok {
			return l, nil
		}
	}
	v, err := d.decodePlain(plain, info)
	if err != nil {
		return nil, err
	}
	return v.Object.GetLabels(), nil
}

// protobufLabels reads the labels of a protobuf value of a built-in type
// whose metadata is its field 1. ok is false for any other value, and for
// one whose wire format this reading does not take: that one is decoded
// whole, so that its error (or, the protobuf decoder being more lenient
// about unknown fields, its labels) is the decoder's own.
func protobufLabels(b []byte) (labels map[string]string, ok bool) {
	env, err := ParseEnvelope(b)
	if err != nil || !metaIsFieldOne(schema.FromAPIVersionAndKind(env.APIVersion, env.Kind)) {
		return nil, false
	}
	// metadata: field 1, merged over its occurrences as a decoder merges
	// a message field that repeats on the wire
	ok = eachField(env.Raw, func(num protowire.Number, val []byte) bool {
		if num != 1 {
			return true
		}
		labels, ok = metaLabels(val, labels)
		return ok
	})
	if !ok {
		return nil, false
	}
	return labels, true
}

// metaLabels adds the labels of an ObjectMeta on the wire (field 11,
// map<string, string> entries: key 1, value 2) to labels; false if it does
// not parse.
func metaLabels(meta []byte, labels map[string]string) (map[string]string, bool) {
	ok := eachField(meta, func(num protowire.Number, entry []byte) bool {
		if num != 11 {
			return true
		}
		var k, v string
		if !eachField(entry, func(num protowire.Number, s []byte) bool {
			switch num {
			case 1:
				k = string(s)
			case 2:
				v = string(s)
			}
			return true
		}) {
			return false
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[k] = v
		return true
	})
	return labels, ok
}

// eachField checks that every field of msg parses, and calls fn with each
// length-delimited one until fn returns false; false if a field does not
// parse or fn returned false.
func eachField(msg []byte, fn func(num protowire.Number, val []byte) bool) bool {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false
		}
		msg = msg[n:]
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return false
		}
		if typ == protowire.BytesType {
			val, _ := protowire.ConsumeBytes(msg[:m])
			if !fn(num, val) {
				return false
			}
		}
		msg = msg[m:]
	}
	return true
}

var metaFieldOne sync.Map // schema.GroupVersionKind → bool

// metaIsFieldOne reports whether gvk is a built-in type whose ObjectMeta
// is protobuf field 1 (`protobuf:"bytes,1,opt,name=metadata"`), as every
// object type of k8s.io/api is; the tag is read from the Go type, not
// assumed.
func metaIsFieldOne(gvk schema.GroupVersionKind) bool {
	if v, ok := metaFieldOne.Load(gvk); ok {
		return v.(bool)
	}
	ok := false
	if t, found := scheme.AllKnownTypes()[gvk]; found && t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type != metaType {
				continue
			}
			tag := strings.Split(f.Tag.Get("protobuf"), ",")
			ok = len(tag) >= 2 && tag[0] == "bytes" && tag[1] == strconv.Itoa(1)
			break
		}
	}
	metaFieldOne.Store(gvk, ok)
	return ok
}
