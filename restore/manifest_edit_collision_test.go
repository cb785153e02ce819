package restore

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEditTwiceInOneSecond: turning the flag on and off within the same
// second keeps both previous files and gives back the original bytes.
func TestEditTwiceInOneSecond(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("testdata", "etcd-kubeadm-single.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(p, src, 0o600); err != nil {
		t.Fatal(err)
	}
	fixed := func() time.Time { return time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC) }
	on, err := EditForceNewCluster(p, true, fixed)
	if err != nil || !on.Changed {
		t.Fatalf("on: %+v %v", on, err)
	}
	off, err := EditForceNewCluster(p, false, fixed)
	if err != nil || !off.Changed || off.Backup == on.Backup {
		t.Fatalf("off: %+v %v (on kept %s)", off, err, on.Backup)
	}
	got, _ := os.ReadFile(p)
	if string(got) != string(src) {
		t.Fatal("on then off did not give back the original bytes")
	}
	for _, b := range []string{on.Backup, off.Backup} {
		if _, err := os.Stat(b); err != nil {
			t.Errorf("previous file %s: %v", b, err)
		}
	}
}
