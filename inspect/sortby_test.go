package inspect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSortBy(t *testing.T) {
	for _, tc := range []struct {
		name, typ, expr string
		want            []string // names in order
		err             string
	}{
		{name: "name, kubectl's relaxed form", typ: "sa", expr: ".metadata.name", want: []string{"default", "default", "default", "default", "prometheus"}},
		{name: "braces", typ: "svc", expr: "{.spec.ports[0].port}", want: []string{"api", "api-public", "postgres"}},
		{name: "number, not text", typ: "deploy,sts", expr: "spec.replicas", want: []string{"postgres", "api"}},
		{name: "text", typ: "svc", expr: ".spec.clusterIP", want: []string{"api", "api-public", "postgres"}}, // 10.96.x before None
		{name: "missing first", typ: "sts,deploy", expr: ".spec.serviceName", want: []string{"api", "postgres"}},
		{name: "bad path", typ: "svc", expr: "{.a[", err: "--sort-by {.a[: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reported := newDemoSelector(t)
			ctx := context.Background()
			s, err := ParseSortBy(tc.expr)
			if tc.err != "" {
				var se *SelectionError
				if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want a SelectionError %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sels, err := r.SelectMany(ctx, SelectArgs{Args: []string{tc.typ}}, "", "")
			if err != nil {
				t.Fatal(err)
			}
			var kept []Entry
			for i := range sels {
				entries, err := r.Entries(ctx, &sels[i], 0, false)
				if err != nil {
					t.Fatal(err)
				}
				for j := range entries {
					if _, ok := r.Keep(&sels[i], &entries[j]); ok {
						kept = append(kept, entries[j])
					}
				}
			}
			sorted, err := r.Sort(ctx, s, kept, 3)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := range sorted {
				ki, _ := r.KeyInfo(&sorted[i])
				got = append(got, ki.Name)
			}
			if !slices.Equal(got, tc.want) || len(*reported) != 0 {
				t.Errorf("got %q (reported %q), want %q", got, *reported, tc.want)
			}
		})
	}
}

// TestMissing: the names asked for that the entries lack, each once.
func TestMissing(t *testing.T) {
	r, _ := newDemoSelector(t)
	ctx := context.Background()
	sels, err := r.SelectMany(ctx, SelectArgs{Args: []string{"svc,deploy", "api", "nosuch", "postgres", "nosuch"}}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"nosuch"}, {"nosuch", "postgres"}} {
		entries, err := r.Entries(ctx, &sels[i], 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Missing(&sels[i], entries); !slices.Equal(got, want) {
			t.Errorf("%s: missing %q, want %q", sels[i].Resource.Plural, got, want)
		}
	}
}
