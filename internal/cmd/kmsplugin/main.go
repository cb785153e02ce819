// Command kmsplugin serves the test KMS v2 plugin of internal/kmstest (a
// real gRPC server from k8s.io/kms's service package) on a unix socket, for
// a real kube-apiserver in the e2e suite and for trying --kms-socket by
// hand. It prints "listening SOCKET" once serving and "decrypt N" after
// each Decrypt call, on stdout, and serves until SIGINT or SIGTERM:
//
//	go build -o bin/kmsplugin ./internal/cmd/kmsplugin
//	bin/kmsplugin -socket /run/kms.sock -secret s3cret >kms.log & pid=$!
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/etcdsafe/etcdsafe/internal/kmstest"
)

func main() {
	os.Exit(run())
}

func run() int {
	socket := flag.String("socket", "", "unix socket to serve (must not exist)")
	secret := flag.String("secret", "", "seed of the plugin's wrapping key (plugins with other secrets refuse its data keys)")
	keyID := flag.String("key-id", "", `key ID (default "kek-1")`)
	flag.Parse()
	if *socket == "" || flag.NArg() != 0 {
		flag.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	p, err := kmstest.Start(*socket, kmstest.Options{KeyID: *keyID, Secret: *secret, OnDecrypt: func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("decrypt %d\n", n)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsplugin:", err)
		return 1
	}
	defer p.Close()
	fmt.Printf("listening %s\n", p.Socket)
	<-ctx.Done()
	return 0
}
