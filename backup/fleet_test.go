package backup

import (
	"strings"
	"testing"
	"time"
)

// TestFleetDir: the cluster's name, else the host's, made one path
// element; every ArchiveName starts with it.
func TestFleetDir(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 0, 41, 0, 0, time.UTC)
	tests := []struct {
		name, cluster, host, want string
	}{
		{"cluster wins", "prod", "master-1", "prod"},
		{"host without cluster", "", "master-1", "master-1"},
		{"separators and spaces", "a/b\\c d", "h", "a_b_c_d"},
		{"NUL", "a\x00b", "", "a_b"},
		{"nothing", "", "", "etcd"},
		{"dot", ".", "", "etcd"},
		{"dot dot", "", "..", "etcd"},
		{"dots inside stay", "a..b", "", "a..b"},
		{"a traversal is one element", "../x", "", ".._x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := FleetDir(tc.cluster, tc.host)
			if got != tc.want {
				t.Fatalf("FleetDir(%q, %q) = %q, want %q", tc.cluster, tc.host, got, tc.want)
			}
			if strings.ContainsAny(got, "/\\\x00 ") {
				t.Fatalf("%q is not one path element", got)
			}
			if n := ArchiveName(tc.cluster, tc.host, at, true); n != got+"-20261202T004100Z.tar.zst.age" {
				t.Fatalf("ArchiveName = %q", n)
			}
		})
	}
}
