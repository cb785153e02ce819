package table

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// TestPrint: a small table, cell by cell.
func TestPrint(t *testing.T) {
	rows := [][]Cell{
		{Text("payments"), Text("api"), Join("apps", '/', "v1"), Int(228)},
		{Text("-"), Text("a-much-longer-name"), Join("", '/', "v1"), Int(-7)},
		{Text("skip me"), Text(""), Text(""), Int(0)},
		{Text("kube-system"), Text("evil\x1b[2Jname"), Text("v1"), Int(1234567)},
	}
	var b strings.Builder
	n, err := Print(context.Background(), &b, len(rows), Options{
		Header: []string{"NAMESPACE", "NAME", "APIVERSION", "REVISION"},
		Row: func(i int, c []Cell) bool {
			copy(c, rows[i])
			return i != 2
		},
	})
	want := `NAMESPACE    NAME                APIVERSION  REVISION
payments     api                 apps/v1     228
-            a-much-longer-name  v1          -7
kube-system  evil\x1b[2Jname     v1          1234567
`
	if err != nil || n != 3 || b.String() != want {
		t.Errorf("%d rows, %v:\n%s\nwant:\n%s", n, err, b.String(), want)
	}
}

// TestPrintNothing: no row kept, no header either.
func TestPrintNothing(t *testing.T) {
	for _, n := range []int{0, 3} {
		var b strings.Builder
		got, err := Print(context.Background(), &b, n, Options{Header: []string{"A"}, Row: func(int, []Cell) bool { return false }})
		if got != 0 || err != nil || b.Len() != 0 {
			t.Errorf("n=%d: %d rows, %v, %q", n, got, err, b.String())
		}
	}
}

// TestPrintMatchesTabwriter: whatever the number of rows (around the chunk
// size) and of workers, the output is text/tabwriter's with two spaces of
// padding, kubectl's alignment.
func TestPrintMatchesTabwriter(t *testing.T) {
	header := []string{"NAMESPACE", "NAME", "KIND", "REVISION", "DELETED-AT"}
	row := func(i int, c []Cell) bool {
		if i%5 == 3 {
			return false // left out
		}
		c[0] = Text(fmt.Sprintf("ns-%d", i%13))
		c[1] = Text(strings.Repeat("n", i%37) + fmt.Sprint(i))
		c[2] = Join([]string{"", "apps", "cert-manager.io"}[i%3], '/', "v1")
		c[3] = Int(int64(i) * 7919 % 100003)
		c[4] = Int(int64(-i))
		return true
	}
	for _, n := range []int{0, 1, 2, chunk - 1, chunk, chunk + 1, 2*chunk + 17} {
		var ref strings.Builder
		tw := tabwriter.NewWriter(&ref, 0, 8, 2, ' ', 0)
		kept := 0
		cells := make([]Cell, len(header))
		for i := range n {
			if row(i, cells) {
				if kept == 0 {
					fmt.Fprintln(tw, strings.Join(header, "\t"))
				}
				kept++
				var parts []string
				for k := range cells {
					parts = append(parts, string(cells[k].appendTo(nil)))
				}
				fmt.Fprintln(tw, strings.Join(parts, "\t"))
			}
		}
		tw.Flush()
		for _, workers := range []int{0, 1, 2, 7} {
			var b strings.Builder
			got, err := Print(context.Background(), &b, n, Options{Header: header, Row: row, Workers: workers})
			if err != nil || got != kept {
				t.Fatalf("n=%d workers=%d: %d rows, %v; want %d", n, workers, got, err, kept)
			}
			if b.String() != ref.String() {
				t.Fatalf("n=%d workers=%d: differs from tabwriter:\n%.400s\nwant:\n%.400s", n, workers, b.String(), ref.String())
			}
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

// TestPrintWriteError: the writer's error comes back, from the header or
// from a chunk of lines.
func TestPrintWriteError(t *testing.T) {
	for _, ok := range []int{0, 1, 2} {
		for _, workers := range []int{1, 3} {
			_, err := Print(context.Background(), &failWriter{n: ok}, 3*chunk, Options{Header: []string{"A"}, Workers: workers,
				Row: func(i int, c []Cell) bool { c[0] = Int(int64(i)); return true }})
			if err == nil || err.Error() != "disk full" {
				t.Errorf("%d writes ok, workers=%d: %v", ok, workers, err)
			}
		}
	}
}

// TestLineAllocs: making a line allocates nothing, cleaned cells included
// (a safe string is not copied).
func TestLineAllocs(t *testing.T) {
	l := layout{w: []int{12, 20, 10, 8}}
	b := make([]byte, 0, 4096)
	ns, name := "payments", "api-server"
	allocs := testing.AllocsPerRun(100, func() {
		cells := [4]Cell{Text(ns), Text(name), Join("apps", '/', "v1"), Int(123456)}
		b = l.appendRow(b[:0], cells[:])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per line", allocs)
	}
}

// BenchmarkPrint: a million-row table on every core.
func BenchmarkPrint(b *testing.B) {
	names := make([]string, 1<<20)
	for i := range names {
		names[i] = fmt.Sprintf("object-%d", i)
	}
	header := []string{"NAMESPACE", "NAME", "APIVERSION", "REVISION", "SIZE"}
	for b.Loop() {
		_, err := Print(context.Background(), discard{}, len(names), Options{Header: header, Workers: 4,
			Row: func(i int, c []Cell) bool {
				c[0], c[1], c[2], c[3], c[4] = Text("default"), Text(names[i]), Join("apps", '/', "v1"), Int(int64(i)), Int(int64(i%4096))
				return true
			}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
