package decode

import (
	"bytes"
	"errors"
	"fmt"

	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationinstall "k8s.io/kube-aggregator/pkg/apis/apiregistration/install"
)

// Encoding is how a (decrypted) value is serialized.
type Encoding string

// The encodings kube-apiserver writes, plus what else a record can hold.
const (
	EncodingProtobuf Encoding = "protobuf" // "k8s\x00" + runtime.Unknown
	EncodingJSON     Encoding = "json"
	EncodingCBOR     Encoding = "cbor" // self-described CBOR, tag 55799
	EncodingEmpty    Encoding = "empty"
	EncodingText     Encoding = "text" // e.g. compact_rev_key's decimal revision
	EncodingUnknown  Encoding = "unknown"
)

var (
	protobufMagic = []byte("k8s\x00")
	cborMagic     = []byte{0xd9, 0xd9, 0xf7}

	// ErrEmptyValue: the record has no value (etcdutl --bump-revision writes
	// such records; kube-apiserver never does).
	ErrEmptyValue = errors.New("empty value")
	// ErrUnknownEncoding: the value is neither protobuf, JSON nor CBOR.
	ErrUnknownEncoding = errors.New("unknown value encoding")
	// ErrUnknownType: a protobuf value names a type no scheme here knows.
	ErrUnknownType = errors.New("unknown stored type")
	// ErrBadValue: the value claims an encoding but does not decode.
	ErrBadValue = errors.New("value does not decode")
)

// SniffEncoding tells a decrypted value's serialization from its first bytes.
func SniffEncoding(v []byte) Encoding {
	switch {
	case len(v) == 0:
		return EncodingEmpty
	case bytes.HasPrefix(v, protobufMagic):
		return EncodingProtobuf
	case bytes.HasPrefix(v, cborMagic):
		return EncodingCBOR
	}
	t := bytes.TrimLeft(v, " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		return EncodingJSON
	}
	if isPrintable(v) {
		return EncodingText
	}
	return EncodingUnknown
}

func isPrintable(v []byte) bool {
	if len(v) > 4096 {
		return false
	}
	for _, c := range v {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Envelope is the protobuf "k8s\x00" wrapper: the stored type and the raw
// typed message.
type Envelope struct {
	APIVersion, Kind string
	Raw              []byte // aliases the input
}

// ParseEnvelope reads the "k8s\x00" + runtime.Unknown envelope without
// decoding the typed message inside. It never panics.
func ParseEnvelope(v []byte) (Envelope, error) {
	if !bytes.HasPrefix(v, protobufMagic) {
		return Envelope{}, &FormatError{What: "protobuf envelope", Reason: "missing k8s\\x00 magic", Err: ErrBadValue}
	}
	var u runtime.Unknown
	if err := safeUnmarshalUnknown(&u, v[len(protobufMagic):]); err != nil {
		return Envelope{}, &FormatError{What: "protobuf envelope", Offset: len(protobufMagic), Reason: "runtime.Unknown does not decode", Err: fmt.Errorf("%w: %w", ErrBadValue, err)}
	}
	if u.Kind == "" || u.APIVersion == "" {
		return Envelope{}, &FormatError{What: "protobuf envelope", Reason: "envelope names no apiVersion/kind", Err: ErrBadValue}
	}
	return Envelope{APIVersion: u.APIVersion, Kind: u.Kind, Raw: u.Raw}, nil
}

func safeUnmarshalUnknown(u *runtime.Unknown, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in protobuf decoder: %v", r)
		}
	}()
	return u.Unmarshal(b)
}

// Scheme returns the runtime.Scheme with every type etcdsafe decodes: all of
// k8s.io/api, apiextensions (CRDs) and apiregistration (APIServices).
func Scheme() *runtime.Scheme { return scheme }

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	// These only fail on programming errors (conflicting registrations).
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	apiextensionsinstall.Install(s)
	apiregistrationinstall.Install(s)
	return s
}()

// Value is a decoded record: the object as stored, and how it was stored.
type Value struct {
	// Object is the object at its storage version, with apiVersion and kind
	// set, exactly as serialized (no defaults, no resourceVersion).
	Object     *unstructured.Unstructured
	Encoding   Encoding
	Encryption EncryptionInfo
}

// StoredGVK is the group, version and kind the object was stored at.
func (v *Value) StoredGVK() schema.GroupVersionKind { return v.Object.GroupVersionKind() }

