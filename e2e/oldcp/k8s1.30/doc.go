// Package k8s130 pins the older etcd and kube-apiserver pair (etcd v3.5,
// Kubernetes v1.30) that `scripts/mk-old-snapshots.sh 1.30` builds to write
// the snapshot under testdata/real-k8s1.30-etcd3.5/. Kubernetes v1.30 is the
// last minor before v1.33 stopped serving `creationTimestamp: null` in
// object templates that is still built by this Go.
package k8s130
