package s3store

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/etcdsafe/etcdsafe/store"
)

// ErrChecksum is wrapped when the bytes read do not match the checksum
// the server keeps for the object.
var ErrChecksum = errors.New("S3 checksum mismatch")

// Open opens the object at url (s3://BUCKET/KEY) for reading.
func (c *Client) Open(ctx context.Context, url string) (*Reader, error) {
	bucket, key, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("%s names a prefix, not an archive: give the archive's key (etcdsafe list %s shows them)", url, url)
	}
	return c.open(ctx, bucket, key)
}

// Info is what a HEAD of one object tells.
type Info struct {
	Size    int64
	ModTime time.Time
	// Meta is the user metadata (keys lower case, without x-amz-meta-).
	Meta      map[string]string
	Retention *store.Retention
}

// Stat reads the object at url's size, metadata and lock without reading
// its content.
func (c *Client) Stat(ctx context.Context, url string) (*Info, error) {
	bucket, key, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("%s names a prefix, not an object", url)
	}
	h, err := c.Bucket(bucket, "").head(ctx, key, "")
	if err != nil {
		return nil, err
	}
	return &Info{Size: h.size, ModTime: h.modTime, Meta: h.meta, Retention: h.retention}, nil
}

// Split returns the target holding the object at url and the object's
// name in it (for the sidecar beside an archive).
func (c *Client) Split(url string) (*Bucket, string, error) {
	bucket, key, err := ParseURL(url)
	if err != nil {
		return nil, "", err
	}
	dir, name := "", key
	if i := strings.LastIndex(key, "/"); i >= 0 {
		dir, name = key[:i], key[i+1:]
	}
	if name == "" {
		return nil, "", fmt.Errorf("%s names a prefix, not an object", url)
	}
	return c.Bucket(bucket, dir), name, nil
}

// Reader reads one object. It reads ahead on its own goroutine (so the
// network overlaps the caller's work), resumes a broken download where it
// stopped (If-Match the first answer's ETag, so a replaced object is an
// error, not a splice), and at the end checks the bytes against the
// object's full-object CRC-32C when the server keeps one: a mismatch is
// an error wrapping [ErrChecksum] returned instead of io.EOF.
type Reader struct {
	c           *Client
	where       string
	bucket, key string
	head        *head
	ctx         context.Context
	cancel      context.CancelFunc

	chunks chan chunk
	free   chan []byte // chunk buffers read and given back, for reuse
	buf    []byte      // the buffer cur is in
	cur    []byte
	err    error
	crc    hash.Hash32
	n      int64
	wg     sync.WaitGroup
	// Verified says, after io.EOF, whether the server's CRC-32C was
	// compared (false: it keeps none for this object).
	Verified bool
}

type chunk struct {
	b   []byte
	err error
}

const (
	chunkSize  = 1 << 20
	readAhead  = 16 // chunks
	maxResumes = 5
)

func (c *Client) open(ctx context.Context, bucket, key string) (*Reader, error) {
	b := c.Bucket(bucket, "")
	h, err := b.head(ctx, key, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{c: c, where: Scheme + bucket + "/" + key, bucket: bucket, key: key, head: h, ctx: ctx, cancel: cancel,
		chunks: make(chan chunk, readAhead), free: make(chan []byte, readAhead+2), crc: crc32.New(castagnoli)}
	body, err := r.get(0)
	if err != nil {
		cancel()
		return nil, err
	}
	r.wg.Add(1)
	go r.fetch(body)
	return r, nil
}

// Size is the object's size; Where its URL; Meta its user metadata
// (keys lower case, without x-amz-meta-).
func (r *Reader) Size() int64             { return r.head.size }
func (r *Reader) Where() string           { return r.where }
func (r *Reader) Meta() map[string]string { return r.head.meta }
func (r *Reader) ModTime() time.Time      { return r.head.modTime }

func (r *Reader) get(off int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &r.bucket, Key: &r.key, IfMatch: aws.String(r.head.etag)}
	if r.head.etag == "" {
		in.IfMatch = nil
	}
	if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := r.c.api.GetObject(r.ctx, in)
	if err != nil {
		return nil, r.c.wrap("get", r.where, err)
	}
	return out.Body, nil
}

// fetch reads the body into chunks, resuming after a broken connection.
func (r *Reader) fetch(body io.ReadCloser) {
	defer r.wg.Done()
	defer close(r.chunks)
	var off int64
	resumes := 0
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		default:
			buf = make([]byte, chunkSize)
		}
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			off += int64(n)
			select {
			case r.chunks <- chunk{b: buf[:n]}:
			case <-r.ctx.Done():
				body.Close()
				return
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if off >= r.head.size {
				body.Close()
				r.send(chunk{err: io.EOF})
				return
			}
		}
		body.Close()
		if r.ctx.Err() != nil {
			r.send(chunk{err: r.ctx.Err()})
			return
		}
		if resumes++; resumes > maxResumes {
			r.send(chunk{err: fmt.Errorf("read %s: %w (after %d resumed downloads)", r.where, err, maxResumes)})
			return
		}
		time.Sleep(time.Duration(resumes) * 200 * time.Millisecond)
		if body, err = r.get(off); err != nil {
			r.send(chunk{err: err})
			return
		}
	}
}

func (r *Reader) send(c chunk) {
	select {
	case r.chunks <- c:
	case <-r.ctx.Done():
	}
}

// Read reads the object; see [Reader].
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.buf != nil {
			select {
			case r.free <- r.buf[:cap(r.buf)]:
			default:
			}
			r.buf = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		c, ok := <-r.chunks
		switch {
		case !ok:
			r.err = fmt.Errorf("read %s: %w", r.where, io.ErrUnexpectedEOF)
		case errors.Is(c.err, io.EOF):
			r.err = r.finish()
		case c.err != nil:
			r.err = c.err
		default:
			r.cur, r.buf = c.b, c.b
		}
	}
	n := copy(p, r.cur)
	r.crc.Write(p[:n])
	r.cur, r.n = r.cur[n:], r.n+int64(n)
	return n, nil
}

func (r *Reader) finish() error {
	if r.n != r.head.size {
		return fmt.Errorf("read %s: %d bytes, the object has %d: %w", r.where, r.n, r.head.size, io.ErrUnexpectedEOF)
	}
	if r.head.crc32c == "" || !r.head.fullCRC {
		return io.EOF
	}
	if got := crcBase64(r.crc.Sum32()); got != r.head.crc32c {
		return fmt.Errorf("%s: %w: the bytes read have CRC-32C %s, the server keeps %s (damaged at rest or in transit)", r.where, ErrChecksum, got, r.head.crc32c)
	}
	r.Verified = true
	return io.EOF
}

// Close stops the download.
func (r *Reader) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}
