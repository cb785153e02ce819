package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/etcdsafe/etcdsafe/store"
)

// DefaultPartialAge is how old an unfinished multipart upload must be
// before SweepPartials aborts it: a bucket has no lock, so a younger one
// may be another master's upload in progress.
const DefaultPartialAge = 24 * time.Hour

// Bucket is a [store.Target] over the keys under a prefix of a bucket:
// the object "NAME" is the key PREFIX/NAME.
//
// Put streams a multipart upload that is published only when it completes
// (S3's own atomicity), with a full-object CRC-32C the server checks;
// Lock is a no-op (S3 has no lock: concurrent runs are kept apart by
// their names, which hold the host, and by SweepPartials' age limit);
// Delete removes every version of a key in a versioned bucket and reports
// a locked one as [store.ErrRetained].
type Bucket struct {
	c      *Client
	bucket string
	prefix string // "" or ending in "/"
	// PartialAge overrides [DefaultPartialAge] (tests).
	PartialAge time.Duration

	verOnce   sync.Once
	versioned bool
	verErr    error
}

// Bucket returns the target over s3://bucket/prefix (a trailing "/" is
// added to a non-empty prefix).
func (c *Client) Bucket(bucket, prefix string) *Bucket {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Bucket{c: c, bucket: bucket, prefix: prefix}
}

// Sub returns the target over PREFIX/dir/.
func (b *Bucket) Sub(dir string) *Bucket {
	return b.c.Bucket(b.bucket, b.prefix+strings.Trim(dir, "/"))
}

// Name returns the bucket's name; Prefix the key prefix ("" or ending in
// "/").
func (b *Bucket) Name() string   { return b.bucket }
func (b *Bucket) Prefix() string { return b.prefix }

func (b *Bucket) String() string { return Scheme + b.bucket + "/" + b.prefix }

// Where returns the URL of name.
func (b *Bucket) Where(name string) string { return Scheme + b.bucket + "/" + b.prefix + name }

func (b *Bucket) key(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("object name %q: %w", name, fs.ErrInvalid)
	}
	return b.prefix + name, nil
}

// Lock does nothing: see [Bucket].
func (b *Bucket) Lock(context.Context) (func(), error) { return func() {}, nil }

// Check makes one cheap call that fails the way every later one would
// (unreachable endpoint, missing bucket, denied credentials), so a backup
// fails before it reads etcd.
func (b *Bucket) Check(ctx context.Context) error {
	_, err := b.c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.prefix), MaxKeys: aws.Int32(1)})
	return b.c.wrap("list", b.String(), err)
}

// CheckRetention fails with [store.ErrNoRetention] unless the bucket has
// Object Lock enabled.
func (b *Bucket) CheckRetention(ctx context.Context) error {
	out, err := b.c.api.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &b.bucket})
	if err != nil {
		var e *Error
		werr := b.c.wrap("get object lock configuration of", Scheme+b.bucket, err)
		if errors.As(werr, &e) && (e.Code == "ObjectLockConfigurationNotFoundError" || e.Code == "ObjectLockConfigurationNotFound" || e.Code == "InvalidRequest") {
			return fmt.Errorf("bucket %s: %w: it was not created with object lock enabled (S3 turns it on only at creation, with versioning)", b.bucket, store.ErrNoRetention)
		}
		return werr
	}
	if out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return fmt.Errorf("bucket %s: %w: its object lock configuration is not enabled", b.bucket, store.ErrNoRetention)
	}
	return nil
}

