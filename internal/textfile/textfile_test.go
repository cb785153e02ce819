package textfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteRead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.prom")
	if got := Read(path); len(got) != 0 {
		t.Fatalf("missing file read as %v", got)
	}
	ms := []Metric{{Name: "x_seconds", Help: "a gauge"}, {Name: "x_total", Help: "a counter", Counter: true}, {Name: "x_absent", Help: "no value"}}
	if err := Write(path, ms, map[string]float64{"x_seconds": 1.5, "x_total": 3, "ignored": 9}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# TYPE x_seconds gauge\nx_seconds 1.5\n", "# TYPE x_total counter\nx_total 3\n", "x_absent 0\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("file lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "ignored") {
		t.Errorf("a value without a metric was written:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	got := Read(path)
	if got["x_seconds"] != 1.5 || got["x_total"] != 3 || got["x_absent"] != 0 || len(got) != 3 {
		t.Errorf("read back %v", got)
	}
}

func TestReadBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.prom")
	if err := os.WriteFile(big, []byte("x 1\n"+strings.Repeat("#", MaxSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Read(big); len(got) != 0 {
		t.Errorf("oversized file read as %v", got)
	}
	// what the parser read before a broken line counts
	broken := filepath.Join(dir, "broken.prom")
	if err := os.WriteFile(broken, []byte("a 1\nb 2\nc{ 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Read(broken); got["a"] != 1 || got["b"] != 2 {
		t.Errorf("broken file read as %v", got)
	}
}
