// Package ctxio makes long reads cancellable: a [Reader] ends with the
// context's error at the next Read once the context is done. It is the one
// such wrapper the archive reader, restore and the read commands share.
package ctxio

import (
	"context"
	"io"
)

// Reader reads from R until Ctx is done, then returns Ctx.Err(). A Read
// already in progress is not interrupted: cancellation takes effect at the
// next buffer, which for a file or pipe is a fraction of a second.
type Reader struct {
	Ctx context.Context
	R   io.Reader
}

// NewReader returns a [Reader] of r that stops once ctx is done.
func NewReader(ctx context.Context, r io.Reader) *Reader { return &Reader{Ctx: ctx, R: r} }

func (c *Reader) Read(p []byte) (int, error) {
	if err := c.Ctx.Err(); err != nil {
		return 0, err
	}
	return c.R.Read(p)
}
