package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// integrity is the verdict on a source's bytes, worked out on a core of
// its own while the command reads the db: the snapshot's SHA-256 trailer
// when it has one, and bbolt's page check with --check. Nothing a read
// command prints comes before the verdict (see [gateWriter]), and a bad
// verdict replaces whatever else the command had to say.
type integrity struct {
	done    chan struct{}
	trailer snapshot.TrailerStatus
	checked bool  // the page check ran
	err     error // nil, or an integrity error naming the user's file
}

// startIntegrity hashes the db behind snap (the extracted copy, for an
// archive) and, when check is set, runs the page check after it. name is
// the file as the user named it, for messages.
func startIntegrity(ctx context.Context, snap *inspect.Snapshot, name string, check bool) *integrity {
	in := &integrity{done: make(chan struct{})}
	go func() {
		defer close(in.done)
		ts, err := snapshot.VerifyTrailer(snap.DBPath)
		in.trailer = ts
		switch {
		case ts == snapshot.TrailerMismatch:
			in.err = fmt.Errorf("%s is damaged: %w; nothing was printed from it", name, snapshot.ErrTrailerMismatch)
			return
		case err != nil:
			in.err = fmt.Errorf("check %s: %w", name, err)
			return
		}
		if check {
			in.checked = true
			if err := snap.Check(ctx); err != nil {
				in.err = fmt.Errorf("%s is damaged: %w; nothing was printed from it", name, err)
			}
		}
	}()
	return in
}

// wait returns the verdict, or the context's error if ctx ends first.
func (in *integrity) wait(ctx context.Context) error {
	select {
	case <-in.done:
		return in.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle is what a read command returns: a bad verdict wins over err (a
// bit flip that broke a decoder is reported as the damage it is, exit 3);
// an interrupted command does not wait for the verdict.
func (in *integrity) settle(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if verr := in.wait(ctx); verr != nil {
		return verr
	}
	return err
}

// gateWriter holds back the first write until the verdict is in: a
// damaged snapshot prints nothing on stdout.
type gateWriter struct {
	ctx  context.Context
	in   *integrity
	w    io.Writer
	once sync.Once
	err  error
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { g.err = g.in.wait(g.ctx) })
	if g.err != nil {
		return 0, g.err
	}
	return g.w.Write(p)
}
