package main

import (
	"context"
	"runtime"
	"sync"
)

// testOnlyRenderWorkers, when not 0, is the number of workers of every
// [pipeline] (1 = the sequential code path).
var testOnlyRenderWorkers int

// renderWorkers is how many objects get and dump render at once.
func renderWorkers() int {
	if testOnlyRenderWorkers > 0 {
		return testOnlyRenderWorkers
	}
	return runtime.GOMAXPROCS(0)
}

// pipeline runs work on up to n goroutines and gives each result to emit
// in submission order, on the caller's goroutine: whatever emit touches
// (counters, stdout, stderr, the output tree) needs no lock, and the output
// is the same as a sequential loop's. work must be safe for concurrent use
// and must not write anywhere shared; what it has to say goes into its
// result.
//
// At most window items are in flight (submitted and not emitted yet), so
// memory is bounded by the window, not by the number of items. With one
// worker there are no goroutines: submit calls work and emit itself.
//
// Use: p := newPipeline(...); defer p.stop(); p.submit(...)...; p.finish().
type pipeline[In, Out any] struct {
	work   func(In) Out
	emit   func(Out) error
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan *pipeJob[In, Out]
	queue  []*pipeJob[In, Out] // submitted, oldest first
	window int
	wg     sync.WaitGroup
}

type pipeJob[In, Out any] struct {
	in   In
	out  Out
	done chan struct{}
}

func newPipeline[In, Out any](ctx context.Context, n int, work func(In) Out, emit func(Out) error) *pipeline[In, Out] {
	p := &pipeline[In, Out]{work: work, emit: emit}
	if n <= 1 {
		return p
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.window = 4 * n
	p.jobs = make(chan *pipeJob[In, Out], p.window)
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

// submit queues in; it may first emit older results, and returns the
// first error of emit or the context's.
func (p *pipeline[In, Out]) submit(in In) error {
	if p.jobs == nil {
		return p.emit(p.work(in))
	}
	if len(p.queue) >= p.window {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	j := &pipeJob[In, Out]{in: in, done: make(chan struct{})}
	// The window bounds the queue and the queue holds every job not yet
	// taken by a worker, so this send never waits.
	p.jobs <- j
	p.queue = append(p.queue, j)
	return nil
}

func (p *pipeline[In, Out]) emitOldest() error {
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

// finish emits every result still in flight.
func (p *pipeline[In, Out]) finish() error {
	for len(p.queue) > 0 {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the workers, dropping results not emitted; it must be called
// (deferred) once the pipeline is done with, finished or not.
func (p *pipeline[In, Out]) stop() {
	if p.jobs == nil {
		return
	}
	p.cancel()
	close(p.jobs)
	p.wg.Wait()
	p.queue = nil
}
