package decode

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrBadKeyValue is wrapped by every error about a malformed KeyValue record.
var ErrBadKeyValue = errors.New("malformed KeyValue record")

// KeyValue is etcd's mvccpb.KeyValue as stored in the "key" bucket. Key and
// Value alias the input bytes: copy them if they must outlive a bbolt
// transaction.
type KeyValue struct {
	Key            []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Value          []byte
	Lease          int64
}

// ParseKeyValue decodes a mvccpb.KeyValue record without copying. It is
// wire-compatible with the generated code in go.etcd.io/etcd/api/v3/mvccpb
// (a test checks both agree) but allocates nothing, which matters on the
// query path that walks every record of a large snapshot. Unknown fields are
// skipped, as protobuf requires. A tombstone record holds only the key.
func ParseKeyValue(b []byte) (KeyValue, error) {
	var kv KeyValue
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return KeyValue{}, kvError(off, "bad field tag", protowire.ParseError(n))
		}
		off += n
		switch {
		case (num == 1 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b[off:])
			if n < 0 {
				return KeyValue{}, kvError(off, fmt.Sprintf("field %d", num), protowire.ParseError(n))
			}
			if num == 1 {
				kv.Key = v
			} else {
				kv.Value = v
			}
			off += n
		case num >= 2 && num <= 6 && num != 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b[off:])
			if n < 0 {
				return KeyValue{}, kvError(off, fmt.Sprintf("field %d", num), protowire.ParseError(n))
			}
			switch num {
			case 2:
				kv.CreateRevision = int64(v)
			case 3:
				kv.ModRevision = int64(v)
			case 4:
				kv.Version = int64(v)
			case 6:
				kv.Lease = int64(v)
			}
			off += n
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[off:])
			if n < 0 {
				return KeyValue{}, kvError(off, fmt.Sprintf("field %d", num), protowire.ParseError(n))
			}
			off += n
		}
	}
	if len(kv.Key) == 0 {
		return KeyValue{}, kvError(0, "record has no key", nil)
	}
	return kv, nil
}

func kvError(off int, reason string, err error) error {
	if err == nil {
		err = ErrBadKeyValue
	} else {
		err = fmt.Errorf("%w: %w", ErrBadKeyValue, err)
	}
	return &FormatError{What: "KeyValue", Offset: off, Reason: reason, Err: err}
}

// PeekKey returns the key of a KeyValue record when it is the first field,
// as etcd always writes it, without parsing the rest: the fast path for
// walks that skip most records. ok is false when the record does not start
// with the key; callers then use [ParseKeyValue].
func PeekKey(b []byte) (key []byte, ok bool) {
	if len(b) < 2 || b[0] != 0x0a { // field 1, wire type bytes
		return nil, false
	}
	n, l := protowire.ConsumeVarint(b[1:])
	if l < 0 || n > uint64(len(b)-1-l) {
		return nil, false
	}
	return b[1+l : 1+l+int(n)], true
}
