package s3test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// partSize is versitygw's (and S3's) minimum size of every part but the last.
const partSize = 5 << 20

// apiError returns the S3 error code and HTTP status of err, failing the
// test when err is nil or not an S3 error.
func apiError(t *testing.T, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatal("request succeeded, want an error")
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("not an S3 error response: %v", err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func wantError(t *testing.T, err error, code string, status int) {
	t.Helper()
	gotCode, gotStatus := apiError(t, err)
	if gotCode != code || gotStatus != status {
		t.Fatalf("error = %s %d, want %s %d (%v)", gotCode, gotStatus, code, status, err)
	}
}

func sum(h hash.Hash, b ...[]byte) []byte {
	for _, p := range b {
		h.Write(p)
	}
	return h.Sum(nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func crc32c(b ...[]byte) string {
	return b64(sum(crc32.New(crc32.MakeTable(crc32.Castagnoli)), b...))
}

func sha(b ...[]byte) []byte { return sum(sha256.New(), b...) }

// twoParts returns a full-size first part and a short last one.
func twoParts() [][]byte {
	a := bytes.Repeat([]byte("etcdsafe"), partSize/8)
	return [][]byte{a, []byte("the last, short part")}
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "plain", false)
	s.CreateBucket(t, "locked", true)

	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String("a/b"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "plain", "a/b"); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	lc, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("locked")})
	if err != nil {
		t.Fatal(err)
	}
	if lc.ObjectLockConfiguration == nil || lc.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		t.Fatalf("lock configuration = %+v", lc.ObjectLockConfiguration)
	}
	_, err = c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("plain")})
	wantError(t, err, "ObjectLockConfigurationNotFoundError", 404)

	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("locked")})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning of the lock bucket = %v, %v", v.Status, err)
	}

	put, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("locked"), Key: aws.String("kept"), Body: strings.NewReader("retained"),
		ObjectLockMode:            types.ObjectLockModeGovernance,
		ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if put.VersionId == nil || *put.VersionId == "" {
		t.Fatal("no version id from a versioned bucket")
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("kept"), VersionId: put.VersionId})
	wantError(t, err, "AccessDenied", 403)

	s.Kill()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("plain")}); err == nil {
		t.Fatal("killed server still answers")
	}
	s.Restart(t)
	if got := get(t, c, "plain", "a/b"); string(got) != "hello" {
		t.Fatalf("after restart got %q", got)
	}
	if got := get(t, c, "locked", "kept"); string(got) != "retained" {
		t.Fatalf("after restart got %q", got)
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("kept"), VersionId: put.VersionId})
	wantError(t, err, "AccessDenied", 403)
}

func TestEnv(t *testing.T) {
	s := &Server{AccessKey: "AK", SecretKey: "SK", Region: Region, Endpoint: "http://127.0.0.1:1"}
	got := strings.Join(s.Env(), " ")
	want := "AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3=http://127.0.0.1:1 ETCDSAFE_S3_ENDPOINT=http://127.0.0.1:1"
	if got != want {
		t.Fatalf("Env() = %s, want %s", got, want)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if moduleOf(filepath.Join(root, "go.mod")) != modulePath {
		t.Fatalf("RepoRoot() = %s, whose go.mod is not module %s", root, modulePath)
	}
	if moduleOf(filepath.Join(root, "e2e", "go.mod")) == modulePath {
		t.Fatal("the e2e module read as the main one")
	}
}

// upload starts a multipart upload and sends parts, returning the upload id
// and the parts as Complete wants them. check adds a part's checksum to the
// UploadPart input and to its CompletedPart.
func upload(t *testing.T, c *s3.Client, in *s3.CreateMultipartUploadInput, parts [][]byte,
	check func(part []byte, up *s3.UploadPartInput, done *types.CompletedPart)) (*string, []types.CompletedPart) {
	t.Helper()
	ctx := context.Background()
	mp, err := c.CreateMultipartUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		up := &s3.UploadPartInput{Bucket: in.Bucket, Key: in.Key, UploadId: mp.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)}
		cp := types.CompletedPart{PartNumber: up.PartNumber}
		if check != nil {
			check(p, up, &cp)
		}
		out, err := c.UploadPart(ctx, up)
		if err != nil {
			t.Fatalf("upload part %d: %v", i+1, err)
		}
		cp.ETag = out.ETag
		done = append(done, cp)
	}
	return mp.UploadId, done
}

