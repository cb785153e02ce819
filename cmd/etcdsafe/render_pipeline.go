package main

import "runtime"

// testOnlyRenderWorkers, when not 0, is the number of workers of every
// render pipeline (1 = the sequential code path).
var testOnlyRenderWorkers int

// renderWorkers is how many objects get and dump render at once, and how
// many chunks of lines ls prints at once (see [par.Ordered]).
func renderWorkers() int {
	if testOnlyRenderWorkers > 0 {
		return testOnlyRenderWorkers
	}
	return runtime.GOMAXPROCS(0)
}
