package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/decode"
)

const demoDB = "../testdata/generated/demo.db"

func TestParseTypeArgs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		typ   string
		names []string
		err   string // a *SelectionError with this text
	}{
		{"nothing", nil, "", nil, ""},
		{"type", []string{"deployments"}, "deployments", nil, ""},
		{"type/name", []string{"deploy/api"}, "deploy", []string{"api"}, ""},
		{"type names", []string{"cm", "a", "b"}, "cm", []string{"a", "b"}, ""},
		{"name with slash kept", []string{"cm/a/b"}, "cm", []string{"a/b"}, ""},
		{"both forms", []string{"deploy/api", "web"}, "", nil, "use either TYPE/NAME or TYPE NAME..., not both"},
		{"empty name", []string{"deploy/"}, "", nil, `empty name in "deploy/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, names, err := ParseTypeArgs(tc.args)
			var se *SelectionError
			if tc.err != "" {
				if !errors.As(err, &se) || err.Error() != tc.err {
					t.Fatalf("error %v, want SelectionError %q", err, tc.err)
				}
				return
			}
			if err != nil || typ != tc.typ || !slices.Equal(names, tc.names) {
				t.Errorf("got %q %q %v, want %q %q", typ, names, err, tc.typ, tc.names)
			}
		})
	}
}

// newDemoSelector opens the demo file and a Selector over it that records
// what it reports.
func newDemoSelector(t *testing.T) (*Selector, *[]string) {
	t.Helper()
	s, err := Open(demoDB, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var reported []string
	r := NewSelector(s, SelectorOptions{Table: decode.BuiltinResources(), Decoder: decode.NewDecoder(nil), Prefix: "/registry",
		OnProblem:   func(key string, err error) { reported = append(reported, key+": "+err.Error()) },
		OnCompacted: func(rev, c int64) { reported = append(reported, fmt.Sprintf("compacted %d < %d", rev, c)) },
	})
	return r, &reported
}

// keys runs sel over the demo file and returns the keys Keep keeps.
func keys(t *testing.T, r *Selector, sel *Selection, rev int64, deleted bool) []string {
	t.Helper()
	entries, err := r.Entries(context.Background(), sel, rev, deleted)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range entries {
		if _, ok := r.Keep(sel, &entries[i]); ok {
			out = append(out, strings.TrimPrefix(entries[i].Key, "/registry/"))
		}
	}
	return out
}

// TestSelect: command lines against the demo file, custom resources
// learned from its CRDs, exact names, namespaces, raw prefixes, deleted
// keys, and the mistakes that are the user's.
func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       SelectArgs
		deleted bool
		keys    []string // kept, without /registry/
		count   int      // when keys is nil: how many kept
		err     string
		usage   bool // err is a *SelectionError
	}{
		{name: "type", a: SelectArgs{Args: []string{"deploy"}}, keys: []string{"deployments/payments/api"}},
		{name: "exact name, not prefix", a: SelectArgs{Args: []string{"svc/api"}, Namespace: "payments"}, keys: []string{"services/specs/payments/api"}},
		{name: "exact name any namespace", a: SelectArgs{Args: []string{"svc", "api", "postgres"}}, keys: []string{"services/specs/payments/api", "services/specs/payments/postgres"}},
		{name: "namespace", a: SelectArgs{Args: []string{"serviceaccounts"}, Namespace: "monitoring"}, keys: []string{"serviceaccounts/monitoring/default", "serviceaccounts/monitoring/prometheus"}},
		{name: "cluster-scoped by name", a: SelectArgs{Args: []string{"ns/payments"}}, keys: []string{"namespaces/payments"}},
		{name: "custom resource from the file's CRD", a: SelectArgs{Args: []string{"cert"}}, keys: []string{"cert-manager.io/certificates/payments/admin-cert", "cert-manager.io/certificates/payments/api-cert"}},
		{name: "custom cluster-scoped", a: SelectArgs{Args: []string{"clusterissuers.cert-manager.io"}}, keys: []string{"cert-manager.io/clusterissuers/letsencrypt"}},
		{name: "no type: every key", a: SelectArgs{}, count: 47},
		{name: "no type, namespace: its namespaced objects, custom ones too", a: SelectArgs{Namespace: "monitoring"},
			keys: []string{"configmaps/monitoring/prometheus-config", "daemonsets/monitoring/node-exporter", "secrets/monitoring/prometheus-token", "serviceaccounts/monitoring/default", "serviceaccounts/monitoring/prometheus"}},
		{name: "raw prefix", a: SelectArgs{Prefix: "/registry/ranges/"}, keys: []string{"ranges/serviceips", "ranges/servicenodeports"}},
		{name: "raw prefix and namespace", a: SelectArgs{Prefix: "/registry/cert-manager.io/", Namespace: "payments"}, keys: []string{"cert-manager.io/certificates/payments/admin-cert", "cert-manager.io/certificates/payments/api-cert"}},
		{name: "deleted", a: SelectArgs{Args: []string{"cm"}}, deleted: true, keys: []string{"configmaps/payments/tmp-debug"}},
		{name: "deleted, no type", a: SelectArgs{Namespace: "payments"}, deleted: true, keys: []string{"configmaps/payments/tmp-debug"}},
		{name: "not found", a: SelectArgs{Args: []string{"deploy/nosuch"}, Namespace: "payments"}, keys: nil, count: 0},
		{name: "unknown type", a: SelectArgs{Args: []string{"nosuchtype"}}, err: `resolve resource type "nosuchtype": unknown resource type`, usage: true},
		{name: "cluster-scoped with -n", a: SelectArgs{Args: []string{"ns"}, Namespace: "payments"}, err: "namespaces are cluster-scoped: drop -n", usage: true},
		{name: "both forms", a: SelectArgs{Args: []string{"ns/a", "b"}}, err: "use either TYPE/NAME or TYPE NAME..., not both", usage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reported := newDemoSelector(t)
			sel, err := r.Select(context.Background(), tc.a)
			if tc.err != "" {
				var se *SelectionError
				if err == nil || err.Error() != tc.err || errors.As(err, &se) != tc.usage {
					t.Fatalf("error %v (usage %v), want %q (usage %v)", err, errors.As(err, &se), tc.err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := keys(t, r, &sel, 0, tc.deleted)
			if tc.keys != nil && !slices.Equal(got, tc.keys) || tc.keys == nil && len(got) != tc.count {
				t.Errorf("kept %q, want %q (%d)", got, tc.keys, tc.count)
			}
			if len(*reported) != 0 {
				t.Errorf("reported %q", *reported)
			}
		})
	}
}

// TestSelectWholeLearnsCRDs: a walk over every key learns the CRDs from
// its own entries, so that custom resources' keys are named after them.
func TestSelectWholeLearnsCRDs(t *testing.T) {
	r, _ := newDemoSelector(t)
	sel, err := r.Select(context.Background(), SelectArgs{})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := r.Entries(context.Background(), &sel, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range entries {
		if entries[i].Key == "/registry/cert-manager.io/certificates/payments/api-cert" {
			ki, ok := r.Keep(&sel, &entries[i])
			found = ok && ki.Resource.Kind == "Certificate" && ki.Name == "api-cert"
		}
	}
	if !found {
		t.Error("the Certificate's key is not named after its CRD")
	}
}

// TestSelectCompacted: a revision older than the last compaction (5 in
// the demo file) is told, once per query, before the walk.
func TestSelectCompacted(t *testing.T) {
	for _, tc := range []struct {
		rev  int64
		want []string
	}{{0, nil}, {4, []string{"compacted 4 < 5"}}, {5, nil}, {30, nil}} {
		r, reported := newDemoSelector(t)
		sel, err := r.Select(context.Background(), SelectArgs{Args: []string{"ns"}, Revision: tc.rev})
		if err != nil {
			t.Fatal(err)
		}
		keys(t, r, &sel, tc.rev, false)
		if !slices.Equal(*reported, tc.want) {
			t.Errorf("revision %d: reported %q, want %q", tc.rev, *reported, tc.want)
		}
	}
}

// TestFindKeys: live and deleted keys of one name, in every namespace.
func TestFindKeys(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ns   string
		want []string
	}{
		{[]string{"cm/tmp-debug"}, "", []string{"/registry/configmaps/payments/tmp-debug"}},
		{[]string{"sa/default"}, "", []string{"/registry/serviceaccounts/default/default", "/registry/serviceaccounts/kube-system/default", "/registry/serviceaccounts/monitoring/default", "/registry/serviceaccounts/payments/default"}},
		{[]string{"sa/default"}, "monitoring", []string{"/registry/serviceaccounts/monitoring/default"}},
		{[]string{"deploy/nosuch"}, "", nil},
	} {
		r, _ := newDemoSelector(t)
		sel, err := r.Select(context.Background(), SelectArgs{Args: tc.args, Namespace: tc.ns})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.FindKeys(context.Background(), &sel)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%v -n %q: %q %v, want %q", tc.args, tc.ns, got, err, tc.want)
		}
	}
}

// TestSelectCRDNotLearned: a CRD the table refuses is reported with its
// key, and the rest goes on.
func TestSelectCRDNotLearned(t *testing.T) {
	r, reported := newDemoSelector(t)
	r.learnCRD(Entry{Key: "/registry/apiextensions.k8s.io/customresourcedefinitions/x", Rev: decode.Revision{Main: 1 << 40}})
	if len(*reported) != 1 || !strings.HasPrefix((*reported)[0], "/registry/apiextensions.k8s.io/customresourcedefinitions/x: CRD not learned: ") {
		t.Errorf("reported %q", *reported)
	}
	if _, err := r.Resolve(context.Background(), "cert", 0); err != nil {
		t.Errorf("after a bad CRD: %v", err)
	}
}
