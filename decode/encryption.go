package decode

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/storage/value"
	aestransformer "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	"k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
	kmsservice "k8s.io/kms/pkg/service"
	"sigs.k8s.io/yaml"
)

// EncryptedPrefix starts every value kube-apiserver encrypted at rest.
const EncryptedPrefix = "k8s:enc:"

var (
	// ErrEncrypted: the value is encrypted at rest and no key for its
	// provider and key name was given.
	ErrEncrypted = errors.New("value is encrypted at rest and no matching key was given")
	// ErrDecrypt: a key with the right name was given but it does not
	// decrypt the value (wrong secret, or a corrupted value).
	ErrDecrypt = errors.New("decryption failed: wrong key or corrupted value")
	// ErrKMS: the value was encrypted by a KMS plugin; only that plugin can
	// unwrap its data key, so etcdsafe cannot decrypt it offline.
	ErrKMS = errors.New("value is encrypted by a KMS provider, which only its KMS plugin can decrypt")
	// ErrBadEncryptionConfig: the EncryptionConfiguration cannot be used.
	ErrBadEncryptionConfig = errors.New("invalid encryption configuration")
)

// EncryptionInfo describes the outer layer of a stored value.
type EncryptionInfo struct {
	// Provider is "identity" for a plain value, otherwise the provider named
	// in the prefix: "aescbc", "aesgcm", "secretbox", "kms".
	Provider string
	// Version is the prefix version ("v1", "v2" for kms v2).
	Version string
	// KeyName is the key (or KMS plugin) name from the prefix.
	KeyName string
	// HeaderLen is the length of the "k8s:enc:...:" prefix.
	HeaderLen int
}

// String gives "aescbc:key1", "kms:v2:vault" or "identity".
func (e EncryptionInfo) String() string {
	switch e.Provider {
	case "identity", "":
		return "identity"
	case "unknown":
		return "unknown"
	case "kms":
		return "kms:" + e.Version + ":" + e.KeyName
	}
	return e.Provider + ":" + e.KeyName
}

// Encrypted reports whether the value carried an encryption prefix.
func (e EncryptionInfo) Encrypted() bool { return e.HeaderLen > 0 }

// SniffEncryption reads the encryption prefix of a stored value, if any:
// "k8s:enc:<provider>:<version>:<keyname>:". It never allocates the value.
func SniffEncryption(v []byte) EncryptionInfo {
	n := EncryptionHeaderLen(v)
	switch {
	case n == 0:
		return EncryptionInfo{Provider: "identity"}
	case n == len(EncryptedPrefix):
		return EncryptionInfo{Provider: "unknown", HeaderLen: n}
	}
	parts := strings.SplitN(string(v[len(EncryptedPrefix):n-1]), ":", 3)
	return EncryptionInfo{Provider: parts[0], Version: parts[1], KeyName: parts[2], HeaderLen: n}
}

// EncryptionHeaderLen is the length of v's "k8s:enc:<provider>:<version>:
// <keyname>:" header, without allocating: 0 for a value not encrypted,
// len(EncryptedPrefix) when the prefix is not followed by three fields.
func EncryptionHeaderLen(v []byte) int {
	if !bytes.HasPrefix(v, []byte(EncryptedPrefix)) {
		return 0
	}
	// provider and version are short ASCII words; the key name ends at the
	// next ':'. Key names are limited in practice; cap the search so that a
	// corrupt value does not make us scan megabytes.
	off := len(EncryptedPrefix)
	for range 3 {
		rest := v[off:]
		j := bytes.IndexByte(rest[:min(len(rest), 256)], ':')
		if j < 0 {
			return len(EncryptedPrefix)
		}
		off += j + 1
	}
	return off
}

// KMSError says which KMS provider encrypted a value that no KMS plugin
// was reached for: KMS v1 (unsupported), or a KMS v2 provider with no
// [KMSConnector] or no endpoint known for its plugin.
type KMSError struct {
	Info EncryptionInfo
}

