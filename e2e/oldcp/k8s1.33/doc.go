// Package k8s133 pins the older etcd and kube-apiserver pair (etcd v3.5,
// Kubernetes v1.33) that `scripts/mk-old-snapshots.sh 1.33` builds to write
// the snapshot under testdata/real-k8s1.33-etcd3.5/.
package k8s133
