package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/inspect"
)

func TestParseOutput(t *testing.T) {
	allowed := []string{"yaml", "json", "name", "wide", "jsonpath", "go-template", "custom-columns"}
	for _, tc := range []struct {
		in, format, err string
	}{
		{in: "yaml", format: "yaml"},
		{in: "wide", format: "wide"},
		{in: "jsonpath={.metadata.name}", format: "jsonpath"},
		{in: "go-template={{.kind}}", format: "go-template"},
		{in: "custom-columns=NAME:.metadata.name,IMAGES:{.spec.containers[*].image}", format: "custom-columns"},
		{in: "keys", err: "-o must be yaml, json, name, wide, jsonpath=..., go-template=... or custom-columns=..."},
		{in: "wide=x", err: "-o must be"},
		{in: "jsonpath", err: "-o jsonpath needs a template: jsonpath=TEMPLATE"},
		{in: "jsonpath=", err: "needs a template"},
		{in: "jsonpath-file=", err: "-o jsonpath-file needs a file"},
		{in: "jsonpath={.a", err: `jsonpath template "{.a": unclosed action`},
		{in: "go-template={{.a", err: "go-template: template: output:1: unclosed action"},
		{in: "go-template={{nope}}", err: `function "nope" not defined`},
		{in: "custom-columns=NAME", err: `"NAME" is not HEADER:PATH`},
		{in: "custom-columns=NAME:", err: `column "NAME" has no path`},
		{in: "custom-columns=NAME:{.a}{.b}", err: "unexpected path"},
		{in: "custom-columns-file=/nonexistent/cols", err: "template file: open /nonexistent/cols"},
		{in: "template={{.a}}", err: "-o must be"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			spec, err := parseOutput(tc.in, allowed)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseOutput(%q) = %v, want an error with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || spec.format != tc.format || spec.raw != tc.in {
				t.Fatalf("parseOutput(%q) = %q %q, %v; want format %q", tc.in, spec.format, spec.raw, err, tc.format)
			}
		})
	}
}

func TestColumnsFromFile(t *testing.T) {
	cols, err := columnsFromFile("NAME   NODE\n.metadata.name  {.spec.nodeName}\n")
	if err != nil || len(cols) != 2 || cols[1].header != "NODE" {
		t.Fatalf("columnsFromFile = %v, %v", cols, err)
	}
	for _, bad := range []string{"", "NAME\n", "NAME NODE\n.metadata.name\n", "A\nb\nc\n"} {
		if _, err := columnsFromFile(bad); err == nil {
			t.Errorf("columnsFromFile(%q): no error", bad)
		}
	}
}

func TestColumnCell(t *testing.T) {
	pod := map[string]any{
		"metadata": map[string]any{"name": "p\tq\nr", "labels": map[string]any{"b": "2", "a": "1"}},
		"spec":     map[string]any{"containers": []any{map[string]any{"image": "x:1"}, map[string]any{"image": "y:2"}}},
	}
	for _, tc := range []struct{ spec, want string }{
		{"N:.metadata.name", "p q r"},               // stays in its cell and line
		{"I:.spec.containers[*].image", "x:1,y:2"},  // several values, as kubectl
		{"M:.spec.nothing", "<none>"},               // missing
		{"S:.metadata.labels", "map[a:1 b:2]"},      // as kubectl prints a map
		{"SELECTOR:.metadata.labels", "a=1,b=2"},    // wide's SELECTOR
		{"E:{.spec.containers[5].image}", "<none>"}, // out of range: no value
	} {
		cols := mustColumns(tc.spec)
		if got := tabSafe(cols[0].cell(pod)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.spec, got, tc.want)
		}
	}
}

// TestTemplateErrorPrintsNothing: a template that fails on the data is a
// usage error, and nothing of the object reaches the output or the message.
func TestTemplateErrorPrintsNothing(t *testing.T) {
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s"}, "data": map[string]any{"k": "c2VjcmV0LXZhbHVl"},
	}}
	for _, o := range []string{"go-template={{index .data 5}}", "jsonpath={.data[5]}"} {
		spec, err := parseOutput(o, []string{"jsonpath", "go-template"})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		p := newObjectOutput(&out, spec, true)
		b, err := p.encode(secret)
		if err := p.write(inspect.Entry{}, secret, b, err); err != nil {
			t.Fatal(err)
		}
		err = p.close()
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: %v, want a usage error", o, err)
		}
		if out.Len() > 0 || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("%s: printed %q, error %q: the secret's value leaked", o, out.String(), err)
		}
	}
}

func TestWideTables(t *testing.T) {
	var out bytes.Buffer
	spec, _ := parseOutput("wide", []string{"wide"})
	p := newObjectOutput(&out, spec, false)
	objs := []*unstructured.Unstructured{
		{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "api", "namespace": "p"},
			"spec": map[string]any{"replicas": int64(2), "selector": map[string]any{"matchLabels": map[string]any{"app": "api"}}}}},
		{Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "api", "namespace": "p"},
			"spec": map[string]any{"type": "ClusterIP", "clusterIP": "10.0.0.1"}}},
	}
	for i, obj := range objs {
		b, err := p.encode(obj)
		if err := p.write(inspect.Entry{ModRevision: int64(10 + i)}, obj, b, err); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE   NAME   READY   UP-TO-DATE   AVAILABLE   CONTAINERS   IMAGES   SELECTOR   REVISION
p           api    0/2     0            0           <none>       <none>   app=api    10

NAMESPACE   NAME   TYPE        CLUSTER-IP   PORTS    SELECTOR   REVISION
p           api    ClusterIP   10.0.0.1     <none>   <none>     11
`
	if out.String() != want {
		t.Errorf("wide:\n%s\nwant:\n%s", out.String(), want)
	}
}
