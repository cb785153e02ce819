package decode

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apiserver/pkg/storage/value"
	aestransformer "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	"k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/etcdsafe/etcdsafe/internal/kmstest"
)

var (
	testKey16 = bytes.Repeat([]byte{0x11}, 16)
	testKey32 = bytes.Repeat([]byte{0x22}, 32)
	otherKey  = bytes.Repeat([]byte{0x33}, 32)
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const testConfigTmpl = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: cbc1
              secret: %s
      - aesgcm:
          keys:
            - name: gcm1
              secret: %s
      - secretbox:
          keys:
            - name: box1
              secret: %s
      - kms:
          apiVersion: v2
          name: vault
          endpoint: unix:///var/run/kms.sock
      - identity: {}
`

// encryptAs writes a value the way kube-apiserver does: the transformer's
// output behind the "k8s:enc:<provider>:v1:<name>:" prefix, the etcd key as
// authenticated data.
func encryptAs(t *testing.T, provider, name string, tr value.Transformer, key, plain []byte) []byte {
	t.Helper()
	prefix := []byte(EncryptedPrefix + provider + ":v1:" + name + ":")
	pt := value.NewPrefixTransformers(nil, value.PrefixTransformer{Prefix: prefix, Transformer: tr})
	out, err := pt.TransformToStorage(context.Background(), plain, value.DefaultContext(key))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func transformers(t *testing.T, k16, k32 []byte) (cbc, gcm, box value.Transformer) {
	t.Helper()
	b16, err := aes.NewCipher(k16)
	if err != nil {
		t.Fatal(err)
	}
	b32, err := aes.NewCipher(k32)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err = aestransformer.NewGCMTransformer(b32)
	if err != nil {
		t.Fatal(err)
	}
	var k [32]byte
	copy(k[:], k32)
	return aestransformer.NewCBCTransformer(b16), gcm, secretbox.NewSecretboxTransformer(k)
}

func TestDecrypt(t *testing.T) {
	t.Parallel()
	d, err := ParseEncryptionConfig([]byte(fmt.Sprintf(testConfigTmpl, b64(testKey16), b64(testKey32), b64(testKey32))))
	if err != nil {
		t.Fatal(err)
	}
	cbc, gcm, box := transformers(t, testKey16, testKey32)
	wcbc, wgcm, wbox := transformers(t, otherKey[:16], otherKey)
	key := []byte("/registry/secrets/payments/stripe")
	plain := []byte("k8s\x00secret payload")
	tests := []struct {
		name     string
		stored   []byte
		decKey   []byte
		wantErr  error
		provider string
	}{
		{"aescbc", encryptAs(t, "aescbc", "cbc1", cbc, key, plain), key, nil, "aescbc:cbc1"},
		{"aesgcm", encryptAs(t, "aesgcm", "gcm1", gcm, key, plain), key, nil, "aesgcm:gcm1"},
		{"secretbox", encryptAs(t, "secretbox", "box1", box, key, plain), key, nil, "secretbox:box1"},
		{"identity", plain, key, nil, "identity"},
		{"aesgcm under another key fails authentication", encryptAs(t, "aesgcm", "gcm1", gcm, key, plain), []byte("/registry/secrets/other/x"), ErrDecrypt, "aesgcm:gcm1"},
		{"aesgcm wrong secret", encryptAs(t, "aesgcm", "gcm1", wgcm, key, plain), key, ErrDecrypt, "aesgcm:gcm1"},
		{"secretbox wrong secret", encryptAs(t, "secretbox", "box1", wbox, key, plain), key, ErrDecrypt, "secretbox:box1"},
		{"unknown key name", encryptAs(t, "aescbc", "cbc9", cbc, key, plain), key, ErrEncrypted, "aescbc:cbc9"},
		{"kms", []byte("k8s:enc:kms:v2:vault:\x0a\x10opaque"), key, ErrKMS, "kms:v2:vault"},
		{"truncated aescbc", encryptAs(t, "aescbc", "cbc1", cbc, key, plain)[:30], key, ErrDecrypt, "aescbc:cbc1"},
		{"malformed prefix", []byte("k8s:enc:aescbc"), key, ErrDecrypt, "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, info, err := d.Decrypt(tc.decKey, tc.stored)
			if info.String() != tc.provider {
				t.Errorf("provider = %q, want %q", info.String(), tc.provider)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if got != nil {
					t.Fatal("plaintext returned with an error")
				}
				if strings.Contains(err.Error(), "secret payload") {
					t.Fatal("error leaks the value")
				}
				return
			}
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	// A wrong aescbc secret is caught by padding most of the time; when the
	// padding happens to be valid, Decoder.Decode reports the garbage as a
	// decryption failure. Either way: never plaintext.
	stored := encryptAs(t, "aescbc", "cbc1", wcbc, key, plain)
	if got, _, err := d.Decrypt(key, stored); err == nil && bytes.Equal(got, plain) {
		t.Fatal("wrong aescbc key decrypted")
	}
	if _, err := NewDecoder(d).Decode(key, stored); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Decode with wrong aescbc key: %v, want ErrDecrypt", err)
	}
	if _, err := NewDecoder(nil).Decode(key, stored); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("Decode with no keys: %v, want ErrEncrypted", err)
	}
}

func TestParseEncryptionConfigErrors(t *testing.T) {
	t.Parallel()
	secret := b64([]byte("0123456789abcdef0123456789abcdef"))
	tests := map[string]string{
		"not yaml":         "::: not yaml " + secret,
		"wrong kind":       "apiVersion: v1\nkind: ConfigMap\n",
		"bad base64":       "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{aescbc: {keys: [{name: k, secret: '" + secret + "!!'}]}}]}]",
		"bad aes length":   "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{aescbc: {keys: [{name: k, secret: " + b64([]byte("short")) + "}]}}]}]",
		"bad box length":   "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{secretbox: {keys: [{name: k, secret: " + b64(testKey16) + "}]}}]}]",
		"unknown field":    "kind: EncryptionConfiguration\nresourcez: []\nsecret: " + secret,
		"key without name": "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{aesgcm: {keys: [{secret: " + secret + "}]}}]}]",
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := ParseEncryptionConfig([]byte(cfg))
			if !errors.Is(err, ErrBadEncryptionConfig) || d != nil {
				t.Fatalf("got %v, %v; want ErrBadEncryptionConfig", d, err)
			}
			if strings.Contains(err.Error(), secret[:20]) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func FuzzDecrypt(f *testing.F) {
	d, err := ParseEncryptionConfig([]byte(fmt.Sprintf(testConfigTmpl, b64(testKey16), b64(testKey32), b64(testKey32))))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("k8s:enc:aescbc:v1:cbc1:0123456789abcdef0123456789abcdef"))
	f.Add([]byte("k8s:enc:aesgcm:v1:gcm1:0123456789ab"))
	f.Add([]byte("k8s:enc:secretbox:v1:box1:"))
	f.Add([]byte("k8s:enc:kms:v2:vault:xx"))
	f.Add([]byte("k8s\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _, err := d.Decrypt([]byte("/registry/secrets/a/b"), b)
		if err != nil && out != nil {
			t.Fatal("output with error")
		}
	})
}

func TestSniffEncryption(t *testing.T) {
	t.Parallel()
	long := "k8s:enc:aescbc:v1:" + strings.Repeat("k", 300) + ":x"
	for _, tc := range []struct {
		v    string
		want EncryptionInfo
	}{
		{"k8s\x00rest", EncryptionInfo{Provider: "identity"}},
		{"", EncryptionInfo{Provider: "identity"}},
		{"k8s:enc:aescbc:v1:key1:\x01\x02", EncryptionInfo{Provider: "aescbc", Version: "v1", KeyName: "key1", HeaderLen: 23}},
		{"k8s:enc:kms:v2:vault:", EncryptionInfo{Provider: "kms", Version: "v2", KeyName: "vault", HeaderLen: 21}},
		{"k8s:enc:aescbc:v1", EncryptionInfo{Provider: "unknown", HeaderLen: 8}},
		{"k8s:enc:", EncryptionInfo{Provider: "unknown", HeaderLen: 8}},
		{long, EncryptionInfo{Provider: "unknown", HeaderLen: 8}}, // key name past the 256-byte cap
	} {
		if got := SniffEncryption([]byte(tc.v)); got != tc.want {
			t.Errorf("SniffEncryption(%.40q) = %+v, want %+v", tc.v, got, tc.want)
		}
		if got, want := EncryptionHeaderLen([]byte(tc.v)), tc.want.HeaderLen; got != want {
			t.Errorf("EncryptionHeaderLen(%.40q) = %d, want %d", tc.v, got, want)
		}
	}
}

// fakeKMS is an in-process KMS v2 plugin: it "wraps" a data key by
// prefixing it, and counts its calls. No I/O: decode's side of the plugin
// interface alone.
type fakeKMS struct {
	calls   atomic.Int64
	refuse  error // returned by Decrypt when set
	plugins atomic.Int64
	none    bool // Plugin knows no plugin
	connErr error
	gotEP   string
}

func (f *fakeKMS) Plugin(_, endpoint string) (KMSPlugin, error) {
	f.plugins.Add(1)
	f.gotEP = endpoint
	if f.none || f.connErr != nil {
		return nil, f.connErr
	}
	return f, nil
}

func (f *fakeKMS) Encrypt(_ context.Context, _ string, dek []byte) (*kmsservice.EncryptResponse, error) {
	return &kmsservice.EncryptResponse{Ciphertext: append([]byte("wrapped:"), dek...), KeyID: "k1"}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, _ string, req *kmsservice.DecryptRequest) ([]byte, error) {
	f.calls.Add(1)
	if f.refuse != nil {
		return nil, f.refuse
	}
	dek, ok := bytes.CutPrefix(req.Ciphertext, []byte("wrapped:"))
	if !ok {
		return nil, errors.New("not wrapped here")
	}
	return dek, nil
}

func (f *fakeKMS) Status(context.Context) (*kmsservice.StatusResponse, error) {
	return &kmsservice.StatusResponse{Version: "v2", Healthz: "ok", KeyID: "k1"}, nil
}

// TestDecryptKMS: KMS v2 values written by kube-apiserver's envelope
// transformer open through the connector's plugin, one Decrypt call per
// data key; each way of failing keeps its error class.
func TestDecryptKMS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: vault
          endpoint: unix:///run/vault.sock
      - kms:
          name: old
          endpoint: unix:///run/old.sock
`)
	plain := []byte(`{"kind":"Secret","data":{"a":"secret payload"}}`)
	writer := &fakeKMS{}
	values := map[string][]byte{}
	for _, seed := range []bool{false, true} {
		w, err := kmstest.NewWriter(ctx, writer, "vault", seed)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			key := fmt.Sprintf("/registry/secrets/ns/%v-%d", seed, i)
			if values[key], err = w.Encrypt(ctx, key, plain); err != nil {
				t.Fatal(err)
			}
		}
	}
	one := values["/registry/secrets/ns/false-0"]

	t.Run("two data keys, two calls", func(t *testing.T) {
		t.Parallel()
		f := &fakeKMS{}
		d, err := ParseEncryptionConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d = d.WithKMS(f)
		for key, v := range values {
			got, info, err := d.Decrypt([]byte(key), v)
			if err != nil || !bytes.Equal(got, plain) || info.String() != "kms:v2:vault" {
				t.Fatalf("%s: %v %s", key, err, info)
			}
		}
		if f.calls.Load() != 2 || f.plugins.Load() != 1 || f.gotEP != "unix:///run/vault.sock" {
			t.Errorf("%d Decrypt calls, %d Plugin calls, endpoint %q; want 2, 1, unix:///run/vault.sock", f.calls.Load(), f.plugins.Load(), f.gotEP)
		}
	})
	pluginErr := &KMSPluginError{Provider: "vault", Endpoint: "unix:///run/vault.sock", Err: errors.New("PermissionDenied: no")}
	tests := []struct {
		name     string
		kms      KMSConnector // nil: no WithKMS
		key      string
		val      []byte
		want     error
		contains string
	}{
		{"no connector", nil, "/registry/secrets/ns/false-0", one, ErrKMS, "no endpoint"},
		{"no plugin known", &fakeKMS{none: true}, "/registry/secrets/ns/false-0", one, ErrKMS, `KMS v2 provider "vault"`},
		{"connector fails", &fakeKMS{connErr: errors.New("bad endpoint")}, "/registry/secrets/ns/false-0", one, nil, "bad endpoint"},
		{"plugin refuses", &fakeKMS{refuse: pluginErr}, "/registry/secrets/ns/false-0", one, ErrDecrypt, "unix:///run/vault.sock refused"},
		{"plugin fails plainly", &fakeKMS{refuse: errors.New("boom")}, "/registry/secrets/ns/false-0", one, ErrDecrypt, "kms:v2:vault"},
		{"other etcd key", &fakeKMS{}, "/registry/secrets/ns/moved", one, ErrDecrypt, "kms:v2:vault"},
		{"kms v1", &fakeKMS{}, "/registry/secrets/ns/false-0", append([]byte("k8s:enc:kms:v1:old:"), one[len("k8s:enc:kms:v2:vault:"):]...), ErrKMS, "KMS v1 is deprecated"},
		{"not an EncryptedObject", &fakeKMS{}, "/registry/secrets/ns/false-0", []byte("k8s:enc:kms:v2:vault:\xff\xff"), ErrDecrypt, "kms:v2:vault"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := ParseEncryptionConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.kms != nil {
				d = d.WithKMS(tc.kms)
			}
			got, _, err := d.Decrypt([]byte(tc.key), tc.val)
			if err == nil || got != nil {
				t.Fatalf("decrypted: err %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) || strings.Contains(err.Error(), "secret payload") {
				t.Errorf("err %q: want it to contain %q and no value", err, tc.contains)
			}
		})
	}
	// a nil Decrypter with a connector opens KMS values only
	f := &fakeKMS{}
	if got, _, err := (*Decrypter)(nil).WithKMS(f).Decrypt([]byte("/registry/secrets/ns/true-3"), values["/registry/secrets/ns/true-3"]); err != nil || !bytes.Equal(got, plain) || f.gotEP != "" {
		t.Errorf("nil decrypter with KMS: %v, endpoint %q", err, f.gotEP)
	}
}