// Decoder turns stored values into objects. It is safe for concurrent use.
type Decoder struct {
	decrypter *Decrypter
	pb        *protobuf.Serializer
	cbor      runtime.Serializer
}

// NewDecoder returns a Decoder; d may be nil when no encryption keys are
// known (encrypted values then fail with [ErrEncrypted]).
func NewDecoder(d *Decrypter) *Decoder {
	return &Decoder{
		decrypter: d,
		pb:        protobuf.NewSerializer(scheme, scheme),
		cbor:      cbor.NewSerializer(scheme, scheme),
	}
}

// Decode decrypts (if needed) and decodes one stored value. key is the full
// etcd key (needed by aesgcm). The returned object never aliases val.
func (d *Decoder) Decode(key, val []byte) (*Value, error) {
	plain, info, err := d.decrypter.Decrypt(key, val)
	if err != nil {
		return nil, err
	}
	return d.decodePlain(plain, info)
}

// decodePlain decodes a value with its encryption removed.
func (d *Decoder) decodePlain(plain []byte, info EncryptionInfo) (*Value, error) {
	var err error
	out := &Value{Encryption: info, Encoding: SniffEncoding(plain)}
	switch out.Encoding {
	case EncodingEmpty:
		return nil, ErrEmptyValue
	case EncodingProtobuf:
		out.Object, err = d.decodeProtobuf(plain)
	case EncodingJSON:
		out.Object, err = decodeJSON(plain)
	case EncodingCBOR:
		out.Object, err = d.decodeCBOR(plain)
	default:
		if info.Encrypted() {
			// Decrypted bytes that are no known encoding: almost always a
			// wrong key that happened to pass CBC padding.
			return nil, fmt.Errorf("%w (provider %s, key %q)", ErrDecrypt, info.Provider, info.KeyName)
		}
		return nil, &FormatError{What: "value", Reason: fmt.Sprintf("neither protobuf, JSON nor CBOR (len=%d)", len(plain)), Err: ErrUnknownEncoding}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Decoder) decodeProtobuf(b []byte) (u *unstructured.Unstructured, err error) {
	env, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	gvk := schema.FromAPIVersionAndKind(env.APIVersion, env.Kind)
	if !scheme.Recognizes(gvk) {
		return nil, &FormatError{What: "protobuf value", Reason: fmt.Sprintf("type %s is not known to this etcdsafe build", gvk), Err: ErrUnknownType}
	}
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, &FormatError{What: "protobuf value", Reason: fmt.Sprintf("%s: decoder panicked", gvk), Err: ErrBadValue}
		}
	}()
	obj, _, err := d.pb.Decode(b, nil, nil)
	if err != nil {
		return nil, &FormatError{What: "protobuf value", Reason: gvk.String(), Err: fmt.Errorf("%w: %w", ErrBadValue, err)}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return toUnstructured(obj)
}

// toUnstructured converts a typed object with apimachinery's converter,
// which follows the JSON tags and the types' own JSON forms (times,
// quantities, int-or-strings) as the API server's JSON output does, without
// printing and parsing JSON. The parity test against a real API server's
// output guards this equivalence.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", obj.GetObjectKind().GroupVersionKind(), err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func decodeJSON(b []byte) (*unstructured.Unstructured, error) {
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(b, nil, nil)
	if err != nil {
		return nil, &FormatError{What: "JSON value", Reason: "not a Kubernetes object", Err: fmt.Errorf("%w: %s", ErrBadValue, causeWithoutValue(err, b))}
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		// a JSON List: not something kube-apiserver stores under one key
		return nil, &FormatError{What: "JSON value", Reason: "a list, not one object", Err: ErrBadValue}
	}
	return u, nil
}

func (d *Decoder) decodeCBOR(b []byte) (u *unstructured.Unstructured, err error) {
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, &FormatError{What: "CBOR value", Reason: "decoder panicked", Err: ErrBadValue}
		}
	}()
	u = &unstructured.Unstructured{}
	if _, _, err := d.cbor.Decode(b, nil, u); err != nil {
		return nil, &FormatError{What: "CBOR value", Reason: "not a Kubernetes object", Err: fmt.Errorf("%w: %s", ErrBadValue, causeWithoutValue(err, b))}
	}
	if u.GetKind() == "" {
		return nil, &FormatError{What: "CBOR value", Reason: "object has no kind", Err: ErrBadValue}
	}
	return u, nil
}
