// Command etcdsafe reads, backs up and restores etcd snapshots of
// Kubernetes control planes offline.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT says otherwise. etcdsafe runs on masters next to etcd: with
// the default GC pacing alone, a command whose live heap is large (the
// index of a 1M-key snapshot is ~150 MiB) lets garbage grow to as much
// again before collecting (dump -A of 1M keys peaked at 280 MiB). With the
// limit, the GC runs more often instead, at a little CPU; a live heap
// larger than the limit still works (the limit is soft).
const defaultMemoryLimit = 224 << 20

func main() {
	if !memLimitFromEnv() {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signalContext()
	// ETCDSAFE_CPUPROFILE=FILE writes a CPU profile of the run (for
	// `go tool pprof`): how the figures of bench/report.md are explained.
	if p := cpuProfilePath(); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		} else {
			fmt.Fprintln(os.Stderr, "etcdsafe: cpu profile:", err)
		}
	}
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if code != 0 {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}

// signalContext ends on SIGINT and on SIGTERM alike (a systemd stop, a
// kubelet killing a CronJob pod): every command then stops at its next
// check, removes what it staged and exits 130.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
