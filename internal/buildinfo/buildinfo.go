// Package buildinfo says what a binary was built from: its version and
// commit (set at link time by the release build), the commit's time, the
// Go toolchain, and the versions of the modules that decide what the
// binary reads and writes (etcd, apimachinery, age, the S3 client), all
// from [debug.ReadBuildInfo]. It never fails: what the binary does not
// carry is reported as unknown.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"time"
)

// MainModules are the modules [Info.Modules] reports, in this order: the
// etcd server whose db format the snapshots are, the apimachinery that
// decodes Kubernetes objects, age for the archives' encryption, and the
// S3 client of s3:// SOURCEs and outputs.
var MainModules = []string{
	"go.etcd.io/etcd/server/v3",
	"k8s.io/apimachinery",
	"filippo.io/age",
	"github.com/aws/aws-sdk-go-v2/service/s3",
}

// Module is a module the binary was built with.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Info is what a binary was built from.
type Info struct {
	// Version is the release version ("dev" for a plain go build).
	Version string `json:"version"`
	// Commit is the full commit hash, "" when unknown.
	Commit string `json:"commit,omitempty"`
	// CommitTime is the commit's time, zero when unknown.
	CommitTime time.Time `json:"commitTime,omitzero"`
	// Modified reports that the working tree had uncommitted changes
	// (known only when the build recorded version control information).
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary ("go1.26.8").
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
	// Modules are the [MainModules] the binary holds, in that order; a
	// module it does not hold is left out.
	Modules []Module `json:"modules"`
}

// Linked is what the release build sets with -ldflags -X: each field wins
// over what the build info says, and may be empty.
type Linked struct {
	Version    string
	Commit     string
	CommitTime string // RFC 3339
}

// Read returns the running binary's [Info].
func Read(l Linked) Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(bi, l)
}

// FromBuildInfo returns the [Info] of bi (nil: a binary without build
// information) with l's fields over it.
func FromBuildInfo(bi *debug.BuildInfo, l Linked) Info {
	in := Info{Version: l.Version, Commit: l.Commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Modules: []Module{}}
	commitTime := l.CommitTime
	goos, goarch := runtime.GOOS, runtime.GOARCH
	if bi != nil {
		in.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if commitTime == "" {
					commitTime = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
		for _, path := range MainModules {
			for _, d := range bi.Deps {
				if d.Path != path {
					continue
				}
				v := d.Version
				if d.Replace != nil {
					v = d.Replace.Version
					if v == "" {
						v = "=> " + d.Replace.Path
					}
				}
				in.Modules = append(in.Modules, Module{Path: path, Version: v})
			}
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version // go install ...@vX.Y.Z
		}
	}
	in.Platform = goos + "/" + goarch
	if t, err := time.Parse(time.RFC3339, commitTime); err == nil {
		in.CommitTime = t.UTC()
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	return in
}