func complete(c *s3.Client, bucket, key string, id *string, parts []types.CompletedPart, f func(*s3.CompleteMultipartUploadInput)) error {
	in := &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if f != nil {
		f(in)
	}
	_, err := c.CompleteMultipartUpload(context.Background(), in)
	return err
}

// (1) CRC32C FULL_OBJECT: Complete checks the whole-object CRC it is sent
// (BadDigest 400 when wrong, and the upload stays completable), and
// HeadObject returns it with ChecksumType FULL_OBJECT.
func TestMultipartCRC32CFullObject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)
	parts := twoParts()
	whole := crc32c(parts...)

	id, done := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject}, parts,
		func(p []byte, up *s3.UploadPartInput, cp *types.CompletedPart) {
			up.ChecksumCRC32C = aws.String(crc32c(p))
			cp.ChecksumCRC32C = up.ChecksumCRC32C
		})
	err := complete(c, "bkt", "k", id, done, func(in *s3.CompleteMultipartUploadInput) {
		in.ChecksumType = types.ChecksumTypeFullObject
		in.ChecksumCRC32C = aws.String(crc32c([]byte("not the object")))
	})
	wantError(t, err, "BadDigest", 400)
	if err := complete(c, "bkt", "k", id, done, func(in *s3.CompleteMultipartUploadInput) {
		in.ChecksumType = types.ChecksumTypeFullObject
		in.ChecksumCRC32C = aws.String(whole)
	}); err != nil {
		t.Fatalf("complete with the right CRC after a refused one: %v", err)
	}

	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(h.ChecksumCRC32C) != whole || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("head: crc32c %q type %q, want %q FULL_OBJECT", aws.ToString(h.ChecksumCRC32C), h.ChecksumType, whole)
	}
	// The SDK checks a full-object CRC on GetObject with ChecksumMode ENABLED.
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(g.Body)
	g.Body.Close()
	if err != nil || crc32c(b) != whole || aws.ToString(g.ChecksumCRC32C) != whole {
		t.Fatalf("get: %d bytes, crc32c %q, %v", len(b), aws.ToString(g.ChecksumCRC32C), err)
	}
}

// (2) SHA256 COMPOSITE: the object's checksum is base64(sha256 of the
// parts' raw sha256 digests) + "-<parts>"; Complete checks it (with or
// without the suffix) and HeadObject returns it with ChecksumType COMPOSITE.
func TestMultipartSHA256Composite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)
	parts := twoParts()
	composite := b64(sha(sha(parts[0]), sha(parts[1]))) + "-2"

	id, done := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumType: types.ChecksumTypeComposite}, parts,
		func(p []byte, up *s3.UploadPartInput, cp *types.CompletedPart) {
			up.ChecksumSHA256 = aws.String(b64(sha(p)))
			cp.ChecksumSHA256 = up.ChecksumSHA256
		})
	err := complete(c, "bkt", "k", id, done, func(in *s3.CompleteMultipartUploadInput) {
		in.ChecksumType = types.ChecksumTypeComposite
		in.ChecksumSHA256 = aws.String(b64(sha(parts...))) // the whole object's sha256: not what is asked
	})
	wantError(t, err, "BadDigest", 400)
	if err := complete(c, "bkt", "k", id, done, func(in *s3.CompleteMultipartUploadInput) {
		in.ChecksumType = types.ChecksumTypeComposite
		in.ChecksumSHA256 = aws.String(strings.TrimSuffix(composite, "-2"))
	}); err != nil {
		t.Fatalf("complete with the composite sha256: %v", err)
	}

	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(h.ChecksumSHA256) != composite || h.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("head: sha256 %q type %q, want %q COMPOSITE", aws.ToString(h.ChecksumSHA256), h.ChecksumType, composite)
	}

	// The same value with its "-<parts>" suffix is accepted too.
	p := []byte("one part")
	id, done = upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("one"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumType: types.ChecksumTypeComposite}, [][]byte{p},
		func(p []byte, up *s3.UploadPartInput, cp *types.CompletedPart) {
			up.ChecksumSHA256 = aws.String(b64(sha(p)))
			cp.ChecksumSHA256 = up.ChecksumSHA256
		})
	if err := complete(c, "bkt", "one", id, done, func(in *s3.CompleteMultipartUploadInput) {
		in.ChecksumSHA256 = aws.String(b64(sha(sha(p))) + "-1")
	}); err != nil {
		t.Fatalf("complete with the suffixed composite sha256: %v", err)
	}
}

