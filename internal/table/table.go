package table

import (
	"context"
	"io"
	"strconv"
	"sync"

	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// Cell is one cell of a row: text, a number, or two texts joined by a
// separator. The zero Cell is empty text.
type Cell struct {
	a, b string
	n    int64
	sep  byte // Join's separator, 0 otherwise
	num  bool
}

// Text is a cell showing s, cleaned for a terminal ([termtext.Clean]
// returns a safe string as it is, without allocating).
func Text(s string) Cell { return Cell{a: termtext.Clean(s)} }

// Int is a cell showing n in decimal.
func Int(n int64) Cell { return Cell{n: n, num: true} }

// Join is a cell showing a, sep and b, or b alone when a is empty
// ("apps/v1", "v1"); both are cleaned as by [Text].
func Join(a string, sep byte, b string) Cell {
	if a == "" {
		return Text(b)
	}
	return Cell{a: termtext.Clean(a), b: termtext.Clean(b), sep: sep}
}

// Len is the cell's width in bytes.
func (c *Cell) Len() int {
	switch {
	case c.num:
		return digits(c.n)
	case c.sep != 0:
		return len(c.a) + 1 + len(c.b)
	}
	return len(c.a)
}

func (c *Cell) appendTo(b []byte) []byte {
	switch {
	case c.num:
		return strconv.AppendInt(b, c.n, 10)
	case c.sep != 0:
		return append(append(append(b, c.a...), c.sep), c.b...)
	}
	return append(b, c.a...)
}

func digits(v int64) int {
	n := 1
	if v < 0 {
		n, v = 2, -v
	}
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// Options describe a table for [Print].
type Options struct {
	// Header names the columns; their number is the number of cells of
	// a row.
	Header []string
	// Row fills cells (len(Header) of them, reused from row to row) with
	// row i's and says whether the row is printed. It is called twice
	// per row, from up to Workers goroutines at once: it must be safe for
	// concurrent use and give the same answer both times.
	Row func(i int, cells []Cell) bool
	// Workers is how many goroutines measure and make lines; 0 or 1 =
	// the caller's alone.
	Workers int
}

// chunk is how many rows one worker measures or makes lines of at once.
const chunk = 8192

// Print writes the header and the rows 0..n-1 that Row keeps, each cell
// left-aligned in a column as wide as its widest cell, columns two spaces
// apart, no spaces after the last one. It prints nothing, not even the
// header, when no row is kept, and returns the number of rows printed. Its
// error is w's or ctx's; a partial table may have been written.
func Print(ctx context.Context, w io.Writer, n int, o Options) (int, error) {
	cols := len(o.Header)
	chunks := (n + chunk - 1) / chunk
	widths := make([]int, chunks*cols)
	counts := make([]int, chunks)
	// one row of cells per chunk, for both passes: a chunk is measured,
	// then made lines of, by one worker at a time
	cellRows := make([]Cell, chunks*cols)
	par.Do(chunks, max(o.Workers, 1), func(i int) {
		cells := cellRows[i*cols : (i+1)*cols]
		wi := widths[i*cols : (i+1)*cols]
		for r := i * chunk; r < min(n, (i+1)*chunk); r++ {
			if o.Row(r, cells) {
				for k := range cells {
					wi[k] = max(wi[k], cells[k].Len())
				}
				counts[i]++
			}
		}
	})
	t := layout{w: make([]int, cols)}
	rows := 0
	for i := range chunks {
		for k := range cols {
			t.w[k] = max(t.w[k], widths[i*cols+k])
		}
		rows += counts[i]
	}
	if rows == 0 {
		return 0, nil
	}
	for k, h := range o.Header {
		t.w[k] = max(t.w[k], len(h))
	}
	if _, err := w.Write(t.appendHeader(nil, o.Header)); err != nil {
		return rows, err
	}
	// line buffers go round: made once per worker, not once per chunk
	bufs := sync.Pool{New: func() any { return make([]byte, 0, chunk*128) }}
	p := par.NewOrdered(ctx, o.Workers, func(i int) []byte {
		b := bufs.Get().([]byte)[:0]
		cells := cellRows[i*cols : (i+1)*cols]
		for r := i * chunk; r < min(n, (i+1)*chunk); r++ {
			if o.Row(r, cells) {
				b = t.appendRow(b, cells)
			}
		}
		return b
	}, func(b []byte) error {
		_, err := w.Write(b)
		bufs.Put(b) //nolint:staticcheck // a slice header is small enough
		return err
	})
	defer p.Stop()
	for i := range chunks {
		if err := p.Submit(i); err != nil {
			return rows, err
		}
	}
	return rows, p.Finish()
}

// layout holds the column widths.
type layout struct{ w []int }

// pad appends spaces after a cell of width have in column i.
func (t *layout) pad(b []byte, i, have int) []byte {
	if i == len(t.w)-1 {
		return b
	}
	for range t.w[i] - have + 2 {
		b = append(b, ' ')
	}
	return b
}

func (t *layout) appendHeader(b []byte, h []string) []byte {
	for i, s := range h {
		b = append(b, s...)
		b = t.pad(b, i, len(s))
	}
	return append(b, '\n')
}

func (t *layout) appendRow(b []byte, cells []Cell) []byte {
	for i := range cells {
		b = cells[i].appendTo(b)
		b = t.pad(b, i, cells[i].Len())
	}
	return append(b, '\n')
}
