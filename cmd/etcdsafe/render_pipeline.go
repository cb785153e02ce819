package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
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

func (o *renderOptions) present() decode.PresentOptions {
	return decode.PresentOptions{
		Raw: o.raw, StorageVersion: o.storageVersion, ShowManagedFields: o.showManagedFields,
		Clean: decode.CleanOptions{KeepStatus: o.keepStatus, KeepOwnerReferences: o.keepOwnerRefs, KeepClusterIP: o.keepClusterIP,
			KeepNodePorts: o.keepNodePorts, KeepNodeName: o.keepNodeName},
	}
}

var errNotObject = errors.New("not a Kubernetes object")

// render decodes and presents one entry's newest value.
func (s *source) render(e inspect.Entry, po decode.PresentOptions, stderr io.Writer, skip func(*decode.Value) bool) (*unstructured.Unstructured, error) {
	rec, err := s.snap.Get(e.Rev)
	if err != nil {
		return nil, err
	}
	return s.renderRecord(rec, po, stderr, skip)
}

// errSkipped: the object was decoded and the caller's skip func said no.
var errSkipped = errors.New("skipped")

// renderRecord decodes and presents one record; skip, if not nil, sees
// the object as stored and may leave it out (errSkipped).
func (s *source) renderRecord(rec inspect.Record, po decode.PresentOptions, stderr io.Writer, skip func(*decode.Value) bool) (*unstructured.Unstructured, error) {
	switch decode.SniffEncoding(rec.Value) {
	case decode.EncodingText, decode.EncodingEmpty:
		return nil, errNotObject
	}
	v, err := s.dec.Decode(rec.Key, rec.Value)
	if err != nil {
		return nil, err
	}
	if skip != nil && skip(v) {
		return nil, errSkipped
	}
	obj, notes, err := decode.Present(v, rec.ModRevision, po)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "etcdsafe: note: %s: %s\n", rec.Key, n)
	}
	return obj, nil
}
