// Command s3server runs a local S3 server (versitygw, through
// internal/s3test) for `make demo`, the e2e script and the benchmarks. It
// creates the buckets asked for, prints shell `export` lines for the
// endpoint, credentials and region on stdout, and serves until SIGINT or
// SIGTERM, when it kills the server. Without -dir the data lives in a
// temporary directory removed on exit. From a script (build it rather than
// `go run` it, so that the signal reaches it):
//
//	go build -o bin/s3server ./internal/cmd/s3server
//	bin/s3server -bucket backups -lock-bucket vault >s3.env & pid=$!
//	until grep -q ETCDSAFE_S3_ENDPOINT s3.env; do kill -0 $pid || exit 1; sleep 0.1; done
//	. ./s3.env
//	...
//	kill $pid; wait $pid
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/etcdsafe/etcdsafe/internal/s3test"
)

type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	var buckets, lockBuckets names
	dir := flag.String("dir", "", "server state directory (default: a temporary one, removed on exit)")
	port := flag.Int("port", 0, "loopback port (0: a free one)")
	flag.Var(&buckets, "bucket", "create a bucket (repeatable)")
	flag.Var(&lockBuckets, "lock-bucket", "create a bucket with object lock, hence versioning (repeatable)")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "s3server-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "s3server:", err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	s, err := s3test.StartServer(s3test.Options{Dir: *dir, Port: *port})
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3server:", err)
		return 1
	}
	defer s.Kill()

	for _, b := range buckets {
		if err := s.MakeBucket(ctx, b, false); err != nil {
			fmt.Fprintln(os.Stderr, "s3server:", err)
			return 1
		}
	}
	for _, b := range lockBuckets {
		if err := s.MakeBucket(ctx, b, true); err != nil {
			fmt.Fprintln(os.Stderr, "s3server:", err)
			return 1
		}
	}
	// The values are hex, a loopback URL and a region: no quoting needed.
	for _, kv := range s.Env() {
		fmt.Println("export " + kv)
	}
	fmt.Fprintf(os.Stderr, "s3server: serving %s from %s (log %s); SIGINT or SIGTERM stops it\n", s.Endpoint, s.Dir, s.LogFile)

	select {
	case <-ctx.Done():
		return 0
	case <-s.Exited():
		fmt.Fprintf(os.Stderr, "s3server: versitygw exited; see %s\n", s.LogFile)
		return 1
	}
}
