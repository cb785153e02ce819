// Package demodata fills etcd, through a [kubestore.Writer], with a small
// but realistic cluster: namespaces, workloads with owner references,
// services of each kind, encrypted Secrets, RBAC, a Node, Leases, Events,
// storage, CRDs with custom resources, an updated Deployment with three
// revisions, a deleted ConfigMap (tombstone) and kube-apiserver's special
// keys (compact_rev_key, ranges, masterleases).
//
// Everything is deterministic given the Writer's seed and clock, so
// fixtures generated from it are reproducible. [Summary] lists what was
// written so tests can assert on it without re-deriving it.
package demodata
