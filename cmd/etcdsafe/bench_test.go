package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchSource is ETCDSAFE_BENCH_DB (`make bench-data`), else the demo fixture.
func benchSource(b *testing.B) (db, deployNS, deployName string) {
	db = demoDB
	if p := os.Getenv("ETCDSAFE_BENCH_DB"); p != "" {
		db = p
	}
	// the first Deployment of the file: generated names depend on its size
	var out strings.Builder
	if code := run(context.Background(), []string{"ls", db, "deployments", "-A", "-o", "keys"}, strings.NewReader(""), &out, io.Discard); code != 0 {
		b.Fatalf("ls %s: exit %d", db, code)
	}
	parts := strings.Split(strings.SplitN(out.String(), "\n", 2)[0], "/")
	if len(parts) != 5 {
		b.Fatalf("no deployment in %s", db)
	}
	return db, parts[3], parts[4]
}

func benchCLI(b *testing.B, args ...string) {
	b.Helper()
	for b.Loop() {
		if code := run(context.Background(), args, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
			b.Fatalf("%v: exit %d", args, code)
		}
	}
}

func BenchmarkLsAll(b *testing.B) {
	db, _, _ := benchSource(b)
	benchCLI(b, "ls", db, "-A")
}

func BenchmarkGetOne(b *testing.B) {
	db, ns, name := benchSource(b)
	benchCLI(b, "get", db, "deployment/"+name, "-n", ns)
}

func BenchmarkGetAllDeployments(b *testing.B) {
	db, _, _ := benchSource(b)
	benchCLI(b, "get", db, "deployments", "-A")
}

func BenchmarkHistory(b *testing.B) {
	db, ns, name := benchSource(b)
	benchCLI(b, "history", db, "deployment/"+name, "-n", ns)
}

func BenchmarkDumpDeployments(b *testing.B) {
	db, _, _ := benchSource(b)
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		out := filepath.Join(dir, "d", strings.Repeat("x", i))
		if code := run(context.Background(), []string{"dump", db, "deployments", "-A", "--out", out}, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
		os.RemoveAll(out)
	}
}
