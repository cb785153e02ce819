// Package kmstest is a KMS v2 plugin for tests: a real gRPC server on a
// unix socket, built from k8s.io/kms's service package (the server side
// plugins such as Vault's and the cloud KMS plugins use), wrapping data
// keys with AES-GCM under a key of its own. It counts its Decrypt calls.
// Writer encrypts values exactly as kube-apiserver does, with
// k8s.io/apiserver's KMS v2 envelope transformer.
package kmstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmsapi "k8s.io/kms/apis/v2"
	kmsservice "k8s.io/kms/pkg/service"
)

// Options configure a [Plugin].
type Options struct {
	// KeyID is the plugin's key ID ("kek-1" when empty); its wrapping
	// key is derived from Secret and KeyID.
	KeyID string
	// Secret seeds the wrapping key; plugins with other secrets refuse
	// each other's data keys.
	Secret string
	// OnDecrypt, when set, is called after each Decrypt call with the
	// number served so far (from the plugin's goroutines).
	OnDecrypt func(n int64)
}

// Plugin is a running KMS v2 plugin.
type Plugin struct {
	// Socket is the unix socket it serves; Endpoint is "unix://"+Socket.
	Socket, Endpoint string

	svc *service
	srv *grpc.Server
	ln  net.Listener
}

// Start serves a plugin on socket (a path that must not exist yet). It
// listens before it returns. Close stops it.
func Start(socket string, o Options) (*Plugin, error) {
	if o.KeyID == "" {
		o.KeyID = "kek-1"
	}
	sum := sha256.Sum256([]byte(o.Secret + "\x00" + o.KeyID))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	svc := &service{keyID: o.KeyID, aead: aead, onDecrypt: o.OnDecrypt}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("kms test plugin: %w", err)
	}
	srv := grpc.NewServer()
	// k8s.io/kms's own server adapter between the gRPC API and a Service
	kmsapi.RegisterKeyManagementServiceServer(srv, kmsservice.NewGRPCService(socket, 10*time.Second, svc))
	go func() { _ = srv.Serve(ln) }()
	return &Plugin{Socket: socket, Endpoint: "unix://" + socket, svc: svc, srv: srv, ln: ln}, nil
}

// Service is the plugin's service in process, to encrypt test values
// without counting as a Decrypt call.
func (p *Plugin) Service() kmsservice.Service { return p.svc }

// DecryptCalls is the number of Decrypt calls served so far.
func (p *Plugin) DecryptCalls() int64 { return p.svc.decrypts.Load() }

// Close stops the plugin at once and removes its socket.
func (p *Plugin) Close() {
	p.srv.Stop()
	_ = os.Remove(p.Socket)
}

type service struct {
	keyID    string
	aead     cipher.AEAD
	decrypts atomic.Int64

	onDecrypt func(int64)
}

const annotation = "version.kmstest.etcdsafe.io"

func (s *service) Encrypt(_ context.Context, _ string, data []byte) (*kmsservice.EncryptResponse, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &kmsservice.EncryptResponse{
		Ciphertext:  s.aead.Seal(nonce, nonce, data, []byte(s.keyID)),
		KeyID:       s.keyID,
		Annotations: map[string][]byte{annotation: []byte("1")},
	}, nil
}

func (s *service) Decrypt(_ context.Context, _ string, req *kmsservice.DecryptRequest) ([]byte, error) {
	n := s.decrypts.Add(1)
	if s.onDecrypt != nil {
		s.onDecrypt(n)
	}
	ns := s.aead.NonceSize()
	if len(req.Ciphertext) < ns {
		return nil, errors.New("ciphertext too short")
	}
	out, err := s.aead.Open(nil, req.Ciphertext[:ns], req.Ciphertext[ns:], []byte(req.KeyID))
	if err != nil {
		return nil, fmt.Errorf("key %q cannot unwrap this data key", s.keyID)
	}
	return out, nil
}

func (s *service) Status(context.Context) (*kmsservice.StatusResponse, error) {
	return &kmsservice.StatusResponse{Version: "v2", Healthz: "ok", KeyID: s.keyID}, nil
}

// Writer encrypts values as kube-apiserver's KMS v2 provider does: one
// data key (or, with Seed, one HKDF seed) made and wrapped by the plugin,
// then k8s.io/apiserver's envelope transformer with the etcd key as
// additional data, behind the "k8s:enc:kms:v2:NAME:" prefix.
type Writer struct {
	prefix string
	t      value.Transformer
}

// NewWriter makes a writer with a fresh data key wrapped by svc for the
// provider named provider. Each Writer is one data key.
func NewWriter(ctx context.Context, svc kmsservice.Service, provider string, seed bool) (*Writer, error) {
	const uid = "kmstest"
	tr, obj, cacheKey, err := kmsv2.GenerateTransformer(ctx, uid, svc, seed)
	if err != nil {
		return nil, err
	}
	state := kmsv2.State{
		Transformer: tr, EncryptedObjectKeyID: obj.KeyID, EncryptedObjectEncryptedDEKSource: obj.EncryptedDEKSource,
		EncryptedObjectAnnotations: obj.Annotations, EncryptedObjectEncryptedDEKSourceType: obj.EncryptedDEKSourceType,
		UID: uid, ExpirationTimestamp: time.Now().Add(time.Hour), CacheKey: cacheKey, KMSProviderName: provider,
	}
	t := kmsv2.NewEnvelopeTransformer(svc, provider, func() (kmsv2.State, error) { return state, nil }, "kmstest")
	return &Writer{prefix: "k8s:enc:kms:v2:" + provider + ":", t: t}, nil
}

// Encrypt returns the value kube-apiserver stores for data under the etcd
// key key.
func (w *Writer) Encrypt(ctx context.Context, key string, data []byte) ([]byte, error) {
	out, err := w.t.TransformToStorage(ctx, data, value.DefaultContext(key))
	if err != nil {
		return nil, err
	}
	return append([]byte(w.prefix), out...), nil
}
