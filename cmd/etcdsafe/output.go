package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
)

// printJSON writes v as indented JSON, the -o json form of every command.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
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
func (p *printer) printKey(e inspect.Entry, s *source.Source) error {
	rec, err := s.Snapshot.Get(e.Rev)
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

// progress prints a one-line counter on a terminal, and nothing elsewhere.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w)}
}

func (p *progress) update(i int) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%d/%d objects", i, p.total)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
