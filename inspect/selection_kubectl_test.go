package inspect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/decode"
)

// TestSelectMany: several types, all, -l and --field-selector over the
// demo file, the keys kept per selection in order.
func TestSelectMany(t *testing.T) {
	for _, tc := range []struct {
		name           string
		a              SelectArgs
		labels, fields string
		keys           []string // kept (after MatchLabels), without /registry/, selections in order
		err            string
		usage          bool
	}{
		{name: "two types in the order named", a: SelectArgs{Args: []string{"svc,deploy"}, Namespace: "payments"},
			keys: []string{"services/specs/payments/api", "services/specs/payments/api-public", "services/specs/payments/postgres", "deployments/payments/api"}},
		{name: "a type twice once", a: SelectArgs{Args: []string{"deploy,deployments.apps"}}, keys: []string{"deployments/payments/api"}},
		{name: "names in each type", a: SelectArgs{Args: []string{"deploy,svc", "api"}},
			keys: []string{"deployments/payments/api", "services/specs/payments/api"}},
		{name: "all", a: SelectArgs{Args: []string{"all"}, Namespace: "monitoring"}, keys: []string{"daemonsets/monitoring/node-exporter"}},
		{name: "all counts kubectl's set", a: SelectArgs{Args: []string{"all"}}, keys: []string{
			"pods/payments/api-7d9f8b6c5-x2x7q", "services/specs/payments/api", "services/specs/payments/api-public", "services/specs/payments/postgres",
			"daemonsets/monitoring/node-exporter", "deployments/payments/api", "replicasets/payments/api-7d9f8b6c5", "statefulsets/payments/postgres",
			"jobs/payments/settle-29400000", "cronjobs/payments/settle"}},
		{name: "labels", a: SelectArgs{Args: []string{"all"}}, labels: "app=api",
			keys: []string{"pods/payments/api-7d9f8b6c5-x2x7q", "deployments/payments/api", "replicasets/payments/api-7d9f8b6c5"}},
		{name: "labels set-based", a: SelectArgs{Args: []string{"deploy,sts,ds"}}, labels: "app in (postgres,node-exporter)",
			keys: []string{"statefulsets/payments/postgres", "daemonsets/monitoring/node-exporter"}},
		{name: "labels leave out non-objects", a: SelectArgs{Prefix: "compact_rev_key"}, labels: "!app"},
		{name: "labels without a type", a: SelectArgs{Namespace: "payments", Prefix: "/registry/st"}, labels: "app=postgres", keys: []string{"statefulsets/payments/postgres"}},
		{name: "field name", a: SelectArgs{Args: []string{"svc"}}, fields: "metadata.name=postgres", keys: []string{"services/specs/payments/postgres"}},
		{name: "field namespace", a: SelectArgs{Args: []string{"sa"}}, fields: "metadata.namespace=monitoring",
			keys: []string{"serviceaccounts/monitoring/default", "serviceaccounts/monitoring/prometheus"}},
		{name: "field not equal", a: SelectArgs{Args: []string{"sa"}}, fields: "metadata.namespace!=payments,metadata.name!=default",
			keys: []string{"serviceaccounts/monitoring/prometheus"}},
		{name: "field on a cluster-scoped type", a: SelectArgs{Args: []string{"ns"}}, fields: "metadata.name=payments", keys: []string{"namespaces/payments"}},
		{name: "field without a type", a: SelectArgs{}, fields: "metadata.name=node-exporter", keys: []string{"daemonsets/monitoring/node-exporter"}},
		{name: "unsupported field", a: SelectArgs{Args: []string{"pods"}}, fields: "spec.nodeName=node-1", usage: true,
			err: `--field-selector: field "spec.nodeName" is not supported: only metadata.name and metadata.namespace are`},
		{name: "bad field selector", a: SelectArgs{Args: []string{"pods"}}, fields: "metadata.name", usage: true,
			err: `--field-selector metadata.name: invalid selector: 'metadata.name'; can't understand 'metadata.name'`},
		{name: "bad label selector", a: SelectArgs{Args: []string{"pods"}}, labels: "a==b==c", usage: true, err: "-l a==b==c: "},
		{name: "names and labels", a: SelectArgs{Args: []string{"pods", "x"}}, labels: "a=b", usage: true, err: "names and -l exclude each other"},
		{name: "did you mean", a: SelectArgs{Args: []string{"deploy,deploymnt"}}, usage: true,
			err: `the server doesn't have a resource type "deploymnt"; did you mean deployments?: unknown resource type`},
		{name: "did you mean a CRD of the file", a: SelectArgs{Args: []string{"certifcates"}}, usage: true,
			err: `the server doesn't have a resource type "certifcates"; did you mean certificates?: unknown resource type`},
		{name: "nothing close", a: SelectArgs{Args: []string{"zzzzzzzz"}}, usage: true,
			err: `the server doesn't have a resource type "zzzzzzzz": unknown resource type`},
		{name: "empty type", a: SelectArgs{Args: []string{"deploy,"}}, usage: true, err: `empty TYPE in "deploy,"`},
		{name: "all with -n leaves cluster-scoped out", a: SelectArgs{Args: []string{"deploy,ns"}, Namespace: "payments"}, keys: []string{"deployments/payments/api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reported := newDemoSelector(t)
			ctx := context.Background()
			sels, err := r.SelectMany(ctx, tc.a, tc.labels, tc.fields)
			if tc.err != "" {
				var se *SelectionError
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) || errors.As(err, &se) != tc.usage {
					t.Fatalf("error %v (usage %v), want %q (usage %v)", err, errors.As(err, &se), tc.err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := range sels {
				entries, err := r.Entries(ctx, &sels[i], 0, false)
				if err != nil {
					t.Fatal(err)
				}
				var kept []Entry
				for j := range entries {
					if _, ok := r.Keep(&sels[i], &entries[j]); ok {
						kept = append(kept, entries[j])
					}
				}
				if kept, err = r.MatchLabels(ctx, &sels[i], kept, 4); err != nil {
					t.Fatal(err)
				}
				for _, e := range kept {
					got = append(got, strings.TrimPrefix(e.Key, "/registry/"))
				}
			}
			if !slices.Equal(got, tc.keys) {
				t.Errorf("kept %q,\nwant %q", got, tc.keys)
			}
			if len(*reported) != 0 {
				t.Errorf("reported %q", *reported)
			}
		})
	}
}

// TestMatchLabelsUndecodable: a value that cannot be decoded is told, with
// its key, and left out; the others are matched.
func TestMatchLabelsUndecodable(t *testing.T) {
	r, reported := newDemoSelector(t)
	ctx := context.Background()
	sels, err := r.SelectMany(ctx, SelectArgs{Args: []string{"secrets"}, Namespace: "payments"}, "a!=b", "")
	if err != nil {
		t.Fatal(err)
	}
	r.o.Decoder = decode.NewDecoder(nil) // no decryption config: the encrypted secrets fail
	entries, err := r.Entries(ctx, &sels[0], 0, false)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := r.MatchLabels(ctx, &sels[0], entries, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 0 || len(*reported) != 3 || len(entries) != 3 || !strings.HasPrefix((*reported)[0], "/registry/secrets/payments/api-tls: value is encrypted") {
		t.Errorf("kept %d, reported %q of %d entries", len(kept), *reported, len(entries))
	}
}

func TestSuggest(t *testing.T) {
	words := []string{"deployments", "deployment", "deploy", "daemonsets", "pods", "payments", "monitoring"}
	for _, tc := range []struct {
		word string
		want []string
	}{
		{"deploymnt", []string{"deployment"}},
		{"pod", []string{"pods"}},
		{"paymnets", []string{"payments"}},
		{"monitor", []string{"monitoring"}},
		{"xyz", nil},
		{"", nil},
	} {
		if got := Suggest(tc.word, words); !slices.Equal(got, tc.want) {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestSuggestNamespace(t *testing.T) {
	r, _ := newDemoSelector(t)
	for ns, want := range map[string][]string{"paymnts": {"payments"}, "payments": nil, "zzzzzz": nil} {
		got, err := r.SuggestNamespace(context.Background(), ns, 0)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SuggestNamespace(%q) = %q, %v, want %q", ns, got, err, want)
		}
	}
}
