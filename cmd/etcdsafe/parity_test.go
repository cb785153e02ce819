package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const realDir = "../../testdata/real-k8s1.37-etcd3.7"

// notInEtcd lists API resources of the real cluster that kube-apiserver
// computes instead of storing, with the reason: they cannot be in a snapshot.
var notInEtcd = map[string]string{
	"componentstatuses": "computed by kube-apiserver from health probes on every request, never stored",
}

// runCLI runs the CLI in-process and returns stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// TestParityWithRealAPIServer: for every object a real kube-apiserver
// served (api/*.json, captured with kubectl get -A -o json), `get --raw` on
// the snapshot it wrote returns the same object, Secrets decrypted, CRDs
// converted from their v1beta1 storage version. managedFields aside, which
// kubectl hides.
func TestParityWithRealAPIServer(t *testing.T) {
	t.Parallel()
	equal, total := compareWithAPI(t, realDir)
	t.Logf("parity %d/%d", equal, total)
	fmt.Printf("parity %d/%d\n", equal, total)
}

// compareWithAPI runs `get <resource> -A --raw -o json` on dir/snapshot.db
// for every dir/api/<resource>.json a real API server served and compares
// object by object, managedFields aside unless the capture kept them. Every
// difference fails the test, a null field against an absent one too.
func compareWithAPI(t *testing.T, dir string) (equal, total int) {
	t.Helper()
	snap := filepath.Join(dir, "snapshot.db")
	enc := filepath.Join(dir, "encryption-config.yaml")
	files, err := filepath.Glob(filepath.Join(dir, "api", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no api files: %v", err)
	}
	for _, f := range files {
		resource := strings.TrimSuffix(filepath.Base(f), ".json")
		var want struct{ Items []map[string]any }
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if reason, ok := notInEtcd[resource]; ok {
			t.Logf("%s: %d objects not compared: %s", resource, len(want.Items), reason)
			continue
		}
		// a capture with managedFields is compared with them
		args := []string{"get", snap, resource, "-A", "--raw", "-o", "json", "--decryption-config", enc}
		managed := hasManagedFields(want.Items)
		if managed {
			args = append(args, "--show-managed-fields")
		}
		stdout, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", resource, code, stderr)
			continue
		}
		var got struct{ Items []map[string]any }
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%s: output is not a JSON List: %v\n%.500s", resource, err, stdout)
		}
		byName := map[string]map[string]any{}
		for _, it := range got.Items {
			byName[objID(it)] = it
		}
		if len(got.Items) != len(want.Items) {
			t.Errorf("%s: %d objects, the API served %d", resource, len(got.Items), len(want.Items))
		}
		for _, w := range want.Items {
			total++
			g, ok := byName[objID(w)]
			if !ok {
				t.Errorf("%s %s: missing", resource, objID(w))
				continue
			}
			if !managed {
				dropManagedFields(w)
				dropManagedFields(g)
			}
			if diffs := jsonDiff("", w, g); len(diffs) > 0 {
				t.Errorf("%s %s differs from the API:\n  %s", resource, objID(w), strings.Join(diffs, "\n  "))
				continue
			}
			equal++
		}
	}
	return equal, total
}

func objID(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return ns + "/" + name
}

// hasManagedFields tells a capture that kept managedFields (the older
// fixtures) from one that removed them as kubectl does (real-k8s1.37).
func hasManagedFields(items []map[string]any) bool {
	for _, it := range items {
		if md, ok := it["metadata"].(map[string]any); ok && md["managedFields"] != nil {
			return true
		}
	}
	return false
}

func dropManagedFields(o map[string]any) {
	if md, ok := o["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
}

// jsonDiff lists the paths where a and b differ.
func jsonDiff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			av, ain := am[k]
			bv, bin := bm[k]
			if ain != bin {
				// an absent field and a null one are not the same bytes
				as, bs := presence(av, ain), presence(bv, bin)
				out = append(out, fmt.Sprintf("%s.%s: api=%.200s etcdsafe=%.200s", path, k, as, bs))
				continue
			}
			out = append(out, jsonDiff(path+"."+k, av, bv)...)
		}
		return out
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		as, _ := json.Marshal(a)
		bs, _ := json.Marshal(b)
		return []string{fmt.Sprintf("%s: api=%.200s etcdsafe=%.200s", path, as, bs)}
	}
	return nil
}

// presence is v as JSON, or "(absent)".
func presence(v any, present bool) []byte {
	if !present {
		return []byte("(absent)")
	}
	b, _ := json.Marshal(v)
	return b
}

func TestJSONDiffFindsDifferences(t *testing.T) {
	t.Parallel()
	a := map[string]any{"metadata": map[string]any{"name": "x"}, "spec": map[string]any{"ports": []any{1.0, 2.0}}}
	b := map[string]any{"metadata": map[string]any{"name": "x"}, "spec": map[string]any{"ports": []any{1.0, 3.0}}, "status": map[string]any{}}
	got := jsonDiff("", a, b)
	if len(got) != 2 || !strings.HasPrefix(got[0], ".spec.ports[1]") || !strings.HasPrefix(got[1], ".status") {
		t.Fatalf("diffs = %q", got)
	}
	if d := jsonDiff("", a, a); d != nil {
		t.Fatalf("self diff = %q", d)
	}
	// a null field is not an absent one
	c := map[string]any{"metadata": map[string]any{"name": "x", "creationTimestamp": nil}, "spec": a["spec"]}
	if d := jsonDiff("", c, a); len(d) != 1 || d[0] != ".metadata.creationTimestamp: api=null etcdsafe=(absent)" {
		t.Fatalf("null against absent: diffs = %q", d)
	}
}
