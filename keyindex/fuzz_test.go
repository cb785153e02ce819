package keyindex

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

// FuzzPayload: the decoder of an index's plaintext (what is inside age
// and zstd, which whoever holds a recipient can write) never panics, and
// returns either an index or an *Error, never both.
func FuzzPayload(f *testing.F) {
	meta := func(j string) []byte { return append([]byte{byte(len(j))}, j...) }
	hdr := append(bytes.Clone(magic), meta(`{"index_version":1,"hash":"sha256","revision":1,"snapshot_size":1,"snapshot_sha256":"x"}`)...)
	rec := []byte{tagDelete, 4, 0, 1, 'k'}
	h := sha256.New()
	h.Write(rec)
	h.Write([]byte{tagEnd})
	good := append(append(append(bytes.Clone(hdr), rec...), tagEnd),
		meta(`{"records":1,"records_sha256":"`+hexs(h.Sum(nil))+`","archive_size":1,"archive_sha256":"y"}`)...)
	f.Add(good)
	f.Add(hdr)
	f.Add(append(bytes.Clone(hdr), tagPut, 2, 0, 1, 2, 2, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	f.Add([]byte("etcdsafe-keyindex\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &decoder{r: bufio.NewReader(bytes.NewReader(b)), h: sha256.New(), name: "fuzz", src: &eofReader{r: bytes.NewReader(nil), eof: true}, ctx: context.Background()}
		ix, err := d.read(func([]byte) bool { return true })
		if err != nil {
			err = d.classify(err)
			var ie *Error
			if ix != nil || !errors.As(err, &ie) && !errors.Is(err, io.EOF) {
				t.Fatalf("read = %v, %v (%T)", ix != nil, err, err)
			}
			return
		}
		if ix == nil || int64(len(ix.Records)) != ix.Trailer.Records {
			t.Fatalf("read ok with %+v", ix)
		}
	})
}
