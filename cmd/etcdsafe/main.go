// Command etcdsafe reads, backs up and restores etcd snapshots of
// Kubernetes control planes offline.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// ETCDSAFE_CPUPROFILE=FILE writes a CPU profile of the run (for
	// `go tool pprof`): how the figures of bench/report.md are explained.
	if p := os.Getenv("ETCDSAFE_CPUPROFILE"); p != "" {
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