func (e *KMSError) Error() string {
	if e.Info.Version == "v1" {
		return fmt.Sprintf("value is encrypted by KMS v1 provider %q: KMS v1 is deprecated (off by default since Kubernetes 1.29) and etcdsafe does not support it; only KMS v2 values can be decrypted", e.Info.KeyName)
	}
	return fmt.Sprintf("value is encrypted by KMS %s provider %q: only its KMS plugin can decrypt it, and no endpoint for that plugin is known", e.Info.Version, e.Info.KeyName)
}

// Unwrap returns [ErrKMS].
func (e *KMSError) Unwrap() error { return ErrKMS }

// Decrypter removes the encryption-at-rest layer of values, with the keys of
// an EncryptionConfiguration. It holds secrets: its String method redacts.
type Decrypter struct {
	// by prefix "k8s:enc:aescbc:v1:key1:", every transformer configured for
	// it (the same key name can appear under several resources with
	// different secrets; each is tried in order).
	byPrefix map[string][]value.Transformer
	kms      map[string]string // KMS v2 provider name in the config -> endpoint

	kmsConn KMSConnector
	kmsMu   sync.Mutex
	kmsT    map[string]value.Transformer // by provider name, made on first use
}

func (d *Decrypter) String() string {
	if d == nil {
		return "decrypter(none)"
	}
	return fmt.Sprintf("decrypter(%d keys, redacted)", len(d.byPrefix))
}

// Prefixes lists the key prefixes the decrypter knows, sorted.
func (d *Decrypter) Prefixes() []string {
	if d == nil {
		return nil
	}
	out := make([]string, 0, len(d.byPrefix))
	for p := range d.byPrefix {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ParseEncryptionConfig builds a [Decrypter] from the bytes of an
// EncryptionConfiguration (apiserver.config.k8s.io/v1, YAML or JSON), the
// file kube-apiserver reads with --encryption-provider-config. Errors never
// contain key material.
func ParseEncryptionConfig(data []byte) (*Decrypter, error) {
	var cfg apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		// yaml errors quote the offending line, which may hold a secret.
		return nil, fmt.Errorf("%w: not a valid EncryptionConfiguration document", ErrBadEncryptionConfig)
	}
	if cfg.Kind != "" && cfg.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("%w: kind is %q, want EncryptionConfiguration", ErrBadEncryptionConfig, cfg.Kind)
	}
	d := &Decrypter{byPrefix: map[string][]value.Transformer{}, kms: map[string]string{}}
	for ri, rc := range cfg.Resources {
		for pi, p := range rc.Providers {
			where := fmt.Sprintf("resources[%d].providers[%d]", ri, pi)
			switch {
			case p.AESCBC != nil:
				for _, k := range p.AESCBC.Keys {
					block, err := encAESBlock(k, where+".aescbc")
					if err != nil {
						return nil, err
					}
					d.add("aescbc", k.Name, aestransformer.NewCBCTransformer(block))
				}
			case p.AESGCM != nil:
				for _, k := range p.AESGCM.Keys {
					block, err := encAESBlock(k, where+".aesgcm")
					if err != nil {
						return nil, err
					}
					t, err := aestransformer.NewGCMTransformer(block)
					if err != nil {
						return nil, fmt.Errorf("%w: %s key %q: %w", ErrBadEncryptionConfig, where, k.Name, err)
					}
					d.add("aesgcm", k.Name, t)
				}
			case p.Secretbox != nil:
				for _, k := range p.Secretbox.Keys {
					raw, err := encKeyBytes(k, where+".secretbox")
					if err != nil {
						return nil, err
					}
					if len(raw) != 32 {
						return nil, fmt.Errorf("%w: %s key %q: secretbox keys are 32 bytes, got %d", ErrBadEncryptionConfig, where, k.Name, len(raw))
					}
					var key [32]byte
					copy(key[:], raw)
					d.add("secretbox", k.Name, secretbox.NewSecretboxTransformer(key))
				}
			case p.KMS != nil:
				if p.KMS.APIVersion == "v2" {
					d.kms[p.KMS.Name] = p.KMS.Endpoint
				}
			}
		}
	}
	return d, nil
}

