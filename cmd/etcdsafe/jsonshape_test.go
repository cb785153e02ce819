package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// jsonDoc is the contract of every -o json, read by the jsonfields
// script command.
var jsonDoc = func() string {
	p, err := filepath.Abs(filepath.Join("..", "..", "docs", "JSON.md"))
	if err != nil {
		panic(err)
	}
	return p
}()

func init() {
	scriptCmds["jsonfields"] = cmdJSONFields
}

// jsonShape is one section of docs/JSON.md: "## etcdsafe NAME", its
// "Shape:" (object or array) and "Fields:" lines.
type jsonShape struct {
	array    bool
	required []string
	optional []string
	open     bool // "*": the fields of the object's own kind may follow
}

var docField = regexp.MustCompile("`([^`]+)`")

// readJSONDoc returns the shapes of docs/JSON.md by section name (the
// heading without "etcdsafe ").
func readJSONDoc(path string) (map[string]jsonShape, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	shapes := map[string]jsonShape{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## etcdsafe "):
			section = strings.TrimPrefix(line, "## etcdsafe ")
		case strings.HasPrefix(line, "Shape: ") && section != "":
			s := shapes[section]
			s.array = strings.TrimPrefix(line, "Shape: ") == "array"
			shapes[section] = s
		case strings.HasPrefix(line, "Fields: ") && section != "":
			s := shapes[section]
			for _, m := range docField.FindAllStringSubmatch(line, -1) {
				switch name := m[1]; {
				case name == "*":
					s.open = true
				case strings.HasSuffix(name, "?"):
					s.optional = append(s.optional, strings.TrimSuffix(name, "?"))
				default:
					s.required = append(s.required, name)
				}
			}
			shapes[section] = s
		}
	}
	return shapes, sc.Err()
}

// check returns what in v (a decoded -o json) the shape does not allow.
func (s jsonShape) check(v any) []string {
	var objs []map[string]any
	if s.array {
		a, ok := v.([]any)
		if !ok || len(a) == 0 {
			return []string{"want a non-empty array"}
		}
		for _, x := range a {
			o, ok := x.(map[string]any)
			if !ok {
				return []string{"want an array of objects"}
			}
			objs = append(objs, o)
		}
	} else {
		o, ok := v.(map[string]any)
		if !ok {
			return []string{"want an object"}
		}
		objs = append(objs, o)
	}
	var bad []string
	for _, o := range objs {
		for _, f := range s.required {
			if _, ok := o[f]; !ok {
				bad = append(bad, fmt.Sprintf("field %q missing", f))
			}
		}
		if s.open {
			continue
		}
		for f := range o {
			if !slices.Contains(s.required, f) && !slices.Contains(s.optional, f) {
				bad = append(bad, fmt.Sprintf("field %q not in docs/JSON.md", f))
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

// cmdJSONFields: jsonfields SECTION checks stdout's top-level fields
// against docs/JSON.md's section "etcdsafe SECTION".
func cmdJSONFields(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonfields SECTION")
	}
	shapes, err := readJSONDoc(jsonDoc)
	ts.Check(err)
	s, ok := shapes[args[0]]
	if !ok || s.required == nil {
		ts.Fatalf("docs/JSON.md has no section %q with a Fields: line", "etcdsafe "+args[0])
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &v); err != nil {
		ts.Fatalf("stdout is not one JSON document: %v", err)
	}
	if bad := s.check(v); len(bad) > 0 {
		ts.Fatalf("-o json of %s against docs/JSON.md: %s", args[0], strings.Join(bad, "; "))
	}
}

// TestJSONDocCovered: every section of docs/JSON.md is checked by the
// output-json script, and the script checks no section the page lacks.
func TestJSONDocCovered(t *testing.T) {
	shapes, err := readJSONDoc(jsonDoc)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "script", "output-json.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^jsonfields '?([^'\n]+)'?$`).FindAllStringSubmatch(string(script), -1) {
		checked[m[1]] = true
	}
	for name, s := range shapes {
		if s.required == nil {
			t.Errorf("docs/JSON.md: section %q has no Fields: line", name)
		}
		if !checked[name] {
			t.Errorf("docs/JSON.md: section %q is not checked by output-json.txtar", name)
		}
	}
	for name := range checked {
		if _, ok := shapes[name]; !ok {
			t.Errorf("output-json.txtar checks %q, which docs/JSON.md lacks", name)
		}
	}
	if len(shapes) < 14 {
		t.Errorf("docs/JSON.md: %d sections, want every command with -o json", len(shapes))
	}
}

// TestJSONShapeCheck: the checker itself fails on a missing, an extra and
// a wrongly shaped document.
func TestJSONShapeCheck(t *testing.T) {
	obj := jsonShape{required: []string{"a"}, optional: []string{"b"}}
	arr := jsonShape{array: true, required: []string{"a"}}
	open := jsonShape{required: []string{"a"}, open: true}
	for _, tc := range []struct {
		name string
		s    jsonShape
		doc  string
		bad  bool
	}{
		{"ok", obj, `{"a":1}`, false},
		{"optional", obj, `{"a":1,"b":2}`, false},
		{"missing", obj, `{"b":1}`, true},
		{"extra", obj, `{"a":1,"c":2}`, true},
		{"array for object", obj, `[{"a":1}]`, true},
		{"array ok", arr, `[{"a":1},{"a":2}]`, false},
		{"array element missing", arr, `[{"a":1},{}]`, true},
		{"empty array", arr, `[]`, true},
		{"open", open, `{"a":1,"spec":{}}`, false},
		{"open missing", open, `{"spec":{}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.doc), &v); err != nil {
				t.Fatal(err)
			}
			if bad := tc.s.check(v); (len(bad) > 0) != tc.bad {
				t.Errorf("check(%s) = %q, want bad=%v", tc.doc, bad, tc.bad)
			}
		})
	}
}