// (1, details) On an upload created with CRC32C FULL_OBJECT: a part sent
// without a checksum gets one computed by the server (UploadPart returns
// it); a wrong part checksum is refused (BadDigest 400); Complete must list
// every part's checksum (else InvalidRequest 400) but may leave out the
// whole-object one, which the server then computes.
func TestMultipartCRC32CParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)
	p := []byte("one part")
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject}
	mp, err := c.CreateMultipartUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	part := func(crc *string) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: in.Bucket, Key: in.Key, UploadId: mp.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(p), ChecksumCRC32C: crc})
	}
	_, err = part(aws.String(crc32c([]byte("other bytes"))))
	wantError(t, err, "BadDigest", 400)
	up, err := part(nil) // over plain http the SDK sends no checksum header
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(up.ChecksumCRC32C) != crc32c(p) {
		t.Fatalf("part checksum = %q, want the server's %q", aws.ToString(up.ChecksumCRC32C), crc32c(p))
	}
	done := []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}
	err = complete(c, "bkt", "k", mp.UploadId, done, nil)
	wantError(t, err, "InvalidRequest", 400)
	done[0].ChecksumCRC32C = up.ChecksumCRC32C
	if err := complete(c, "bkt", "k", mp.UploadId, done, nil); err != nil {
		t.Fatalf("complete without the whole-object crc: %v", err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || aws.ToString(h.ChecksumCRC32C) != crc32c(p) || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("head: crc32c %q type %q (%v), want %q FULL_OBJECT", aws.ToString(h.ChecksumCRC32C), h.ChecksumType, err, crc32c(p))
	}
}

// Defaults worth knowing: FULL_OBJECT takes CRC algorithms only (SHA256 is
// refused with InvalidRequest 400); an algorithm without a type is
// COMPOSITE; a PutObject sent with no checksum (the SDK over plain http) is
// stored with a CRC64NVME FULL_OBJECT checksum the server computes.
func TestChecksumDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)

	_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("a"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumType: types.ChecksumTypeFullObject})
	wantError(t, err, "InvalidRequest", 400)

	if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("b"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c}); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
	if err != nil || len(l.Uploads) != 1 || l.Uploads[0].ChecksumAlgorithm != types.ChecksumAlgorithmCrc32c || l.Uploads[0].ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("uploads %+v, %v; want one CRC32C COMPOSITE", l.Uploads, err)
	}

	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || h.ChecksumCRC64NVME == nil || h.ChecksumCRC32 != nil || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("head: crc64nvme %q crc32 %q type %q (%v)", aws.ToString(h.ChecksumCRC64NVME), aws.ToString(h.ChecksumCRC32), h.ChecksumType, err)
	}
}

