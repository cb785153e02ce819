package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
	kversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/source"
)

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

// renderOptions are the flags that shape printed objects (get, dump, history).
type renderOptions struct {
	raw               bool
	storageVersion    bool
	showManagedFields bool
	keepStatus        bool
	keepOwnerRefs     bool
	keepClusterIP     bool
	keepNodePorts     bool
	keepNodeName      bool
	// serverVersion is --server-version; servedBy its parsed value.
	serverVersion string
	servedBy      *kversion.Version
}

func (o *renderOptions) addFlags(c *cobra.Command, withRaw bool) {
	if withRaw {
		c.Flags().BoolVar(&o.raw, "raw", false, "print objects as the API server serves them, not create-ready")
	}
	c.Flags().BoolVar(&o.storageVersion, "storage-version", false, "show objects at the version they are stored at, unconverted")
	c.Flags().BoolVar(&o.showManagedFields, "show-managed-fields", false, "keep metadata.managedFields (with --raw)")
	c.Flags().BoolVar(&o.keepStatus, "keep-status", false, "create-ready output keeps .status")
	c.Flags().BoolVar(&o.keepOwnerRefs, "keep-owner-references", false, "create-ready output keeps metadata.ownerReferences")
	c.Flags().BoolVar(&o.keepClusterIP, "keep-cluster-ip", false, "create-ready output keeps Service clusterIP(s)")
	c.Flags().BoolVar(&o.keepNodePorts, "keep-node-ports", false, "create-ready output keeps every Service nodePort, not only requested ones")
	c.Flags().BoolVar(&o.keepNodeName, "keep-node-name", false, "create-ready output keeps Pod spec.nodeName")
}

// addServerVersionFlag adds --server-version (get, dump and history: the
// commands that print objects as served).
func (o *renderOptions) addServerVersionFlag(c *cobra.Command) {
	c.Flags().StringVar(&o.serverVersion, "server-version", "", "print objects as this kube-apiserver version serves them (1.30, v1.30.14; with --raw); default: the version the source names (see status), else "+decode.BuildKubernetes)
}

// validateServerVersion parses --server-version, which only raw output
// uses; it is a usage error otherwise.
func (o *renderOptions) validateServerVersion(raw bool) error {
	if o.serverVersion == "" {
		return nil
	}
	if !raw {
		return usagef("--server-version changes what --raw prints; add --raw")
	}
	v, err := source.ParseServerVersion(o.serverVersion)
	if err != nil {
		return usagef("--server-version: %v", err)
	}
	o.servedBy = v
	return nil
}

// resolveServedBy sets the kube-apiserver version raw output reproduces:
// --server-version, else the one the source names at revision rev (0: the
// newest), else none (this build's).
func (o *renderOptions) resolveServedBy(ctx context.Context, s *source.Source, rev int64) error {
	if o.servedBy != nil {
		return nil
	}
	sv, err := s.ServerVersion(ctx, rev)
	o.servedBy = sv.Version
	return err
}

// options are the flags as source.RenderOptions; skip, if not nil, leaves
// objects out (see [source.ErrSkipped]).
func (o *renderOptions) options(skip func(*decode.Value) bool) source.RenderOptions {
	return source.RenderOptions{Skip: skip, Present: decode.PresentOptions{
		Raw: o.raw, StorageVersion: o.storageVersion, ShowManagedFields: o.showManagedFields, ServedBy: o.servedBy,
		Clean: decode.CleanOptions{KeepStatus: o.keepStatus, KeepOwnerReferences: o.keepOwnerRefs, KeepClusterIP: o.keepClusterIP,
			KeepNodePorts: o.keepNodePorts, KeepNodeName: o.keepNodeName},
	}}
}

// printNotes prints what presenting key's object changed or could not do.
func printNotes(w io.Writer, key string, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(w, "etcdsafe: note: %s: %s\n", key, n)
	}
}
