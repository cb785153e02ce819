// Package mksnapshot pins the older etcd and kube-apiserver pair (etcd v3.5,
// Kubernetes v1.33) that scripts/mk-old-snapshots.sh builds to write the
// snapshots under testdata/real-k8s1.33-etcd3.5/.
package mksnapshot
