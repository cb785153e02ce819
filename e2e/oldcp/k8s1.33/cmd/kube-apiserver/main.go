// Command kube-apiserver is kube-apiserver v1.33's main, built from the
// k8s.io/kubernetes module with its staging modules at their published versions.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