// (3) Retention set on CreateMultipartUpload applies to the completed
// object.
func TestMultipartRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "locked", true)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	id, done := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("locked"), Key: aws.String("k"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: &until}, twoParts(), nil)
	if err := complete(c, "locked", "k", id, done, nil); err != nil {
		t.Fatal(err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if h.ObjectLockMode != types.ObjectLockModeGovernance || h.ObjectLockRetainUntilDate == nil || !h.ObjectLockRetainUntilDate.Equal(until) {
		t.Fatalf("head: lock mode %q until %v, want GOVERNANCE %v", h.ObjectLockMode, h.ObjectLockRetainUntilDate, until)
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("k"), VersionId: h.VersionId})
	wantError(t, err, "AccessDenied", 403)
}

// (4) An unfinished upload is listed with its Initiated time until it is
// aborted; then it is gone (NoSuchUpload).
func TestListAndAbortUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)
	before := time.Now().Add(-2 * time.Second) // Initiated has second precision
	id, _ := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("dir/k")}, [][]byte{[]byte("x")}, nil)

	l, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Uploads) != 1 {
		t.Fatalf("uploads = %+v", l.Uploads)
	}
	u := l.Uploads[0]
	if aws.ToString(u.Key) != "dir/k" || aws.ToString(u.UploadId) != *id || u.Initiated == nil ||
		u.Initiated.Before(before) || u.Initiated.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("upload = key %q id %q initiated %v", aws.ToString(u.Key), aws.ToString(u.UploadId), u.Initiated)
	}

	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("dir/k"), UploadId: id}); err != nil {
		t.Fatal(err)
	}
	l, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
	if err != nil || len(l.Uploads) != 0 {
		t.Fatalf("after abort: uploads %+v, %v", l.Uploads, err)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("dir/k"), UploadId: id})
	wantError(t, err, "NoSuchUpload", 404)
}

// (5) IfNoneMatch "*" refuses with 412 PreconditionFailed to complete an
// upload (or put an object) over an existing key, in a plain and a
// versioned (object-lock) bucket, and lets it create a new key.
func TestIfNoneMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	for _, tc := range []struct {
		name string
		lock bool
	}{{"plain", false}, {"locked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s.CreateBucket(t, tc.name, tc.lock)
			ifNoneMatch := func(in *s3.CompleteMultipartUploadInput) { in.IfNoneMatch = aws.String("*") }
			id, done := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: &tc.name, Key: aws.String("k")}, [][]byte{[]byte("first")}, nil)
			if err := complete(c, tc.name, "k", id, done, ifNoneMatch); err != nil {
				t.Fatalf("complete a new key: %v", err)
			}
			id, done = upload(t, c, &s3.CreateMultipartUploadInput{Bucket: &tc.name, Key: aws.String("k")}, [][]byte{[]byte("second")}, nil)
			wantError(t, complete(c, tc.name, "k", id, done, ifNoneMatch), "PreconditionFailed", 412)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &tc.name, Key: aws.String("k"), Body: strings.NewReader("third"), IfNoneMatch: aws.String("*")})
			wantError(t, err, "PreconditionFailed", 412)
			if got := get(t, c, tc.name, "k"); string(got) != "first" {
				t.Fatalf("object = %q after refused writes", got)
			}
		})
	}
}

// (6) User metadata given to CreateMultipartUpload is the object's.
func TestMultipartMetadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, Options{})
	c := s.Client(t)
	s.CreateBucket(t, "bkt", false)
	meta := map[string]string{"etcdsafe-sha256": "abc123", "etcdsafe-revision": "42"}
	id, done := upload(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Metadata: meta}, [][]byte{[]byte("x")}, nil)
	if err := complete(c, "bkt", "k", id, done, nil); err != nil {
		t.Fatal(err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if h.Metadata[k] != v {
			t.Fatalf("metadata = %v, want %v", h.Metadata, meta)
		}
	}
}
