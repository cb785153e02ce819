package main

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallel runs fn(0), ..., fn(n-1) on every core.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// inOrder runs produce(0), ..., produce(n-1) on every core and hands the
// results to consume in order, holding at most a few per core. It stops
// at the first error of consume, and returns it.
func inOrder(n int, produce func(i int) []byte, consume func([]byte) error) error {
	par := runtime.GOMAXPROCS(0)
	if par < 2 || n < 2 {
		for i := range n {
			if err := consume(produce(i)); err != nil {
				return err
			}
		}
		return nil
	}
	window := 2 * par
	results := make([]chan []byte, n)
	for i := range results {
		results[i] = make(chan []byte, 1)
	}
	sem := make(chan struct{}, window)
	done := make(chan struct{})
	defer close(done)
	var next atomic.Int64
	for range par {
		go func() {
			for {
				select {
				case sem <- struct{}{}:
				case <-done:
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				results[i] <- produce(i)
			}
		}()
	}
	for i := range n {
		b := <-results[i]
		<-sem
		if err := consume(b); err != nil {
			return err
		}
	}
	return nil
}
