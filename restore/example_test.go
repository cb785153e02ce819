package restore_test

import (
	"fmt"

	"github.com/etcdsafe/etcdsafe/restore"
)

func ExampleSetForceNewCluster() {
	manifest := []byte(`apiVersion: v1
kind: Pod
spec:
  containers:
  - name: etcd
    command:
    - etcd
    - --name=master-1   # kubeadm
    - --data-dir=/var/lib/etcd
`)
	on, changed, err := restore.SetForceNewCluster(manifest, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(changed)
	fmt.Print(string(on))
	// Output:
	// true
	// apiVersion: v1
	// kind: Pod
	// spec:
	//   containers:
	//   - name: etcd
	//     command:
	//     - etcd
	//     - --name=master-1   # kubeadm
	//     - --force-new-cluster
	//     - --data-dir=/var/lib/etcd
}

func ExampleResolveMembership() {
	m, err := restore.ResolveMembership(restore.MembershipFlags{
		Name:                     "master-1",
		InitialAdvertisePeerURLs: "https://10.0.0.11:2380",
	}, nil)
	fmt.Println(m.InitialCluster, m.Token, err)
	// Output: master-1=https://10.0.0.11:2380 etcd-cluster <nil>
}
