package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

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

type getOptions struct {
	listOptions
	render   renderOptions
	selector string
	output   string
	key      string
}

func newGetCmd() *cobra.Command {
	o := &getOptions{}
	c := &cobra.Command{
		Use:   "get SOURCE TYPE[/NAME] | get SOURCE TYPE NAME... | get SOURCE --key KEY",
		Short: "Print objects from a snapshot as create-ready YAML (or as the API serves them)",
		Long: `Decode objects (protobuf, JSON, CBOR; encrypted at rest with aescbc, aesgcm or secretbox given
--decryption-config) and print them.

By default the output is create-ready: 'kubectl create -f' accepts it on a fresh cluster
(server-set fields removed per kind, see docs/CLEANING.md). --raw prints the object as the
API server would serve it, resourceVersion being the record's revision. Objects stored at a
version the API no longer serves (CRDs in apiextensions.k8s.io/v1beta1, ...) are converted
to the served version; --storage-version shows them as stored. --revision R prints the
objects as they were at revision R, if the file still holds that revision.

Without -n, a NAME is looked up in every namespace. Several objects print as a YAML stream
(or a JSON List). --key prints any key, special keys such as compact_rev_key included.` + exitStatusHelp,
		Example: `  etcdsafe get snapshot.db deployment/api -n payments > api.yaml && kubectl create -f api.yaml
  etcdsafe get snapshot.db secrets -n payments --decryption-config /etc/kubernetes/encryption-config.yaml
  etcdsafe get snapshot.db cm -A -l app=api -o json --raw
  etcdsafe get snapshot.db deploy/api --revision 228
  etcdsafe get snapshot.db --key compact_rev_key`,
		Args: cobra.RangeArgs(1, 100),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[1:]); err != nil {
				return err
			}
			if o.output != "yaml" && o.output != "json" {
				return usagef("-o must be yaml or json")
			}
			if o.key == "" && o.prefix == "" && len(args) < 2 {
				return usagef("get needs a TYPE, --key KEY or --prefix PREFIX")
			}
			if o.key != "" && (len(args) > 1 || o.prefix != "") {
				return usagef("--key excludes TYPE and --prefix")
			}
			return runGet(cmd, o, args[0], args[1:], cmd.OutOrStdout())
		},
	}
	o.addFlags(c)
	o.render.addFlags(c, true)
	c.Flags().StringVarP(&o.selector, "selector", "l", "", "label selector (app=api,tier!=db)")
	c.Flags().StringVarP(&o.output, "output", "o", "yaml", "yaml or json")
	c.Flags().StringVar(&o.key, "key", "", "one raw etcd key")
	return c
}

func runGet(cmd *cobra.Command, o *getOptions, path string, args []string, out io.Writer) (err error) {
	ctx := cmd.Context()
	fails := &failures{w: cmd.ErrOrStderr()}
	var sel labels.Selector
	if o.selector != "" {
		if sel, err = labels.Parse(o.selector); err != nil {
			return usagef("-l: %v", err)
		}
	}
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.settle(ctx, err) }()
	out = s.out(ctx, out)
	res := s.selector(cmd, fails)
	var what inspect.Selection
	q := inspect.Query{Exact: []byte(o.key), Revision: o.revision}
	if o.key == "" {
		if what, err = o.selection(ctx, res, args); err != nil {
			return err
		}
		q = res.Query(&what, o.revision, false)
	}
	entries, err := res.Index(ctx, q)
	if err != nil {
		return err
	}

	po := o.render.present()
	if what.Resource != nil {
		po.AsGroup = what.Resource.Group // events.k8s.io views core Events in its schema
	}
	p := newPrinter(out, o.output, len(what.Names) == 1 || o.key != "")
	stderr := cmd.ErrOrStderr()
	found := 0
	// Workers decode, present, filter and encode; emit, in key order,
	// prints what they had to say and the objects, as a sequential loop
	// would.
	work := func(e inspect.Entry) *getResult {
		r := &getResult{e: e}
		obj, err := s.render(e, po, &r.notes, nil)
		if err != nil {
			r.err = err
			return r
		}
		if sel != nil && !sel.Matches(labels.Set(obj.GetLabels())) {
			r.unselected = true
			return r
		}
		r.obj = obj
		r.b, r.encErr = p.encode(obj)
		return r
	}
	emit := func(r *getResult) error {
		if r.notes.Len() > 0 {
			_, _ = stderr.Write(r.notes.Bytes())
		}
		switch {
		case errors.Is(r.err, errNotObject):
			return p.printKey(r.e, s)
		case r.err != nil:
			fails.add(r.e.Key, r.err)
			return nil
		case r.unselected:
			return nil
		}
		return p.write(r.obj, r.b, r.encErr)
	}
	pl := par.NewOrdered(ctx, renderWorkers(), work, emit)
	defer pl.Stop()
	for i, e := range entries {
		if i&0xff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if o.key == "" {
			if _, ok := res.Keep(&what, &entries[i]); !ok {
				continue
			}
		}
		found++
		if err := pl.Submit(e); err != nil {
			return err
		}
	}
	if err := pl.Finish(); err != nil {
		return err
	}
	if err := p.close(); err != nil {
		return err
	}
	if found == 0 {
		switch {
		case o.key != "":
			return fmt.Errorf("key %q not found (at revision %s)", o.key, revLabel(o.revision))
		case len(what.Names) > 0:
			return fmt.Errorf("%s %q not found%s (at revision %s)", what.Resource.Plural, what.Names, nsLabel(what.Namespace), revLabel(o.revision))
		default:
			fmt.Fprintln(cmd.ErrOrStderr(), "No matching objects found.")
		}
	}
	return fails.err()
}

