package duhtml

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/inspect"
)

const realSnapshot = "../../testdata/real-k8s1.37-etcd3.7/snapshot.db"

// d3HierarchySHA256 pins the vendored library: d3-hierarchy 3.1.3's
// dist/d3-hierarchy.min.js as its npm package ships it.
const d3HierarchySHA256 = "971f374ce9fdbec711eb2358003e2bb755bff22ec6852dc5ebd59f987270db64"

func realUsage(t *testing.T, largest int) *inspect.Usage {
	t.Helper()
	s, err := inspect.Open(realSnapshot, inspect.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.Usage(context.Background(), inspect.UsageOptions{Largest: largest})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func leafBytes(n *Node) (sum int64) {
	for _, l := range n.Leaves() {
		sum += l.Bytes
	}
	return sum
}

func TestVendoredLibrary(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte(d3Hierarchy))
	if got := hex.EncodeToString(sum[:]); got != d3HierarchySHA256 {
		t.Errorf("third_party/d3-hierarchy/d3-hierarchy.min.js: sha256 %s, want %s (d3-hierarchy 3.1.3)", got, d3HierarchySHA256)
	}
	if !strings.Contains(d3License, "Copyright 2010-2026 Mike Bostock") || strings.Contains(strings.ToLower(d3Hierarchy), "</script") {
		t.Error("license missing, or the library would end its script element")
	}
}

// TestTree: every key its own rectangle when Largest holds them all; with
// fewer, the rest of each group is one rectangle; the rectangles always
// add up to the file's record bytes.
func TestTree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		largest     int
		wantObjects int
	}{
		{"every key", 1000, 212},
		{"ten keys", 10, 10},
		{"one key", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := realUsage(t, tc.largest)
			tree := Tree(u)
			objects, rest := 0, int64(0)
			for _, l := range tree.Leaves() {
				switch {
				case l.Key != "" && l.Rest == 0:
					objects++
				case l.Key == "" && l.Rest > 0:
					rest += l.Rest
				default:
					t.Errorf("leaf is neither an object nor a rest: %+v", l)
				}
			}
			if objects != tc.wantObjects || int64(objects)+rest != u.Total.Keys {
				t.Errorf("%d object leaves + %d keys in rests, want %d + the rest of %d", objects, rest, tc.wantObjects, u.Total.Keys)
			}
			if got := leafBytes(tree); got != u.Total.Bytes {
				t.Errorf("leaves sum to %d bytes, the file's records to %d", got, u.Total.Bytes)
			}
			if len(tree.Children) != len(u.Resources) {
				t.Errorf("%d resources in the tree, %d in the report", len(tree.Children), len(u.Resources))
			}
		})
	}
}

// TestTreeMergesGroups: past MaxNamespaces in a resource, or MaxGroups in
// all, the smallest namespaces of a resource become one rectangle, and the
// rectangles still add up to every byte.
func TestTreeMergesGroups(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		resources, namespaces int
		wantKept              int
	}{
		{"one resource", 1, MaxNamespaces + 10, MaxNamespaces},
		{"many resources", 60, MaxNamespaces, MaxGroups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := &inspect.Usage{}
			n := tc.resources * tc.namespaces
			for i := range n { // biggest first, resources in turn
				c := inspect.Counts{Keys: 2, LiveKeys: 2, Revisions: 2, Bytes: int64(2 * (n - i)), LiveBytes: int64(2 * (n - i))}
				u.ResourceNamespaces = append(u.ResourceNamespaces, inspect.Group{Resource: fmt.Sprintf("r%02d", i%tc.resources),
					Namespace: fmt.Sprintf("ns-%05d", i/tc.resources), Counts: c})
				u.Total.Bytes += c.Bytes
				u.Total.Keys += c.Keys
			}
			u.Largest = []inspect.KeyUsage{
				{Key: "/registry/r00/ns-00000/a", Resource: "r00", Namespace: "ns-00000", Name: "a", Bytes: int64(n), Revisions: 1},
				{Key: "/registry/r00/ns-00029/a", Resource: "r00", Namespace: fmt.Sprintf("ns-%05d", tc.namespaces-1), Name: "a", Bytes: 1, Revisions: 1}, // merged away
			}
			tree := Tree(u)
			if len(tree.Children) != tc.resources {
				t.Fatalf("%d resources, want %d", len(tree.Children), tc.resources)
			}
			kept, merged := 0, int64(0)
			for _, r := range tree.Children {
				for _, g := range r.Children {
					if strings.HasSuffix(g.Name, " other namespaces)") {
						var m int64
						if _, err := fmt.Sscanf(g.Name, "(%d other namespaces)", &m); err != nil || len(g.Children) != 1 || g.Children[0].Rest != 2*m {
							t.Errorf("merged group %q: %+v", g.Name, g.Children)
						}
						merged += m
						continue
					}
					kept++
				}
			}
			if kept != tc.wantKept || kept+int(merged) != n {
				t.Errorf("%d groups kept, %d merged, want %d kept of %d", kept, merged, tc.wantKept, n)
			}
			if got := leafBytes(tree); got != u.Total.Bytes {
				t.Errorf("leaves sum to %d, total %d", got, u.Total.Bytes)
			}
			first := tree.Children[0].Children[0]
			if len(first.Children) != 2 || first.Children[0].Key != "/registry/r00/ns-00000/a" || first.Children[1].Rest != 1 {
				t.Errorf("first group: %+v", first.Children)
			}
		})
	}
}

// loads matches what would make a browser fetch something.
var loads = regexp.MustCompile(`(?i)(\b(src|href|action|srcset|poster)\s*=|url\s*\(|@import|<link|<iframe|<img|<object|<embed|fetch\(|XMLHttpRequest|import\s*\()`)

// TestWrite: the page holds the library, the tree and the tables, loads
// nothing, and a hostile key cannot end its script.
func TestWrite(t *testing.T) {
	t.Parallel()
	u := realUsage(t, 0)
	evil := `/registry/configmaps/x/</script><script>alert(1)</script>`
	u.Largest = append(u.Largest, inspect.KeyUsage{Key: evil, Resource: "configmaps", Namespace: "x", Name: "</script><b>bold", Bytes: 1, Revisions: 1})
	u.ResourceNamespaces = append(u.ResourceNamespaces, inspect.Group{Resource: "configmaps", Namespace: "x", Counts: inspect.Counts{Keys: 1, Bytes: 1}})
	u.Churning = append(u.Churning, inspect.KeyUsage{Key: evil, Revisions: 2})
	var b bytes.Buffer
	if err := Write(&b, u, Options{Source: "snap<1>.db", Top: 5}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if m := loads.FindString(page); m != "" {
		i := strings.Index(page, m)
		t.Errorf("the page would load something: %q in %q", m, page[max(0, i-80):min(len(page), i+80)])
	}
	for _, want := range []string{d3Hierarchy, "d3-hierarchy 3.1.3", "Copyright 2010-2026 Mike Bostock", "snap&lt;1&gt;.db",
		"/registry/deployments/payments/api", `id="resources"`, `id="churning"`, "default-src 'none'"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %.80q", want)
		}
	}
	if strings.Count(strings.ToLower(page), "</script") != 2 || strings.Contains(page, "<b>") {
		t.Errorf("a key ended a script or made an element: %d </script>", strings.Count(strings.ToLower(page), "</script"))
	}
	if rows := strings.Count(page[strings.Index(page, `id="largest"`):], "<td class=\"key\">"); rows != 5+min(5, len(u.Churning)) {
		t.Errorf("%d key rows, want --top 5 in each of two tables", rows)
	}
}
