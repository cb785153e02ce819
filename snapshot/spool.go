package snapshot

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Spool is a snapshot streamed from a member into a temp file that never
// holds plaintext: every byte is encrypted on its way to disk with
// AES-256-CTR under a random key that exists only in this process's memory.
// A process killed mid-backup (SIGKILL, the OOM killer, a power cut)
// leaves at most ciphertext whose key died with it; on Linux not even
// that, since the file is unlinked as soon as it is created and lives on
// only as an open descriptor.
//
// CTR gives confidentiality at rest, not integrity: a local attacker able
// to modify the spool while the backup runs could flip plaintext bits. The
// caller's second read is checked against the CRC-32C of the first pass
// ([Info.FileCRC32C]), and archive readers check the SHA-256, so a changed
// spool fails the backup rather than going unnoticed by accident.
type Spool struct {
	// Info describes the plaintext snapshot: size, trailer, SHA-256 and
	// CRC-32C of the whole stream, as [Save] reports them.
	Info Info
	// Path is where the spool was created (already unlinked where the
	// platform allows it).
	Path string

	f     *os.File
	block cipher.Block
	iv    [aes.BlockSize]byte
}

// SaveSpool streams a snapshot from the member c is connected to into a
// new encrypted spool file in dir (which should be a private directory
// outside any backup directory). It verifies the stream's trailer at EOF,
// as [Save] does. On error nothing is left in dir. The caller reads the
// plaintext back with [Spool.ReadAt] or [Spool.NewReader] and must call
// [Spool.Close]. It may be retried after an error.
func SaveSpool(ctx context.Context, c *clientv3.Client, dir string) (_ *Spool, err error) {
	s := &Spool{}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("spool key: %w", err)
	}
	if _, err := rand.Read(s.iv[:]); err != nil {
		return nil, fmt.Errorf("spool iv: %w", err)
	}
	if s.block, err = aes.NewCipher(key); err != nil {
		return nil, fmt.Errorf("spool cipher: %w", err)
	}
	clear(key) // the expanded key lives on in block, for the second read
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("create snapshot spool in %q: %w", dir, err)
	}
	s.f, s.Path = f, f.Name()
	if err := f.Chmod(0o600); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("chmod snapshot spool: %w", err)
	}
	// Unlinked now, the file goes away with the last descriptor, however
	// the process ends. Where that is not allowed, Close removes it.
	unlinked := os.Remove(s.Path) == nil
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	enc := &ctrWriter{s: cipher.NewCTR(s.block, s.iv[:]), w: f, buf: make([]byte, 1<<20)}
	if s.Info, err = receive(ctx, c, enc); err != nil {
		return nil, err
	}
	if unlinked {
		s.Path = ""
	}
	return s, nil
}

// ReadAt reads and decrypts len(p) bytes of the plaintext at off.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f == nil {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n, err := s.f.ReadAt(p, off)
	ctr := s.iv
	addCounter(&ctr, uint64(off/aes.BlockSize))
	stream := cipher.NewCTR(s.block, ctr[:])
	if skip := int(off % aes.BlockSize); skip > 0 {
		var junk [aes.BlockSize]byte
		stream.XORKeyStream(junk[:skip], junk[:skip])
	}
	stream.XORKeyStream(p[:n], p[:n])
	return n, err
}

// NewReader returns a reader of the whole plaintext snapshot from its
// start; each call starts a new reader. The Spool must stay open while it
// is used.
func (s *Spool) NewReader() io.Reader { return io.NewSectionReader(s, 0, s.Info.Size) }

// Close closes the spool file and removes it if it is still linked. It may
// be called more than once.
func (s *Spool) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if s.Path != "" {
		if rerr := os.Remove(s.Path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("close snapshot spool: %w", err)
	}
	return nil
}

// ctrWriter encrypts into one reused buffer (cipher.StreamWriter
// allocates a new one for every write).
type ctrWriter struct {
	s   cipher.Stream
	w   io.Writer
	buf []byte
}

func (c *ctrWriter) Write(p []byte) (int, error) {
	var done int
	for len(p) > 0 {
		n := min(len(p), len(c.buf))
		c.s.XORKeyStream(c.buf[:n], p[:n])
		k, err := c.w.Write(c.buf[:n])
		done += k
		if err != nil {
			return done, err
		}
		p = p[n:]
	}
	return done, nil
}

// addCounter adds n to the 128-bit big-endian counter block, as CTR mode
// increments it once per block.
func addCounter(ctr *[aes.BlockSize]byte, n uint64) {
	lo := binary.BigEndian.Uint64(ctr[8:])
	sum := lo + n
	binary.BigEndian.PutUint64(ctr[8:], sum)
	if sum < lo {
		binary.BigEndian.PutUint64(ctr[:8], binary.BigEndian.Uint64(ctr[:8])+1)
	}
}
