package archive

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestFrameWriter: any input, cut into frames at any size and written in
// any pieces, decodes to itself as one zstd stream, frames in order.
func TestFrameWriter(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("etcdsafe frames "), 4000) // 64000 bytes
	copy(data[1000:], randBytes(t, 3000))
	for _, size := range []int{0, 1, 999, 1000, 64000} {
		for _, frame := range []int{1000, 4096, 1 << 20} {
			for _, workers := range []int{1, 2, 4} {
				var out bytes.Buffer
				fw, err := newFrameWriter(&out, zstd.SpeedDefault, workers)
				if err != nil {
					t.Fatal(err)
				}
				fw.size = frame
				for p := data[:size]; len(p) > 0; {
					k := min(len(p), 777)
					if n, err := fw.Write(p[:k]); n != k || err != nil {
						t.Fatalf("write: %d %v", n, err)
					}
					p = p[k:]
				}
				if err := fw.Close(); err != nil {
					t.Fatal(err)
				}
				zr, err := zstd.NewReader(&out)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(zr)
				zr.Close()
				if err != nil || !bytes.Equal(got, data[:size]) {
					t.Fatalf("size %d frame %d workers %d: got %d bytes (%v)", size, frame, workers, len(got), err)
				}
			}
		}
	}
}

type failAfter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errDisk
	}
	f.n--
	return len(p), nil
}

// TestFrameWriterError: a failing destination fails Write or Close with its
// error, and Close still waits for the frames in flight.
func TestFrameWriterError(t *testing.T) {
	t.Parallel()
	fw, err := newFrameWriter(&failAfter{n: 2}, zstd.SpeedDefault, 2)
	if err != nil {
		t.Fatal(err)
	}
	fw.size = 1000
	data := randBytes(t, 20000)
	_, werr := fw.Write(data)
	cerr := fw.Close()
	if !errors.Is(werr, errDisk) && !errors.Is(cerr, errDisk) {
		t.Fatalf("write %v, close %v: want %v", werr, cerr, errDisk)
	}
	if _, err := fw.Write([]byte("x")); err == nil {
		t.Fatal("write after a failure accepted")
	}
}
