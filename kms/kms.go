package kms

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/etcdsafe/etcdsafe/decode"
)

// DefaultTimeout is the time a plugin has for one Decrypt call, as
// kube-apiserver's default kms timeout (3s).
const DefaultTimeout = 3 * time.Second

// ErrEndpoint is returned for an endpoint that is not a unix socket.
var ErrEndpoint = errors.New("KMS v2 plugin endpoint must be a unix socket (unix:///path)")

// Options configure a [Connector].
type Options struct {
	// Socket, when set, is the plugin socket of every KMS v2 provider
	// (a path or unix:///path), overriding the config's endpoints.
	Socket string
	// Timeout bounds each Decrypt call; 0 means [DefaultTimeout].
	Timeout time.Duration
}

// Connector dials KMS v2 plugins for decode. One Connector serves any
// number of sources (decode.Decrypter.WithKMS): a provider's plugin, its
// connection and the data keys it unwrapped are shared, so sources of one
// cluster (diff's two, timeline's backups) cost one call per data key in
// all. Close it to close the connections. It is safe for concurrent use.
type Connector struct {
	opts    Options
	mu      sync.Mutex
	conns   []*grpc.ClientConn
	plugins map[string]*plugin // by provider and socket path
}

// NewConnector returns a Connector; it dials nothing yet.
func NewConnector(o Options) *Connector {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Connector{opts: o}
}

var _ decode.KMSConnector = (*Connector)(nil)

// Plugin returns the plugin of provider: at the Socket override if set,
// else at endpoint, else none (nil, nil). The connection is made on the
// first call.
func (c *Connector) Plugin(provider, endpoint string) (decode.KMSPlugin, error) {
	if c.opts.Socket != "" {
		endpoint = c.opts.Socket
	}
	if endpoint == "" {
		return nil, nil
	}
	path, err := socketPath(endpoint)
	if err != nil {
		return nil, fmt.Errorf("KMS v2 provider %q: endpoint %q: %w", provider, endpoint, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := provider + "\x00" + path
	if p, ok := c.plugins[id]; ok {
		return p, nil
	}
	conn, err := grpc.NewClient("passthrough:///kms",
		grpc.WithAuthority("localhost"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("KMS v2 provider %q: %w", provider, err)
	}
	c.conns = append(c.conns, conn)
	p := &plugin{provider: provider, endpoint: "unix://" + path, timeout: c.opts.Timeout,
		client: kmsapi.NewKeyManagementServiceClient(conn)}
	if c.plugins == nil {
		c.plugins = map[string]*plugin{}
	}
	c.plugins[id] = p
	return p, nil
}

// Close closes every connection the Connector made.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	c.conns, c.plugins = nil, nil
	return errors.Join(errs...)
}

// socketPath is the file of a "unix:///path" endpoint, or of a bare path.
// kube-apiserver accepts only unix endpoints for KMS plugins.
func socketPath(endpoint string) (string, error) {
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok && strings.Contains(endpoint, "://") || p == "" {
		return "", ErrEndpoint
	}
	return p, nil
}

// plugin is one provider's plugin.
type plugin struct {
	provider, endpoint string
	timeout            time.Duration
	client             kmsapi.KeyManagementServiceClient
	calls              singleflight.Group
	// done holds the data keys unwrapped so far, by request digest: a value
	// decoded just after the call for its key returned (singleflight then
	// has forgotten it, and the envelope transformer's own cache is not yet
	// filled) must not cost a second call. At most maxDone are kept.
	done  sync.Map
	ndone atomic.Int64
	// down is the first unreachable error: later calls return it at once,
	// so that a hung plugin costs one timeout per run, not one per value
	down atomic.Pointer[decode.KMSPluginError]
}

// Decrypt asks the plugin to unwrap a data key. Overlapping calls for the
// same encrypted key share one RPC.
func (p *plugin) Decrypt(ctx context.Context, uid string, req *kmsservice.DecryptRequest) ([]byte, error) {
	if e := p.down.Load(); e != nil {
		return nil, e
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s:%d:", len(req.KeyID), req.KeyID, len(req.Ciphertext))
	h.Write(req.Ciphertext)
	for _, k := range sortedKeys(req.Annotations) {
		fmt.Fprintf(h, "%d:%s:%d:", len(k), k, len(req.Annotations[k]))
		h.Write(req.Annotations[k])
	}
	digest := string(h.Sum(nil))
	if v, ok := p.done.Load(digest); ok {
		return v.([]byte), nil
	}
	v, err, _ := p.calls.Do(digest, func() (any, error) {
		if v, ok := p.done.Load(digest); ok {
			return v, nil
		}
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		resp, err := p.client.Decrypt(ctx, &kmsapi.DecryptRequest{
			Ciphertext: req.Ciphertext, Uid: uid, KeyId: req.KeyID, Annotations: req.Annotations,
		})
		if err != nil {
			e := p.error(err)
			if e.Unreachable {
				p.down.CompareAndSwap(nil, e)
			}
			return nil, e
		}
		if p.ndone.Add(1) <= maxDone {
			p.done.Store(digest, resp.Plaintext)
		}
		return resp.Plaintext, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// maxDone bounds the data keys a plugin remembers (a cluster rotates its
// keys, it does not hold thousands).
const maxDone = 4096

// error turns a gRPC error into a [*decode.KMSPluginError]: Unavailable
// and DeadlineExceeded are a plugin that did not answer.
func (p *plugin) error(err error) *decode.KMSPluginError {
	st := status.Convert(err)
	unreachable := st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded
	msg := st.Message()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return &decode.KMSPluginError{Provider: p.provider, Endpoint: p.endpoint, Unreachable: unreachable,
		Err: fmt.Errorf("%s: %s", st.Code(), msg)}
}

func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}
