package inspect

import (
	"slices"
	"sync/atomic"
)

// The parallel walks of the key bucket (Index, Diff) fill one slice of
// records per pass: each walker takes chunks of a slice sized for every
// record bbolt counts, or, without one (a filtered query, or once it is
// full), fills blocks of its own. gather puts the pieces together.

// sharedSlice is one slice the walkers of a pass fill at once, each taking
// chunks of entrySlab elements in turn.
type sharedSlice[T any] struct {
	s    []T
	next atomic.Int64
}

const entrySlab = 1 << 12

// newSharedSlice returns a slice for every record of s's key bucket, with
// room for each walker's last, part-filled chunk, or nil if bbolt cannot
// count them.
func newSharedSlice[T any](s *Snapshot, walkers int) *sharedSlice[T] {
	n := 0
	if err := guard("count records", func() error {
		n = s.tx.Bucket(bucketKey).Stats().KeyN
		return nil
	}); err != nil {
		return nil
	}
	return &sharedSlice[T]{s: make([]T, n+walkers*sharedSlack)}
}

// take returns the next free chunk, nil when the slice is full.
func (c *sharedSlice[T]) take() (int, []T) {
	start := int(c.next.Add(entrySlab) - entrySlab)
	if start >= len(c.s) {
		return 0, nil
	}
	return start, c.s[start:start:min(start+entrySlab, len(c.s))]
}

// chunk is a part of the shared slice one walker filled.
type chunk struct{ start, len int }

const entryBlock = 1 << 12

// filler is what one walker fills: chunks of shared, or blocks of its own
// (growing to entryBlock elements) when shared is nil.
type filler[T any] struct {
	shared *sharedSlice[T] // when set, elements go there, in chunks
	chunks []chunk         // the shared chunks taken
	cur    []T             // the chunk or block being filled
	blocks [][]T           // when not shared
}

// slot returns where the next element goes.
func (f *filler[T]) slot() *T {
	if len(f.cur) == cap(f.cur) {
		if f.shared != nil {
			if len(f.chunks) > 0 {
				f.chunks[len(f.chunks)-1].len = len(f.cur)
			}
			start, c := f.shared.take()
			if c == nil {
				// more records than bbolt counted: cannot happen in a
				// read-only transaction; go on in blocks of our own
				f.shared, f.cur = nil, nil
				return f.slot()
			}
			f.chunks = append(f.chunks, chunk{start: start})
			f.cur = c
		} else {
			if len(f.blocks) > 0 {
				f.blocks[len(f.blocks)-1] = f.cur
			}
			f.cur = make([]T, 0, min(entryBlock, 16<<min(len(f.blocks), 8)))
			f.blocks = append(f.blocks, f.cur)
		}
	}
	f.cur = f.cur[:len(f.cur)+1]
	return &f.cur[len(f.cur)-1]
}

// finish records how full the last chunk or block is.
func (f *filler[T]) finish() {
	switch {
	case len(f.chunks) > 0 && f.shared != nil:
		f.chunks[len(f.chunks)-1].len = len(f.cur)
	case len(f.blocks) > 0:
		f.blocks[len(f.blocks)-1] = f.cur
	}
}

// gather returns the walkers' elements in one slice: with shared, its
// chunks moved down in order of position (closing the holes the last
// chunks left), then the blocks of walkers that found it full; without,
// the blocks copied into a slice of exactly their size. Each block is
// dropped once copied.
func gather[T any](shared *sharedSlice[T], fills []*filler[T]) []T {
	var out []T
	if shared != nil {
		var chunks []chunk
		for _, f := range fills {
			chunks = append(chunks, f.chunks...)
		}
		slices.SortFunc(chunks, func(x, y chunk) int { return x.start - y.start })
		n := 0
		for _, ch := range chunks {
			n += copy(shared.s[n:], shared.s[ch.start:ch.start+ch.len])
		}
		clear(shared.s[n:])
		out = shared.s[:n]
	} else {
		total := 0
		for _, f := range fills {
			for _, b := range f.blocks {
				total += len(b)
			}
		}
		out = make([]T, 0, total)
	}
	for _, f := range fills {
		for j, b := range f.blocks {
			out = append(out, b...)
			f.blocks[j] = nil
		}
	}
	return out
}
