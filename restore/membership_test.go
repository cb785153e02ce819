package restore

import (
	"errors"
	"slices"
	"testing"
)

func TestResolveMembership(t *testing.T) {
	t.Parallel()
	single, err := ParseEtcdManifest(readTestdata(t, "etcd-kubeadm-single.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	joined, err := ParseEtcdManifest(readTestdata(t, "etcd-kubeadm-joined-crlf.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	three := "master-1=https://10.0.0.11:2380,master-2=https://10.0.0.12:2380,master-3=https://10.0.0.13:2380"
	cases := []struct {
		name     string
		flags    MembershipFlags
		man      *EtcdManifest
		wantErr  bool
		wantName string
		wantIC   string
		wantTok  string
	}{
		{"defaults", MembershipFlags{}, nil, false, "default", "default=http://localhost:2380", "etcd-cluster"},
		{"manifest single", MembershipFlags{}, single, false, "master-1", "master-1=https://10.0.0.11:2380", "etcd-cluster"},
		{"joined master restores alone by default", MembershipFlags{}, joined, false, "master-3", "master-3=https://10.0.0.13:2380", "prod-etcd"},
		{"joined master with the whole cluster", MembershipFlags{InitialCluster: three}, joined, false, "master-3", three, "prod-etcd"},
		{"flags only", MembershipFlags{Name: "a", InitialAdvertisePeerURLs: "http://127.0.0.1:1", InitialClusterToken: "t"}, nil, false, "a", "a=http://127.0.0.1:1", "t"},
		{"flag equal to manifest", MembershipFlags{Name: "master-1"}, single, false, "master-1", "master-1=https://10.0.0.11:2380", "etcd-cluster"},
		{"name contradicts manifest", MembershipFlags{Name: "master-9"}, single, true, "", "", ""},
		{"peer url contradicts manifest", MembershipFlags{InitialAdvertisePeerURLs: "https://10.0.0.99:2380"}, single, true, "", "", ""},
		{"token contradicts manifest", MembershipFlags{InitialClusterToken: "x"}, joined, true, "", "", ""},
		{"initial cluster with another peer url", MembershipFlags{InitialCluster: "master-1=https://10.0.0.12:2380"}, single, true, "", "", ""},
		{"initial cluster without this member", MembershipFlags{InitialCluster: "master-2=https://10.0.0.12:2380"}, single, true, "", "", ""},
		{"initial cluster not parseable", MembershipFlags{InitialCluster: "master-1"}, single, true, "", "", ""},
		{"bad peer url", MembershipFlags{InitialAdvertisePeerURLs: "10.0.0.1:2380"}, nil, true, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ResolveMembership(tc.flags, tc.man)
			if tc.wantErr {
				if !errors.Is(err, ErrMembership) {
					t.Fatalf("want ErrMembership, got %v (%+v)", err, m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != tc.wantName || m.InitialCluster != tc.wantIC || m.Token != tc.wantTok {
				t.Errorf("got %+v", m)
			}
			if !slices.Contains(m.Members(), m.Name) {
				t.Errorf("members %v lack %s", m.Members(), m.Name)
			}
		})
	}
}
