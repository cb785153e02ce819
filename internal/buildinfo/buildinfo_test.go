package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	release := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/etcdsafe/etcdsafe", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "filippo.io/age", Version: "v1.3.2"},
			{Path: "go.etcd.io/etcd/server/v3", Version: "v3.7.3"},
			{Path: "k8s.io/apimachinery", Version: "v0.37.2", Replace: &debug.Module{Path: "../apimachinery"}},
			{Path: "github.com/aws/aws-sdk-go-v2/service/s3", Version: "v1.0.0", Replace: &debug.Module{Path: "github.com/fork/s3", Version: "v1.0.1"}},
		},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "1fbfda4c0ffee"}, {Key: "vcs.time", Value: "2026-12-02T04:40:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}
	mods := []Module{{"go.etcd.io/etcd/server/v3", "v3.7.3"}, {"k8s.io/apimachinery", "=> ../apimachinery"},
		{"filippo.io/age", "v1.3.2"}, {"github.com/aws/aws-sdk-go-v2/service/s3", "v1.0.1"}}
	at := time.Date(2026, 12, 2, 4, 40, 0, 0, time.UTC)
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		l    Linked
		want Info
	}{
		{"no build info", nil, Linked{}, Info{Version: "dev", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Modules: []Module{}}},
		{"vcs settings", release, Linked{}, Info{Version: "dev", Commit: "1fbfda4c0ffee", CommitTime: at, Modified: true,
			GoVersion: "go1.26.8", Platform: "linux/arm64", Modules: mods}},
		{"linked wins", release, Linked{Version: "v1.2.0", Commit: "abc", CommitTime: "2026-01-01T00:00:00+01:00"},
			Info{Version: "v1.2.0", Commit: "abc", CommitTime: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), Modified: true,
				GoVersion: "go1.26.8", Platform: "linux/arm64", Modules: mods}},
		{"go install @version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, Linked{CommitTime: "not a time"},
			Info{Version: "v1.4.0", GoVersion: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH, Modules: []Module{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tc.want, FromBuildInfo(tc.bi, tc.l)); d != "" {
				t.Errorf("FromBuildInfo (-want +got):\n%s", d)
			}
		})
	}
}

// TestRead: the test binary's own build info (the modules are checked by
// cmd/etcdsafe's version script, whose binary links them).
func TestRead(t *testing.T) {
	t.Parallel()
	in := Read(Linked{Version: "v9"})
	if in.Version != "v9" || in.GoVersion != runtime.Version() || in.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Read = %+v", in)
	}
}
