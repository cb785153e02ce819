// Package par runs loops on every core.
package par

import (
	"sync"
	"sync/atomic"
)

// Do runs fn(0), ..., fn(n-1) on up to workers goroutines, each taking the
// next index when done with one, and returns when all are done.
func Do(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}
