// Command etcd is etcd v3.5's server main, built from its Go module so that
// scripts/mk-old-snapshots.sh needs nothing but a Go toolchain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
