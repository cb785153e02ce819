package main

import (
	"context"
	"sync"

	"github.com/spf13/pflag"

	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// s3Flags are the S3 connection flags every command that takes an
// s3:// URL has. Credentials are never flags: they come from the AWS
// chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the
// shared files, web identity, instance or container metadata).
type s3Flags struct {
	endpoint    string
	region      string
	profile     string
	caFile      string
	virtualHost bool

	once   sync.Once
	client *s3store.Client
	err    error
}

func (f *s3Flags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "S3 endpoint URL for anything but AWS (MinIO, Ceph RGW, ...; default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL)")
	fs.StringVar(&f.region, "s3-region", "", "S3 region (default $AWS_REGION or the profile's; us-east-1 with --s3-endpoint)")
	fs.StringVar(&f.profile, "s3-profile", "", "AWS shared config profile (default $AWS_PROFILE)")
	fs.StringVar(&f.caFile, "s3-ca-file", "", "PEM CA bundle trusted for the S3 endpoint's TLS, besides the system's")
	fs.BoolVar(&f.virtualHost, "s3-virtual-host", false, "address buckets as BUCKET.host on --s3-endpoint (default: path style, as MinIO and Ceph want)")
}

// client makes the S3 client once, on first use: commands that get no
// s3:// URL never load the AWS config.
func (f *s3Flags) clientFor(ctx context.Context) (*s3store.Client, error) {
	f.once.Do(func() {
		f.client, f.err = s3store.NewClient(ctx, s3store.Config{
			Endpoint: f.endpoint, Region: f.region, Profile: f.profile, CAFile: f.caFile, VirtualHost: f.virtualHost,
		})
	})
	return f.client, f.err
}