// List returns the objects directly under the prefix (not below a
// further "/").
func (b *Bucket) List(ctx context.Context) ([]store.Object, error) {
	var out []store.Object
	p := s3.NewListObjectsV2Paginator(b.c.api, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.c.wrap("list", b.String(), err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			out = append(out, store.Object{Name: name, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

// Dirs returns the names of the "directories" one level under the prefix
// (a fleet bucket's clusters), sorted: those holding objects, and those
// holding only an incomplete upload (a cluster whose first backup was
// killed), so that a fleet-wide prune sweeps it too.
func (b *Bucket) Dirs(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	add := func(prefix string) {
		if d := strings.TrimSuffix(strings.TrimPrefix(prefix, b.prefix), "/"); d != "" {
			seen[d] = true
		}
	}
	p := s3.NewListObjectsV2Paginator(b.c.api, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.c.wrap("list", b.String(), err)
		}
		for _, cp := range page.CommonPrefixes {
			add(aws.ToString(cp.Prefix))
		}
	}
	in := &s3.ListMultipartUploadsInput{Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/")}
	for {
		page, err := b.c.api.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, b.c.wrap("list multipart uploads of", b.String(), err)
		}
		for _, cp := range page.CommonPrefixes {
			add(aws.ToString(cp.Prefix))
		}
		for _, u := range page.Uploads { // servers that ignore the delimiter
			if k := strings.TrimPrefix(aws.ToString(u.Key), b.prefix); strings.Contains(k, "/") {
				add(b.prefix + k[:strings.Index(k, "/")+1])
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// Tree returns the target itself, with Dir "", then one per directory
// one level under it (see [Bucket.Dirs]): a fleet's clusters.
func (b *Bucket) Tree(ctx context.Context) ([]Dir, error) {
	dirs, err := b.Dirs(ctx)
	if err != nil {
		return nil, err
	}
	out := []Dir{{Bucket: b}}
	for _, d := range dirs {
		out = append(out, Dir{Name: d, Bucket: b.Sub(d)})
	}
	return out, nil
}

// Dir is one level of a [Bucket.Tree].
type Dir struct {
	Name   string // "" for the root
	Bucket *Bucket
}

// Stat returns one object with its retention.
func (b *Bucket) Stat(ctx context.Context, name string) (store.Object, error) {
	key, err := b.key(name)
	if err != nil {
		return store.Object{}, err
	}
	h, err := b.head(ctx, key, "")
	if err != nil {
		return store.Object{}, err
	}
	return store.Object{Name: name, Size: h.size, ModTime: h.modTime, Retention: h.retention}, nil
}

// head is what HeadObject tells of one object.
type head struct {
	size      int64
	modTime   time.Time
	etag      string
	crc32c    string // base64, "" when the server keeps none
	fullCRC   bool   // crc32c covers the whole object
	meta      map[string]string
	retention *store.Retention
}

func (b *Bucket) head(ctx context.Context, key, version string) (*head, error) {
	in := &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled}
	if version != "" {
		in.VersionId = &version
	}
	out, err := b.c.api.HeadObject(ctx, in)
	if err != nil {
		return nil, b.c.wrap("stat", Scheme+b.bucket+"/"+key, err)
	}
	h := &head{size: aws.ToInt64(out.ContentLength), modTime: aws.ToTime(out.LastModified), etag: aws.ToString(out.ETag), meta: out.Metadata}
	if c := aws.ToString(out.ChecksumCRC32C); c != "" {
		h.crc32c = c
		h.fullCRC = out.ChecksumType == types.ChecksumTypeFullObject || !strings.Contains(c, "-")
	}
	if out.ObjectLockMode != "" && out.ObjectLockRetainUntilDate != nil {
		h.retention = &store.Retention{Mode: string(out.ObjectLockMode), Until: *out.ObjectLockRetainUntilDate}
	}
	return h, nil
}

// Get opens name for reading: see [Reader].
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, err
	}
	return b.c.open(ctx, b.bucket, key)
}

// Delete removes name: in a versioned bucket every version and delete
// marker of its key, so that the bytes are gone (a plain DeleteObject
// would only hide them behind a marker). A version under an active
// retention is not tried: the error wraps [store.ErrRetained] and says
// until when.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	versioned, err := b.isVersioned(ctx)
	if err != nil {
		return err
	}
	if !versioned {
		_, err := b.c.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
		return b.c.wrap("delete", b.Where(name), err)
	}
	versions, err := b.versions(ctx, key)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, v := range versions {
		if !v.marker {
			h, err := b.head(ctx, key, v.id)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if h != nil && h.retention.Active(now) {
				return &store.RetainedError{Where: b.Where(name), Retention: *h.retention}
			}
		}
		_, err := b.c.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key, VersionId: aws.String(v.id)})
		if err != nil {
			return b.c.wrap("delete", b.Where(name)+" (version "+v.id+")", err)
		}
	}
	return nil
}

type version struct {
	id     string
	marker bool
}

func (b *Bucket) versions(ctx context.Context, key string) ([]version, error) {
	var out []version
	p := s3.NewListObjectVersionsPaginator(b.c.api, &s3.ListObjectVersionsInput{Bucket: &b.bucket, Prefix: &key})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.c.wrap("list versions of", Scheme+b.bucket+"/"+key, err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) == key {
				out = append(out, version{id: aws.ToString(v.VersionId)})
			}
		}
		for _, m := range page.DeleteMarkers {
			if aws.ToString(m.Key) == key {
				out = append(out, version{id: aws.ToString(m.VersionId), marker: true})
			}
		}
	}
	return out, nil
}

func (b *Bucket) isVersioned(ctx context.Context) (bool, error) {
	b.verOnce.Do(func() {
		out, err := b.c.api.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &b.bucket})
		if err != nil {
			b.verErr = b.c.wrap("get versioning of", Scheme+b.bucket, err)
			return
		}
		b.versioned = out.Status == types.BucketVersioningStatusEnabled || out.Status == types.BucketVersioningStatusSuspended
	})
	return b.versioned, b.verErr
}

// SweepPartials aborts the unfinished multipart uploads under the prefix
// older than PartialAge (default [DefaultPartialAge]) whose name
// satisfies match, and returns where each was.
func (b *Bucket) SweepPartials(ctx context.Context, match func(string) bool, dryRun bool) ([]string, error) {
	age := b.PartialAge
	if age == 0 {
		age = DefaultPartialAge
	}
	cutoff := time.Now().Add(-age)
	var out []string
	var errs []error
	in := &s3.ListMultipartUploadsInput{Bucket: &b.bucket, Prefix: aws.String(b.prefix)}
	for {
		page, err := b.c.api.ListMultipartUploads(ctx, in)
		if err != nil {
			return out, b.c.wrap("list multipart uploads of", b.String(), err)
		}
		for _, u := range page.Uploads {
			name := strings.TrimPrefix(aws.ToString(u.Key), b.prefix)
			if strings.Contains(name, "/") || !match(name) || aws.ToTime(u.Initiated).After(cutoff) {
				continue
			}
			where := b.Where(name) + " (upload of " + aws.ToTime(u.Initiated).UTC().Format(time.RFC3339) + ")"
			if !dryRun {
				_, err := b.c.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: u.Key, UploadId: u.UploadId})
				if err = b.c.wrap("abort upload", b.Where(name), err); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
					continue
				}
			}
			out = append(out, where)
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	return out, errors.Join(errs...)
}
