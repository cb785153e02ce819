package archive

import (
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"
)

// frameWriter compresses a stream as a series of independent zstd frames
// of frameSize input bytes each, on up to `workers` goroutines at once,
// written to dst in order. A zstd stream may hold any number of frames
// (RFC 8878 section 3.1); every decoder, `zstd -d` included, reads them as
// one stream. klauspost's streaming encoder compresses one block after the
// other with the history of the previous ones: about one core. Independent
// frames cost a little ratio (no match across a frame boundary: under 1%
// here at 4 MiB) and compress on every core, like `zstd -T0`.
//
// Memory: at most workers+1 frames in flight, each its input and its
// output (about 2*frameSize).
type frameWriter struct {
	dst     io.Writer
	enc     *zstd.Encoder
	size    int
	workers int

	buf     []byte
	pending []chan frameResult // in order of submission
	free    chan []byte        // input buffers back from the workers
	err     error
	closed  bool
}

type frameResult struct {
	out []byte
	in  []byte
}

// frameSize is the input of one frame.
const frameSize = 4 << 20

// maxFrameWorkers bounds the goroutines (and memory) of one writer on a
// machine with many cores: a backup runs next to etcd on a master.
const maxFrameWorkers = 4

func newFrameWriter(dst io.Writer, level zstd.EncoderLevel, workers int) (*frameWriter, error) {
	workers = max(1, min(workers, maxFrameWorkers))
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers),
		zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	return &frameWriter{dst: dst, enc: enc, size: frameSize, workers: workers,
		free: make(chan []byte, workers+2)}, nil
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.closed {
		return 0, errors.New("zstd frames: write after close")
	}
	n := 0
	for len(p) > 0 {
		if f.buf == nil {
			select {
			case f.buf = <-f.free:
				f.buf = f.buf[:0]
			default:
				f.buf = make([]byte, 0, f.size)
			}
		}
		k := copy(f.buf[len(f.buf):cap(f.buf)], p)
		f.buf = f.buf[:len(f.buf)+k]
		p, n = p[k:], n+k
		if len(f.buf) == f.size {
			if err := f.submit(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// submit hands the full buffer to a worker, first writing out the oldest
// frame when as many as workers+1 are in flight.
func (f *frameWriter) submit() error {
	in := f.buf
	f.buf = nil
	if len(f.pending) > f.workers {
		if err := f.writeOldest(); err != nil {
			return err
		}
	}
	ch := make(chan frameResult, 1)
	f.pending = append(f.pending, ch)
	go func() { ch <- frameResult{out: f.enc.EncodeAll(in, make([]byte, 0, len(in)/2+64)), in: in} }()
	return nil
}

func (f *frameWriter) writeOldest() error {
	r := <-f.pending[0]
	f.pending = f.pending[1:]
	select {
	case f.free <- r.in:
	default:
	}
	if _, err := f.dst.Write(r.out); err != nil {
		f.err = err
		return err
	}
	return nil
}

// Close compresses what is left and writes every frame; it does not close
// dst. An empty stream gets one empty frame, so that the output is a valid
// zstd stream.
func (f *frameWriter) Close() error {
	if f.closed {
		return f.err
	}
	f.closed = true
	if f.err == nil && (len(f.buf) > 0 || len(f.pending) == 0) {
		if f.buf == nil {
			f.buf = []byte{}
		}
		_ = f.submit()
	}
	for len(f.pending) > 0 {
		if f.err != nil {
			<-f.pending[0] // let the workers finish
			f.pending = f.pending[1:]
			continue
		}
		_ = f.writeOldest()
	}
	return f.err
}
