package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestForceNewClusterCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "etcd.yaml")
	orig := mustRead(t, "../../restore/testdata/etcd-kubeadm-single.yaml")
	if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		code    int
		out     string
		hasFlag bool
	}{
		{"neither", []string{"manifest", "force-new-cluster", p}, exitUsage, "", false},
		{"both", []string{"manifest", "force-new-cluster", "--on", "--off", p}, exitUsage, "", false},
		{"on", []string{"manifest", "force-new-cluster", "--on", p}, 0, "is now on", true},
		{"on again", []string{"manifest", "force-new-cluster", "--on", p}, 0, "already on", true},
		{"missing file", []string{"manifest", "force-new-cluster", "--on", filepath.Join(dir, "nope.yaml")}, exitFailure, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.out) {
				t.Fatalf("exit %d (want %d) stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			if got := strings.Contains(mustRead(t, p), "- --force-new-cluster\n"); got != tc.hasFlag {
				t.Fatalf("flag present %v, want %v", got, tc.hasFlag)
			}
		})
	}
}
