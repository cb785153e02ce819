package source

import (
	"errors"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
)

// ErrNotObject is returned for a value that is text or empty, not a
// Kubernetes object (a special key such as compact_rev_key, a lease or
// range record).
var ErrNotObject = errors.New("not a Kubernetes object")

// ErrSkipped is returned for an object [RenderOptions.Skip] left out.
var ErrSkipped = errors.New("skipped")

// RenderOptions shape the objects [Source.Render] returns.
type RenderOptions struct {
	// Present says how the object is presented (create-ready, raw, ...).
	Present decode.PresentOptions
	// Skip, if not nil, sees the object as stored and may leave it out
	// ([ErrSkipped]). It is called from the caller's goroutine.
	Skip func(*decode.Value) bool
}

// Render decodes and presents the newest value of e (the record at e.Rev).
// See [Source.RenderRecord].
func (s *Source) Render(e inspect.Entry, o RenderOptions) (*unstructured.Unstructured, []string, error) {
	rec, err := s.Snapshot.Get(e.Rev)
	if err != nil {
		return nil, nil, err
	}
	return s.RenderRecord(rec, o)
}

// RenderRecord decodes and presents one record. It returns the object and
// the notes on what presenting it changed or could not do (to be shown
// with the record's key), or [ErrNotObject], [ErrSkipped] or a decode
// error. It only reads the source: it is safe for concurrent use.
func (s *Source) RenderRecord(rec inspect.Record, o RenderOptions) (*unstructured.Unstructured, []string, error) {
	switch decode.SniffEncoding(rec.Value) {
	case decode.EncodingText, decode.EncodingEmpty:
		return nil, nil, ErrNotObject
	}
	v, err := s.Decoder.Decode(rec.Key, rec.Value)
	if err != nil {
		return nil, nil, err
	}
	if o.Skip != nil && o.Skip(v) {
		return nil, nil, ErrSkipped
	}
	obj, notes, err := decode.Present(v, rec.ModRevision, o.Present)
	if err != nil {
		return nil, nil, err
	}
	return obj, notes, nil
}