func (d *Decrypter) add(provider, keyName string, t value.Transformer) {
	p := EncryptedPrefix + provider + ":v1:" + keyName + ":"
	d.byPrefix[p] = append(d.byPrefix[p], t)
}

func encKeyBytes(k apiserverv1.Key, where string) ([]byte, error) {
	if k.Name == "" {
		return nil, fmt.Errorf("%w: %s: a key has no name", ErrBadEncryptionConfig, where)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.Secret))
	if err != nil {
		return nil, fmt.Errorf("%w: %s key %q: secret is not valid base64", ErrBadEncryptionConfig, where, k.Name)
	}
	return raw, nil
}

func encAESBlock(k apiserverv1.Key, where string) (cipher.Block, error) {
	raw, err := encKeyBytes(k, where)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s key %q: AES keys are 16, 24 or 32 bytes, got %d", ErrBadEncryptionConfig, where, k.Name, len(raw))
	}
	return block, nil
}

// Decrypt removes the encryption layer of val, stored under the etcd key
// key (GCM authenticates the key). A plain value is returned as it is. The
// result may alias val. Errors wrap [ErrEncrypted], [ErrDecrypt] or
// [ErrKMS] and never contain the value.
func (d *Decrypter) Decrypt(key, val []byte) ([]byte, EncryptionInfo, error) {
	info := SniffEncryption(val)
	if !info.Encrypted() {
		return val, info, nil
	}
	if info.Provider == "kms" {
		out, err := d.decryptKMS(key, val[info.HeaderLen:], info)
		return out, info, err
	}
	if info.Provider == "unknown" {
		return nil, info, &FormatError{What: "encrypted value", Reason: "malformed k8s:enc: prefix", Err: ErrDecrypt}
	}
	var ts []value.Transformer
	if d != nil {
		ts = d.byPrefix[string(val[:info.HeaderLen])]
	}
	if len(ts) == 0 {
		return nil, info, fmt.Errorf("%w (provider %s, key %q)", ErrEncrypted, info.Provider, info.KeyName)
	}
	payload := val[info.HeaderLen:]
	for _, t := range ts {
		// The transformers' own messages add nothing a user can act on.
		if out, _, err := encTransform(t, payload, key); err == nil {
			return out, info, nil
		}
	}
	return nil, info, fmt.Errorf("%w (provider %s, key %q)", ErrDecrypt, info.Provider, info.KeyName)
}

// encTransform calls a third-party transformer, turning a panic on hostile
// input into an error (the boundary STYLE.md allows for recover).
func encTransform(t value.Transformer, payload, key []byte) (out []byte, stale bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, stale, err = nil, false, ErrDecrypt
		}
	}()
	return t.TransformFromStorage(context.Background(), payload, value.DefaultContext(key))
}

// KMSPlugin is the one call of a KMS v2 plugin decoding needs: unwrapping a
// data key (or data key seed). It is the Decrypt method of
// k8s.io/kms/pkg/service.Service, the plugin API kube-apiserver calls.
// It must be safe for concurrent use. Its errors should say which plugin
// failed (its endpoint) and must never contain the key.
type KMSPlugin interface {
	Decrypt(ctx context.Context, uid string, req *kmsservice.DecryptRequest) ([]byte, error)
}

// KMSConnector gives the plugin of a KMS v2 provider. endpoint is the
// provider's endpoint in the EncryptionConfiguration, "" when the config
// does not name the provider. Plugin returns (nil, nil) when it knows no
// plugin for it; the values then fail with a [*KMSError]. It is called at
// most once per provider, on its first value. Decode does no I/O itself:
// the connector (package kms) reaches the plugin.
type KMSConnector interface {
	Plugin(provider, endpoint string) (KMSPlugin, error)
}

