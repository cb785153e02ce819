package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/etcdsafe/etcdsafe/"

// allowed lists, per package, the project packages its non-test code may
// import (internal/* helpers excepted, which every package may use).
var allowed = map[string][]string{
	"decode":        {},
	"archive":       {},
	"snapshot":      {},
	"inspect":       {"decode"},
	"restore":       {"archive", "decode", "inspect", "snapshot"},
	"store":         {},
	"store/s3store": {"store"},
	"keyindex":      {"archive", "decode", "inspect", "snapshot"},
	"backup":        {"archive", "inspect", "keyindex", "snapshot", "store"},
	"source":        {"archive", "decode", "inspect", "snapshot"},
	"kdiff":         {"decode", "inspect", "source"},
	"timeline":      {"archive", "backup", "decode", "inspect", "keyindex", "source", "store"},
	"drill":         {"decode", "inspect", "restore", "source"},
	"kms":           {"decode"},
}

func TestImportDirections(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	for pkg, ok := range allowed {
		dir := filepath.Join(root, pkg)
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			test := strings.HasSuffix(f, "_test.go")
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, module) {
					continue
				}
				rel := strings.TrimPrefix(p, module)
				if rel == "cmd" || strings.HasPrefix(rel, "cmd/") {
					t.Errorf("%s imports %s: nothing imports cmd", f, p)
					continue
				}
				// Tests may build fixtures with any package (an external
				// test package imports its own); the rules are for code.
				if test || rel == pkg || strings.HasPrefix(rel, "internal/") && !strings.HasPrefix(rel, "internal/cmd") {
					continue
				}
				if !contains(ok, rel) {
					t.Errorf("%s imports %s: %s may import only %v (and internal/*)", f, p, pkg, ok)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root not found: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
