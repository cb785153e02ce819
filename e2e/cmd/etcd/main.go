// Command etcd is etcd v3.7's server main, built from its Go module so that
// `make e2e` needs nothing but a Go toolchain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
