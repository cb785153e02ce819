package source

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// integrity is the verdict on a source's bytes, worked out on a core of
// its own while the caller reads the db: the snapshot's SHA-256 trailer
// when it has one, and bbolt's page check with Check. Nothing written
// through [Source.Gate] comes before the verdict, and a bad verdict
// replaces whatever else the caller had to say ([Source.Settle]).
type integrity struct {
	done    chan struct{}
	cancel  context.CancelFunc // stops the work; [Source.Close] waits for done
	trailer snapshot.TrailerStatus
	checked bool  // the page check ran
	err     error // nil, or an integrity error naming the user's file
}

// startIntegrity hashes the db behind snap (the extracted copy, for an
// archive) and, when check is set, runs the page check after it. name is
// the file as the user named it, for messages.
func startIntegrity(ctx context.Context, snap *inspect.Snapshot, name string, check bool) *integrity {
	ctx, cancel := context.WithCancel(ctx)
	in := &integrity{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(in.done)
		ts, err := snapshot.VerifyTrailerContext(ctx, snap.DBPath)
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

// Verdict waits for the integrity verdict and returns it: nil, an error
// wrapping [snapshot.ErrTrailerMismatch] or (with [Options.Check]) an
// [*inspect.CheckError], or another error of the check naming the source.
// It returns ctx's error if ctx ends first. It may be called any number of
// times, from any goroutine.
func (s *Source) Verdict(ctx context.Context) error {
	return s.integ.wait(ctx)
}

// Settle is what a reader of the source returns instead of err: a bad
// verdict wins over err (a bit flip that broke a decoder is reported as
// the damage it is), and err is returned as is when ctx is done, without
// waiting for the verdict.
func (s *Source) Settle(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if verr := s.integ.wait(ctx); verr != nil {
		return verr
	}
	return err
}

// Trailer is the SHA-256 trailer's status. It is valid once
// [Source.Verdict] has returned the verdict (not ctx's error).
func (s *Source) Trailer() snapshot.TrailerStatus { return s.integ.trailer }

// Checked reports whether the page check ran (it runs with
// [Options.Check], after a trailer that did not mismatch). It is valid
// once [Source.Verdict] has returned the verdict.
func (s *Source) Checked() bool { return s.integ.checked }

// Gate returns w held back until the verdict: the first Write waits for
// it and, if the verdict is bad (or ctx ends first), fails with that error
// without writing, as does every later Write. A damaged source thus puts
// nothing on w. The returned writer is not safe for concurrent use beyond
// what w allows.
func (s *Source) Gate(ctx context.Context, w io.Writer) io.Writer {
	return &gateWriter{ctx: ctx, in: s.integ, w: w}
}

// gateWriter holds back the first write until the verdict is in.
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
