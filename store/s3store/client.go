// Package s3store keeps backups in an S3-compatible bucket (AWS S3, Ceph
// RGW, MinIO, versitygw, Wasabi, Hetzner, Cloudflare R2...): a
// [store.Target] over a key prefix, and the reader of one object.
//
// It uses aws-sdk-go-v2: its config loader is the standard AWS chain
// (environment variables, shared config and credentials files with
// profiles, web identity / IRSA, container and instance metadata), its
// retryer backs off on throttling and transient errors, and its signer
// covers every S3-compatible server. The multipart upload is this
// package's own (see [Bucket.Put]): it streams from an io.Writer with a
// bounded number of bounded parts, sets a full-object CRC-32C the server
// checks on completion, and aborts on any error, which the SDK's upload
// managers (pull-based, io.Reader in) do not fit.
package s3store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Scheme is the URL scheme of an object or prefix: s3://BUCKET/KEY.
const Scheme = "s3://"

// IsURL reports whether s names an object or prefix (s3://...).
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseURL splits s3://BUCKET/KEY into bucket and key (the key may be
// empty or end in "/").
func ParseURL(s string) (bucket, key string, err error) {
	if !IsURL(s) {
		return "", "", fmt.Errorf("%q is not an s3:// URL", s)
	}
	rest := strings.TrimPrefix(s, Scheme)
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket: use s3://BUCKET/PREFIX", s)
	}
	if strings.ContainsAny(bucket, "?#") || strings.ContainsAny(key, "?#\x00") {
		return "", "", fmt.Errorf("%q: a bucket or key with '?', '#' or NUL is not supported", s)
	}
	return bucket, key, nil
}

// Config says how to reach the server. The credentials always come from
// the standard AWS chain; nothing here holds a secret.
type Config struct {
	// Endpoint is the server's URL (https://s3.example.com:9000) for
	// anything but AWS; empty is the SDK's own resolution (AWS, or the
	// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL environment variables).
	Endpoint string
	// Region; empty is the chain's (AWS_REGION, the profile), or
	// us-east-1 with a custom endpoint.
	Region string
	// Profile selects a shared config profile (AWS_PROFILE otherwise).
	Profile string
	// CAFile is a PEM bundle trusted for the endpoint's TLS, in addition
	// to the system's.
	CAFile string
	// VirtualHost addresses buckets as BUCKET.host instead of host/BUCKET
	// on a custom endpoint (path style is the default there, as MinIO and
	// Ceph want it; AWS always uses virtual hosts).
	VirtualHost bool
	// Credentials, if set, replace the AWS chain (programs that hold their
	// own; the CLI never sets it).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds each request's tries (default 5; AWS_MAX_ATTEMPTS
	// or the profile's max_attempts override it).
	MaxAttempts int
	// PartSize and Concurrency bound a multipart upload's memory at
	// PartSize * (Concurrency + 1) (defaults 8 MiB and 4).
	PartSize    int64
	Concurrency int
}

// Client is an S3 client for one server.
type Client struct {
	api      *s3.Client
	cfg      Config
	endpoint string // for messages
}

// NewClient loads the AWS config chain and makes a client.
func NewClient(ctx context.Context, c Config) (*Client, error) {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.PartSize == 0 {
		c.PartSize = 8 << 20
	}
	if c.PartSize < 5<<20 {
		return nil, fmt.Errorf("S3 part size %d is below S3's minimum of 5 MiB", c.PartSize)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("S3 endpoint %q is not an http(s) URL", endpoint)
		}
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(c.Credentials))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("S3 CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("S3 CA file %s holds no PEM certificate", c.CAFile)
		}
		hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = pool
		})
		opts = append(opts, config.WithHTTPClient(hc))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	// AWS_MAX_ATTEMPTS or the profile's max_attempts win, as in the AWS
	// CLI; the backoff is the SDK's exponential jitter up to 20 s.
	attempts := c.MaxAttempts
	if cfg.RetryMaxAttempts > 0 {
		attempts = cfg.RetryMaxAttempts
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = 20 * time.Second
		})
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, errors.New("no AWS region: set --s3-region or AWS_REGION")
		}
		cfg.Region = "us-east-1"
	}
	api := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = endpoint != "" && !c.VirtualHost
		// Checksums are this package's: explicit CRC-32C on every part
		// and object, checked on reads by [Reader].
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	shown := endpoint
	if shown == "" {
		shown = "AWS S3 (" + cfg.Region + ")"
	}
	return &Client{api: api, cfg: c, endpoint: redactURL(shown)}, nil
}

// API returns the SDK client, for tests and tools.
func (c *Client) API() *s3.Client { return c.api }

// Endpoint names the server in messages.
func (c *Client) Endpoint() string { return c.endpoint }

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// redactURL drops a user:password from an endpoint URL shown in messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
