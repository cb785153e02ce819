// Package harness runs a real control plane for end-to-end tests: it lays out
// a kubeadm-shaped root in a directory (PKI made with crypto/x509, static pod
// manifests, admin.conf, an EncryptionConfiguration with aescbc for Secrets),
// starts etcd and kube-apiserver binaries with exactly the flags their
// manifests list, on free loopback ports, and applies a realistic workload
// through client-go.
//
// The binaries are built from Go modules (see ../cmd and ../mksnapshot); the
// harness never downloads anything. Ports are picked by binding :0 and
// closing, so two harnesses may race for a port: Start reports that as an
// error rather than retrying.
package harness
