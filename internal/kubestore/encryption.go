package kubestore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"k8s.io/apiserver/pkg/storage/value"
	aestransformer "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	secretboxtransformer "k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
)

// EncryptionKey configures encryption at rest for one resource. Several
// keys for the same resource are listed in order; the first one encrypts
// (as in an EncryptionConfiguration, where the first provider writes).
type EncryptionKey struct {
	// Resource is the plural resource name, e.g. "secrets" or
	// "configmaps", or "<plural>.<group>" for a custom resource.
	Resource string
	// Provider is "aescbc", "aesgcm" or "secretbox".
	Provider string
	// Name is the key name written into the value prefix.
	Name string
	// Secret is the raw key: 16, 24 or 32 bytes for AES, 32 for secretbox.
	Secret []byte
}

// String redacts the key material.
func (k EncryptionKey) String() string {
	return fmt.Sprintf("%s:%s:%s:<redacted len=%d>", k.Resource, k.Provider, k.Name, len(k.Secret))
}

// prefix returns the value prefix "k8s:enc:<provider>:v1:<name>:".
func (k EncryptionKey) prefix() string { return "k8s:enc:" + k.Provider + ":v1:" + k.Name + ":" }

// encrypter encrypts values for one resource with its first key.
type encrypter struct {
	key EncryptionKey
	// tr is the apiserver's transformer (random IVs and nonces).
	tr value.Transformer
	// det, when set, supplies IVs and nonces so output is reproducible.
	det   io.Reader
	block cipher.Block
}

func newEncrypter(k EncryptionKey, det io.Reader) (*encrypter, error) {
	e := &encrypter{key: k, det: det}
	switch k.Provider {
	case "aescbc", "aesgcm":
		b, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("%s key %q for %s: %w", k.Provider, k.Name, k.Resource, err)
		}
		e.block = b
		if k.Provider == "aescbc" {
			e.tr = aestransformer.NewCBCTransformer(b)
		} else if e.tr, err = aestransformer.NewGCMTransformer(b); err != nil {
			return nil, fmt.Errorf("aesgcm key %q: %w", k.Name, err)
		}
	case "secretbox":
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("secretbox key %q for %s: %d bytes, want 32", k.Name, k.Resource, len(k.Secret))
		}
		var kb [32]byte
		copy(kb[:], k.Secret)
		e.tr = secretboxtransformer.NewSecretboxTransformer(kb)
	default:
		return nil, fmt.Errorf("encryption provider %q for %s: unsupported (want aescbc, aesgcm or secretbox)", k.Provider, k.Resource)
	}
	// Wrap the way the apiserver does, so the prefix is written by the same
	// code that writes it in a real cluster.
	e.tr = value.NewPrefixTransformers(fmt.Errorf("no matching prefix"),
		value.PrefixTransformer{Prefix: []byte(k.prefix()), Transformer: e.tr})
	return e, nil
}

// encrypt returns the stored form of plain under etcd key etcdKey.
func (e *encrypter) encrypt(etcdKey string, plain []byte) ([]byte, error) {
	if e.det == nil {
		out, err := e.tr.TransformToStorage(context.Background(), plain, value.DefaultContext(etcdKey))
		if err != nil {
			return nil, fmt.Errorf("encrypt %s with %s key %q: %w", etcdKey, e.key.Provider, e.key.Name, err)
		}
		return out, nil
	}
	// Same layout as the apiserver transformers, but with IVs/nonces from
	// the seeded stream; tests check the apiserver decrypts these.
	out := []byte(e.key.prefix())
	switch e.key.Provider {
	case "aescbc":
		iv := make([]byte, aes.BlockSize)
		if _, err := io.ReadFull(e.det, iv); err != nil {
			return nil, fmt.Errorf("read iv: %w", err)
		}
		pad := aes.BlockSize - len(plain)%aes.BlockSize
		buf := append(append([]byte{}, plain...), make([]byte, pad)...)
		for i := len(plain); i < len(buf); i++ {
			buf[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(e.block, iv).CryptBlocks(buf, buf)
		return append(append(out, iv...), buf...), nil
	case "aesgcm":
		g, err := cipher.NewGCM(e.block)
		if err != nil {
			return nil, fmt.Errorf("gcm: %w", err)
		}
		nonce := make([]byte, g.NonceSize())
		if _, err := io.ReadFull(e.det, nonce); err != nil {
			return nil, fmt.Errorf("read nonce: %w", err)
		}
		return g.Seal(append(out, nonce...), nonce, plain, []byte(etcdKey)), nil
	default: // secretbox
		var nonce [24]byte
		var kb [32]byte
		copy(kb[:], e.key.Secret)
		if _, err := io.ReadFull(e.det, nonce[:]); err != nil {
			return nil, fmt.Errorf("read nonce: %w", err)
		}
		return secretbox.Seal(append(out, nonce[:]...), plain, &nonce, &kb), nil
	}
}

// EncryptionConfigYAML renders keys as an apiserver.config.k8s.io/v1
// EncryptionConfiguration in the layout of a hand-written config: one
// entry per resource, providers in order, identity last (so unencrypted
// values stay readable).
func EncryptionConfigYAML(keys []EncryptionKey) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n")
	var order []string
	byRes := map[string][]EncryptionKey{}
	for _, k := range keys {
		if _, ok := byRes[k.Resource]; !ok {
			order = append(order, k.Resource)
		}
		byRes[k.Resource] = append(byRes[k.Resource], k)
	}
	for _, r := range order {
		fmt.Fprintf(&b, "  - resources: [%s]\n    providers:\n", r)
		// Consecutive keys of one provider share a provider entry.
		ks := byRes[r]
		for i := 0; i < len(ks); {
			j := i
			fmt.Fprintf(&b, "      - %s:\n          keys:\n", ks[i].Provider)
			for ; j < len(ks) && ks[j].Provider == ks[i].Provider; j++ {
				fmt.Fprintf(&b, "            - name: %s\n              secret: %s\n", ks[j].Name, base64.StdEncoding.EncodeToString(ks[j].Secret))
			}
			i = j
		}
		b.WriteString("      - identity: {}\n")
	}
	return []byte(b.String())
}
