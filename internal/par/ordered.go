package par

import (
	"context"
	"sync"
)

// Ordered runs work on up to n goroutines and gives each result to emit in
// submission order, on the caller's goroutine: whatever emit touches
// (counters, stdout, stderr, an output tree) needs no lock, and the output
// is the same as a sequential loop's. work must be safe for concurrent use
// and must not write anywhere shared; what it has to say goes into its
// result.
//
// At most a window of 4n items is in flight (submitted and not emitted
// yet), so memory is bounded by the window, not by the number of items.
// With one worker there are no goroutines: Submit calls work and emit
// itself.
//
// Use: p := NewOrdered(...); defer p.Stop(); p.Submit(...)...; p.Finish().
// An Ordered is used by one goroutine and is not reusable after Stop.
type Ordered[In, Out any] struct {
	work   func(In) Out
	emit   func(Out) error
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan *orderedJob[In, Out]
	queue  []*orderedJob[In, Out] // submitted, oldest first
	window int
	wg     sync.WaitGroup
}

type orderedJob[In, Out any] struct {
	in   In
	out  Out
	done chan struct{}
}

// NewOrdered starts n workers (none when n <= 1). ctx ending stops the
// pipeline: Submit and Finish then return its error.
func NewOrdered[In, Out any](ctx context.Context, n int, work func(In) Out, emit func(Out) error) *Ordered[In, Out] {
	p := &Ordered[In, Out]{work: work, emit: emit}
	if n <= 1 {
		return p
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.window = 4 * n
	p.jobs = make(chan *orderedJob[In, Out], p.window)
	for range n {
		p.wg.Go(func() {
			for j := range p.jobs {
				if p.ctx.Err() == nil {
					j.out = p.work(j.in)
				}
				close(j.done)
			}
		})
	}
	return p
}

// Submit queues in; it may first emit older results, and returns the
// first error of emit or the context's. After an error, only Stop is left
// to call.
func (p *Ordered[In, Out]) Submit(in In) error {
	if p.jobs == nil {
		return p.emit(p.work(in))
	}
	if len(p.queue) >= p.window {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	j := &orderedJob[In, Out]{in: in, done: make(chan struct{})}
	// The window bounds the queue and the queue holds every job not yet
	// taken by a worker, so this send never waits.
	p.jobs <- j
	p.queue = append(p.queue, j)
	return nil
}

func (p *Ordered[In, Out]) emitOldest() error {
	j := p.queue[0]
	select {
	case <-j.done:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if err := p.ctx.Err(); err != nil {
		return err // j may not have been worked on
	}
	p.queue[0] = nil
	p.queue = p.queue[1:]
	return p.emit(j.out)
}

// Finish emits every result still in flight, and returns the first error
// of emit or the context's.
func (p *Ordered[In, Out]) Finish() error {
	for len(p.queue) > 0 {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

// Stop ends the workers, dropping results not emitted; it must be called
// (deferred) once the pipeline is done with, finished or not. It waits
// for the items being worked on.
func (p *Ordered[In, Out]) Stop() {
	if p.jobs == nil {
		return
	}
	p.cancel()
	close(p.jobs)
	p.wg.Wait()
	p.queue = nil
}
