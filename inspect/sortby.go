package inspect

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/jsonpath"
)

// SortBy is kubectl's --sort-by: a JSONPath over each object ("{.metadata.name}",
// or without braces ".metadata.name" as kubectl accepts it), by
// k8s.io/client-go/util/jsonpath.
type SortBy struct {
	expr, path string
}

// ParseSortBy parses a --sort-by expression; a bad one is a
// [*SelectionError].
func ParseSortBy(expr string) (*SortBy, error) {
	rel := expr
	if !strings.HasPrefix(rel, "{") {
		if !strings.HasPrefix(rel, ".") {
			rel = "." + rel
		}
		rel = "{" + rel + "}"
	}
	jp := jsonpath.New("sort-by").AllowMissingKeys(true)
	if err := jp.Parse(rel); err != nil {
		return nil, selectionErrorf("--sort-by %s: %v", expr, err)
	}
	return &SortBy{expr: expr, path: rel}, nil
}

// Sort orders entries by the field of their objects, stably (equal and
// missing fields keep their key order, missing ones first, as kubectl's),
// decoding the objects on workers goroutines. Numbers sort as numbers,
// anything else by its text. Values that cannot be decoded are told to
// OnProblem and left out. It returns the sorted entries.
func (r *Selector) Sort(ctx context.Context, s *SortBy, entries []Entry, workers int) ([]Entry, error) {
	keys := make([]sortKey, len(entries))
	bad, err := r.EachObject(ctx, entries, workers, func(i int, obj *unstructured.Unstructured) {
		if obj != nil {
			keys[i] = s.key(obj)
		}
	})
	if err != nil {
		return nil, err
	}
	idx := make([]int, 0, len(entries))
	for i := range entries {
		if !bad[i] {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return keys[a].compare(keys[b]) })
	out := make([]Entry, len(idx))
	for j, i := range idx {
		out[j] = entries[i]
	}
	return out, nil
}

// sortKey is one object's value at the path: a number, a text, or none.
type sortKey struct {
	set   bool
	isNum bool
	num   float64
	text  string
}

func (s *SortBy) key(obj *unstructured.Unstructured) sortKey {
	// parsed per object: a JSONPath's parse tree changes while it runs, so
	// one cannot serve the workers at once (a short path parses in microseconds)
	jp := jsonpath.New("sort-by").AllowMissingKeys(true)
	if err := jp.Parse(s.path); err != nil {
		return sortKey{}
	}
	res, err := jp.FindResults(obj.Object)
	if err != nil || len(res) == 0 || len(res[0]) == 0 {
		return sortKey{}
	}
	v := res[0][0]
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return sortKey{}
		}
		v = v.Elem()
	}
	switch {
	case v.CanInt():
		return sortKey{set: true, isNum: true, num: float64(v.Int())}
	case v.CanUint():
		return sortKey{set: true, isNum: true, num: float64(v.Uint())}
	case v.CanFloat():
		return sortKey{set: true, isNum: true, num: v.Float()}
	}
	return sortKey{set: true, text: fmt.Sprint(v.Interface())}
}

func (k sortKey) compare(o sortKey) int {
	switch {
	case !k.set || !o.set:
		return cmp.Compare(b2i(k.set), b2i(o.set))
	case k.isNum && o.isNum:
		return cmp.Compare(k.num, o.num)
	case k.isNum != o.isNum:
		return cmp.Compare(b2i(!k.isNum), b2i(!o.isNum))
	}
	return strings.Compare(k.text, o.text)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
