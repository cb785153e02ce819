package s3store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/etcdsafe/etcdsafe/store"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MetaPrefix starts the names of the user metadata this tool sets
// (x-amz-meta-etcdsafe-...).
const MetaPrefix = "etcdsafe-"

// Put starts the upload of name. What is written is cut into parts of
// PartSize, uploaded by Concurrency goroutines while the next part fills
// (Write blocks when all are busy: memory stays under PartSize *
// (Concurrency+1)). An object smaller than one part is one PutObject at
// Commit. Every part carries its CRC-32C and the completion the whole
// object's (S3's FULL_OBJECT checksum type), which the server checks;
// NoReplace sends If-None-Match: *. Any error, and Abort, aborts the
// multipart upload (with a fresh context, so that an interrupted run
// still cleans up); what an abort cannot reach (the server died) is left
// for [Bucket.SweepPartials].
func (b *Bucket) Put(ctx context.Context, name string, o store.PutOptions) (store.Upload, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	u := &upload{b: b, key: key, where: b.Where(name), opts: o, ctx: ctx, cancel: cancel,
		partSize: int(b.c.cfg.PartSize), crc: crc32.New(castagnoli),
		free: make(chan []byte, b.c.cfg.Concurrency+1)}
	u.cur = u.buffer()
	return u, nil
}

type upload struct {
	b        *Bucket
	key      string
	where    string
	opts     store.PutOptions
	ctx      context.Context
	cancel   context.CancelFunc
	partSize int

	cur       []byte
	allocated int
	free      chan []byte
	crc       hash.Hash32
	size      int64
	nextPart  int32
	uploadID  string
	wg        sync.WaitGroup
	sem       chan struct{}

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error
	done  bool
}

// buffer returns a free part buffer, allocating up to Concurrency+1.
func (u *upload) buffer() []byte {
	select {
	case b := <-u.free:
		return b[:0]
	default:
	}
	if u.allocated < cap(u.free) {
		u.allocated++
		return make([]byte, 0, u.partSize)
	}
	select {
	case b := <-u.free:
		return b[:0]
	case <-u.ctx.Done():
		return nil
	}
}

func (u *upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

func (u *upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("write after commit or abort")
	}
	n := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return n, err
		}
		if err := u.ctx.Err(); err != nil {
			return n, err
		}
		k := min(len(p), u.partSize-len(u.cur))
		u.cur = append(u.cur, p[:k]...)
		u.crc.Write(p[:k])
		p, n, u.size = p[k:], n+k, u.size+int64(k)
		if len(u.cur) == u.partSize {
			if err := u.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush hands the full current part to an upload goroutine.
func (u *upload) flush() error {
	if u.uploadID == "" {
		if err := u.create(); err != nil {
			u.fail(err)
			return err
		}
	}
	u.nextPart++
	part, num := u.cur, u.nextPart
	u.sem <- struct{}{}
	u.wg.Add(1)
	go func() {
		defer func() { <-u.sem; u.wg.Done() }()
		if err := u.uploadPart(num, part); err != nil {
			u.fail(err)
		}
		u.free <- part
	}()
	u.cur = u.buffer()
	if u.cur == nil {
		return u.failedOr(u.ctx.Err())
	}
	return nil
}

func (u *upload) failedOr(err error) error {
	if e := u.failed(); e != nil {
		return e
	}
	return err
}

func (u *upload) create() error {
	in := &s3.CreateMultipartUploadInput{Bucket: &u.b.bucket, Key: &u.key,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject,
		Metadata: u.opts.Meta, ContentType: aws.String("application/octet-stream")}
	if r := u.opts.Retention; r != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(r.Mode), aws.Time(r.Until)
	}
	out, err := u.b.c.api.CreateMultipartUpload(u.ctx, in)
	if err != nil {
		return u.b.c.wrap("start upload of", u.where, err)
	}
	u.uploadID = aws.ToString(out.UploadId)
	u.sem = make(chan struct{}, u.b.c.cfg.Concurrency)
	return nil
}

func (u *upload) uploadPart(num int32, part []byte) error {
	sum := crc32.Checksum(part, castagnoli)
	c := crcBase64(sum)
	// a bytes.Reader body is seekable: the SDK's retries resend it
	out, err := u.b.c.api.UploadPart(u.ctx, &s3.UploadPartInput{Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.uploadID,
		PartNumber: aws.Int32(num), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumCRC32C: aws.String(c)}, unsignedPayload)
	if err != nil {
		return u.b.c.wrap(fmt.Sprintf("upload part %d of", num), u.where, err)
	}
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumCRC32C: aws.String(c)})
	u.mu.Unlock()
	return nil
}

// unsignedPayload signs a body's request without the body's SHA-256
// (UNSIGNED-PAYLOAD), as the SDK already does over https: the CRC-32C
// header, which is signed, covers the bytes, and the archive carries its
// own authentication (age). Over plain http this saves a SHA-256 pass of
// every part on each side, the server's included.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

func crcBase64(sum uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sum)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Commit uploads what is left and completes the upload; the object
// appears only now.
func (u *upload) Commit(size int64) (err error) {
	if u.done {
		return errors.New("upload already committed or aborted")
	}
	defer func() {
		if err != nil {
			u.Abort()
		}
		u.done = true
		u.cancel()
	}()
	if err := u.failedOr(u.ctx.Err()); err != nil {
		return err
	}
	if size != u.size {
		return fmt.Errorf("%s: %d bytes written, %d expected", u.where, u.size, size)
	}
	full := crcBase64(u.crc.Sum32())
	if u.uploadID == "" {
		return u.putObject(full)
	}
	if len(u.cur) > 0 {
		if err := u.flush(); err != nil {
			return err
		}
	}
	u.wg.Wait()
	if err := u.failedOr(u.ctx.Err()); err != nil {
		return err
	}
	sortParts(u.parts)
	in := &s3.CompleteMultipartUploadInput{Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
		ChecksumCRC32C:  aws.String(full), ChecksumType: types.ChecksumTypeFullObject}
	if u.opts.NoReplace {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := u.b.c.api.CompleteMultipartUpload(u.ctx, in); err != nil {
		return u.b.c.wrap("complete upload of", u.where, err)
	}
	u.uploadID = ""
	return nil
}

func (u *upload) putObject(full string) error {
	in := &s3.PutObjectInput{Bucket: &u.b.bucket, Key: &u.key, Body: bytes.NewReader(u.cur), ContentLength: aws.Int64(int64(len(u.cur))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumCRC32C: aws.String(full),
		Metadata: u.opts.Meta, ContentType: aws.String("application/octet-stream")}
	if r := u.opts.Retention; r != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(r.Mode), aws.Time(r.Until)
	}
	if u.opts.NoReplace {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := u.b.c.api.PutObject(u.ctx, in, unsignedPayload)
	return u.b.c.wrap("put", u.where, err)
}

func sortParts(p []types.CompletedPart) {
	slices.SortFunc(p, func(a, b types.CompletedPart) int {
		return cmp.Compare(aws.ToInt32(a.PartNumber), aws.ToInt32(b.PartNumber))
	})
}

// Abort stops the upload and aborts it on the server.
func (u *upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.cancel()
	u.wg.Wait()
	if u.uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 30*time.Second)
	defer cancel()
	_, _ = u.b.c.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.uploadID})
	u.uploadID = ""
}