// KMSPluginError is a KMS v2 plugin that could not unwrap a data key:
// unreachable (no socket, not serving), or refusing (a key it does not
// have). It never holds the key or the value.
type KMSPluginError struct {
	Provider    string // the provider's name
	Endpoint    string // the plugin's endpoint, as dialled
	Unreachable bool   // the plugin did not answer, rather than refused
	Err         error  // the plugin's (gRPC) error
}

func (e *KMSPluginError) Error() string {
	if e.Unreachable {
		return fmt.Sprintf("KMS v2 plugin of provider %q at %s is unreachable: %v", e.Provider, e.Endpoint, e.Err)
	}
	return fmt.Sprintf("KMS v2 plugin of provider %q at %s refused to decrypt the data key: %v", e.Provider, e.Endpoint, e.Err)
}

// Unwrap returns [ErrKMS] for an unreachable plugin (only it can decrypt
// the value) and [ErrDecrypt] for a refusal (a wrong key), with Err.
func (e *KMSPluginError) Unwrap() []error {
	if e.Unreachable {
		return []error{ErrKMS, e.Err}
	}
	return []error{ErrDecrypt, e.Err}
}

// WithKMS makes d decrypt KMS v2 values with the plugins c gives, and
// returns d (a new empty Decrypter when d is nil, for values of KMS v2
// providers only). Call it before d is used.
func (d *Decrypter) WithKMS(c KMSConnector) *Decrypter {
	if d == nil {
		d = &Decrypter{byPrefix: map[string][]value.Transformer{}, kms: map[string]string{}}
	}
	d.kmsConn = c
	return d
}

// decryptKMS opens a "k8s:enc:kms:v2:NAME:" value with kube-apiserver's
// own KMS v2 envelope transformer (k8s.io/apiserver's kmsv2): it decodes
// the EncryptedObject, asks the plugin to unwrap its data key (or seed, for
// HKDF-derived keys) once per distinct encrypted key (its DEK cache), and
// opens the data with AES-GCM, the etcd key as additional data.
func (d *Decrypter) decryptKMS(key, payload []byte, info EncryptionInfo) ([]byte, error) {
	if info.Version != "v2" || d == nil || d.kmsConn == nil {
		return nil, &KMSError{Info: info}
	}
	t, err := d.kmsTransformer(info.KeyName)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, &KMSError{Info: info}
	}
	out, _, err := encTransform(t, payload, key)
	if err != nil {
		var pe *KMSPluginError
		if errors.As(err, &pe) {
			return nil, pe
		}
		// the transformer's messages name no secret but add nothing either
		return nil, fmt.Errorf("%w (provider %s)", ErrDecrypt, info)
	}
	return out, nil
}

// kmsTransformer returns the envelope transformer of provider, nil when no
// plugin is known for it.
func (d *Decrypter) kmsTransformer(provider string) (value.Transformer, error) {
	d.kmsMu.Lock()
	defer d.kmsMu.Unlock()
	if t, ok := d.kmsT[provider]; ok {
		return t, nil
	}
	p, err := d.kmsConn.Plugin(provider, d.kms[provider])
	if err != nil {
		return nil, err
	}
	var t value.Transformer
	if p != nil {
		// reads never use the state but for a staleness flag we ignore
		state := func() (kmsv2.State, error) { return kmsv2.State{}, nil }
		t = kmsv2.NewEnvelopeTransformer(kmsReader{p}, provider, state, "etcdsafe")
	}
	if d.kmsT == nil {
		d.kmsT = map[string]value.Transformer{}
	}
	d.kmsT[provider] = t
	return t, nil
}

// errKMSReadOnly: etcdsafe never encrypts.
var errKMSReadOnly = errors.New("etcdsafe only decrypts")

// kmsReader is a [KMSPlugin] as the kmsservice.Service the envelope
// transformer takes; reads call only Decrypt.
type kmsReader struct{ KMSPlugin }

func (kmsReader) Encrypt(context.Context, string, []byte) (*kmsservice.EncryptResponse, error) {
	return nil, errKMSReadOnly
}

func (kmsReader) Status(context.Context) (*kmsservice.StatusResponse, error) {
	return nil, errKMSReadOnly
}