func revLabel(rev int64) string {
	if rev == 0 {
		return "newest"
	}
	return fmt.Sprint(rev)
}

func nsLabel(ns string) string {
	if ns == "" {
		return " in any namespace"
	}
	return " in namespace " + ns
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

// printer writes objects as a YAML stream or JSON (one object, or a List).
type printer struct {
	w      io.Writer
	format string
	single bool
	n      int
	buf    []*unstructured.Unstructured // JSON single mode holds at most one
}

func newPrinter(w io.Writer, format string, single bool) *printer {
	return &printer{w: w, format: format, single: single}
}

// getResult is what the workers made of one entry.
type getResult struct {
	e          inspect.Entry
	obj        *unstructured.Unstructured
	b          []byte // obj encoded by printer.encode
	encErr     error
	err        error        // of render
	unselected bool         // -l does not match
	notes      bytes.Buffer // render's notes, for stderr
}

func (p *printer) print(obj *unstructured.Unstructured) error {
	b, err := p.encode(obj)
	return p.write(obj, b, err)
}

// encode returns obj as write prints it: a YAML document, or a JSON List
// item. It only reads the printer's format: it is safe for concurrent use.
func (p *printer) encode(obj *unstructured.Unstructured) ([]byte, error) {
	if p.format == "yaml" {
		return marshalYAML(obj.Object)
	}
	return json.MarshalIndent(obj.Object, "    ", "  ")
}

// write prints obj, b and encErr being what encode returned for it.
func (p *printer) write(obj *unstructured.Unstructured, b []byte, encErr error) error {
	defer func() { p.n++ }()
	if p.format == "yaml" {
		if encErr != nil {
			return encErr
		}
		if p.n > 0 {
			if _, err := io.WriteString(p.w, "---\n"); err != nil {
				return err
			}
		}
		_, err := p.w.Write(b)
		return err
	}
	if p.single && p.n == 0 {
		p.buf = append(p.buf, obj)
		return nil
	}
	if p.n == 1 && len(p.buf) == 1 {
		// a second object after all: switch to a List
		if err := p.listItem(p.buf[0], 0); err != nil {
			return err
		}
		p.buf = nil
	}
	return p.listItemBytes(b, encErr, p.n)
}

func (p *printer) listItem(obj *unstructured.Unstructured, i int) error {
	b, err := p.encode(obj)
	return p.listItemBytes(b, err, i)
}

func (p *printer) listItemBytes(b []byte, encErr error, i int) error {
	if encErr != nil {
		return encErr
	}
	sep := ",\n    "
	if i == 0 {
		sep = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    "
	}
	_, err := fmt.Fprintf(p.w, "%s%s", sep, b)
	return err
}

// printKey shows a key that holds no Kubernetes object in a readable form.
func (p *printer) printKey(e inspect.Entry, s *source) error {
	rec, err := s.snap.Get(e.Rev)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"key": e.Key, "modRevision": e.ModRevision, "createRevision": e.CreateRevision, "version": e.Version,
		"value": string(rec.Value),
	}}
	if e.Lease != 0 {
		obj.Object["lease"] = fmt.Sprintf("%x", e.Lease)
	}
	return p.print(obj)
}

func (p *printer) close() error {
	if p.format != "json" {
		return nil
	}
	switch {
	case len(p.buf) == 1:
		b, err := json.MarshalIndent(p.buf[0].Object, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	case p.n == 0 && !p.single:
		_, err := io.WriteString(p.w, "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": []\n}\n")
		return err
	case p.n > 0:
		_, err := io.WriteString(p.w, "\n  ]\n}\n")
		return err
	}
	return nil
}
