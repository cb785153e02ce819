package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
)

// bins returns the binaries scripts/e2e.sh built.
func bins(t *testing.T) (harness.Binaries, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts etcd and kube-apiserver")
	}
	dir := os.Getenv("ETCDSAFE_E2E_BIN")
	if dir == "" {
		t.Fatal("ETCDSAFE_E2E_BIN is not set: run `make e2e` (scripts/e2e.sh builds etcd, kube-apiserver and etcdsafe)")
	}
	b := harness.Binaries{Etcd: filepath.Join(dir, "etcd"), APIServer: filepath.Join(dir, "kube-apiserver")}
	es := filepath.Join(dir, "etcdsafe")
	for _, p := range []string{b.Etcd, b.APIServer, es} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("binary missing: %v", err)
		}
	}
	return b, es
}

// etcdsafe runs the CLI and returns stdout, stderr and exit code.
func etcdsafe(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run etcdsafe %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	start := time.Now()
	out, errs, code := etcdsafe(t, bin, args...)
	if code != 0 {
		t.Fatalf("etcdsafe %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errs)
	}
	t.Logf("etcdsafe %s (%.2fs)", args[0], time.Since(start).Seconds())
	return out
}

func objID(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return ns + "/" + name
}

func dropManagedFields(o map[string]any) {
	if md, ok := o["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
}

// jsonDiff lists the paths where a and b differ ("path: api=… etcdsafe=…").
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
	if !reflect.DeepEqual(normNum(a), normNum(b)) {
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

// normNum makes int64 (from client-go's unstructured) and float64 (from
// encoding/json) comparable.
func normNum(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	case int32:
		return float64(n)
	}
	return v
}

// notInEtcd lists resources the API computes instead of storing.
var notInEtcd = map[string]string{
	"componentstatuses": "computed by kube-apiserver from health probes on every request, never stored",
}

func TestJSONDiff(t *testing.T) {
	a := map[string]any{"spec": map[string]any{"n": int64(3), "l": []any{"x"}}}
	cases := []struct {
		name string
		b    map[string]any
		want int
	}{
		{"same value, other number type", map[string]any{"spec": map[string]any{"n": 3.0, "l": []any{"x"}}}, 0},
		{"changed number", map[string]any{"spec": map[string]any{"n": 4.0, "l": []any{"x"}}}, 1},
		{"null against absent", map[string]any{"spec": map[string]any{"n": 3.0, "l": []any{"x"}, "t": nil}}, 1},
		{"extra field and changed list", map[string]any{"spec": map[string]any{"n": 3.0, "l": []any{"y"}}, "status": map[string]any{}}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := jsonDiff("", a, tc.b); len(got) != tc.want {
				t.Fatalf("diffs = %q, want %d", got, tc.want)
			}
		})
	}
}
