package restore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEtcdManifest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		file string
		want EtcdManifest
	}{
		{"kubeadm single master", "etcd-kubeadm-single.yaml", EtcdManifest{
			Name:                     "master-1",
			InitialAdvertisePeerURLs: []string{"https://10.0.0.11:2380"},
			InitialCluster:           "master-1=https://10.0.0.11:2380",
			DataDir:                  "/var/lib/etcd",
			ListenClientURLs:         []string{"https://127.0.0.1:2379", "https://10.0.0.11:2379"},
		}},
		{"joined third master, CRLF, quoted", "etcd-kubeadm-joined-crlf.yaml", EtcdManifest{
			Name:                     "master-3",
			InitialAdvertisePeerURLs: []string{"https://10.0.0.13:2380"},
			InitialCluster:           "master-1=https://10.0.0.11:2380,master-2=https://10.0.0.12:2380,master-3=https://10.0.0.13:2380",
			InitialClusterState:      "existing",
			InitialClusterToken:      "prod-etcd",
			DataDir:                  "/var/lib/etcd",
			ListenClientURLs:         []string{"https://127.0.0.1:2379", "https://10.0.0.13:2379"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseEtcdManifest(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != tc.want.Name || m.InitialCluster != tc.want.InitialCluster || m.InitialClusterState != tc.want.InitialClusterState ||
				m.InitialClusterToken != tc.want.InitialClusterToken || m.DataDir != tc.want.DataDir || m.ForceNewCluster ||
				!slices.Equal(m.InitialAdvertisePeerURLs, tc.want.InitialAdvertisePeerURLs) || !slices.Equal(m.ListenClientURLs, tc.want.ListenClientURLs) {
				t.Errorf("got %+v\nwant %+v", *m, tc.want)
			}
		})
	}
}

func TestParseEtcdManifestSplitArgsAndErrors(t *testing.T) {
	t.Parallel()
	split := "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: db\n    command: [\"/usr/local/bin/etcd\"]\n    args: [\"--name\", \"n1\", \"--force-new-cluster\", \"--data-dir\", \"/d\"]\n"
	m, err := ParseEtcdManifest([]byte(split))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "n1" || m.DataDir != "/d" || !m.ForceNewCluster {
		t.Errorf("split args: %+v", *m)
	}
	bad := []struct{ name, in string }{
		{"not yaml", "\t:::"},
		{"not a pod", "apiVersion: v1\nkind: ConfigMap\n"},
		{"no etcd container", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: nginx\n    command: [nginx]\n"},
		{"empty", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEtcdManifest([]byte(tc.in)); !errors.Is(err, ErrBadManifest) {
				t.Errorf("want ErrBadManifest, got %v", err)
			}
		})
	}
}

// lineDiff returns the lines of b that are not in a and vice versa, to
// check that an edit touched exactly one line.
func lineDiff(a, b []byte) (added, removed []string) {
	al, bl := strings.SplitAfter(string(a), "\n"), strings.SplitAfter(string(b), "\n")
	count := map[string]int{}
	for _, l := range al {
		count[l]++
	}
	for _, l := range bl {
		if count[l] > 0 {
			count[l]--
		} else {
			added = append(added, l)
		}
	}
	for l, n := range count {
		for ; n > 0; n-- {
			removed = append(removed, l)
		}
	}
	return added, removed
}

func TestSetForceNewCluster(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file      string
		wantAdded string
	}{
		{"etcd-kubeadm-single.yaml", "    - --force-new-cluster\n"},
		{"etcd-kubeadm-joined-crlf.yaml", "    - \"--force-new-cluster\"\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			orig := readTestdata(t, tc.file)
			on, changed, err := SetForceNewCluster(orig, true)
			if err != nil || !changed {
				t.Fatalf("on: changed=%v err=%v", changed, err)
			}
			added, removed := lineDiff(orig, on)
			if len(removed) != 0 || len(added) != 1 || added[0] != tc.wantAdded {
				t.Fatalf("on: added %q removed %q", added, removed)
			}
			if m, _ := ParseEtcdManifest(on); !m.ForceNewCluster {
				t.Fatal("on: flag not seen by the parser")
			}
			again, changed, err := SetForceNewCluster(on, true)
			if err != nil || changed || !bytes.Equal(again, on) {
				t.Fatalf("on twice: changed=%v err=%v", changed, err)
			}
			off, changed, err := SetForceNewCluster(on, false)
			if err != nil || !changed {
				t.Fatalf("off: changed=%v err=%v", changed, err)
			}
			if !bytes.Equal(off, orig) {
				t.Fatal("off after on is not byte-identical to the original")
			}
			same, changed, err := SetForceNewCluster(orig, false)
			if err != nil || changed || !bytes.Equal(same, orig) {
				t.Fatalf("off on a file without the flag: changed=%v err=%v", changed, err)
			}
		})
	}
	t.Run("=false is turned on in place", func(t *testing.T) {
		orig := readTestdata(t, "etcd-kubeadm-single.yaml")
		withFalse := bytes.Replace(orig, []byte("    - --name=master-1\n"), []byte("    - --name=master-1\n    - --force-new-cluster=false\n"), 1)
		on, changed, err := SetForceNewCluster(withFalse, true)
		if err != nil || !changed {
			t.Fatalf("changed=%v err=%v", changed, err)
		}
		added, removed := lineDiff(withFalse, on)
		if len(added) != 1 || added[0] != "    - --force-new-cluster\n" || len(removed) != 1 || removed[0] != "    - --force-new-cluster=false\n" {
			t.Fatalf("added %q removed %q", added, removed)
		}
	})
	t.Run("flow list refused", func(t *testing.T) {
		in := "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command: [etcd, --name=a]\n"
		if _, _, err := SetForceNewCluster([]byte(in), true); !errors.Is(err, ErrBadManifest) {
			t.Fatalf("want ErrBadManifest, got %v", err)
		}
	})
}

func TestEditForceNewCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "etcd.yaml")
	orig := readTestdata(t, "etcd-kubeadm-single.yaml")
	if err := os.WriteFile(p, orig, 0o640); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	ed, err := EditForceNewCluster(p, true, now)
	if err != nil || !ed.Changed {
		t.Fatalf("changed=%v err=%v", ed.Changed, err)
	}
	if ed.Backup != filepath.Join(dir, ".etcd.yaml.etcdsafe-20260102T030405Z") {
		t.Errorf("backup %s", ed.Backup)
	}
	if b, _ := os.ReadFile(ed.Backup); !bytes.Equal(b, orig) {
		t.Error("backup differs from the previous file")
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode of the edited manifest: %v %v", st.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	var visible []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			visible = append(visible, e.Name())
		}
	}
	if !slices.Equal(visible, []string{"etcd.yaml"}) {
		t.Errorf("the kubelet would see %v", visible)
	}
	if ed, err := EditForceNewCluster(p, true, now); err != nil || ed.Changed {
		t.Fatalf("second --on: changed=%v err=%v", ed.Changed, err)
	}
	// The backup name is taken (same second): the next free name is used,
	// the existing copy is not overwritten.
	off, err := EditForceNewCluster(p, false, now)
	if err != nil || off.Backup == ed.Backup {
		t.Fatalf("second edit in the same second: backup %s, err %v", off.Backup, err)
	}
	if b, _ := os.ReadFile(ed.Backup); !bytes.Equal(b, orig) {
		t.Fatal("the first copy was overwritten")
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, orig) {
		t.Error("--off after --on did not give back the original bytes")
	}
}
