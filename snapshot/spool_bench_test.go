package snapshot

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSpoolCipher measures what encrypting the spool costs a live
// backup: the AES-256-CTR pass on the way to disk plus the decrypting
// second read, against the same writes and reads of plaintext.
func BenchmarkSpoolCipher(b *testing.B) {
	const size = 256 << 20
	chunk := make([]byte, 1<<20)
	_, _ = rand.Read(chunk)
	for _, encrypted := range []bool{false, true} {
		name := "plain"
		if encrypted {
			name = "aes-ctr"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				f, err := os.Create(filepath.Join(b.TempDir(), "spool"))
				if err != nil {
					b.Fatal(err)
				}
				s := &Spool{f: f, Info: Info{Size: size}}
				s.block, _ = aes.NewCipher(make([]byte, 32))
				var w io.Writer = f
				if encrypted {
					w = &ctrWriter{s: cipher.NewCTR(s.block, s.iv[:]), w: f, buf: make([]byte, 1<<20)}
				}
				for range size / len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				var r io.Reader = io.NewSectionReader(f, 0, size)
				if encrypted {
					r = s.NewReader()
				}
				if _, err := io.CopyBuffer(io.Discard, r, make([]byte, 1<<20)); err != nil {
					b.Fatal(err)
				}
				_ = f.Close()
			}
		})
	}
}
