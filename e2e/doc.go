// Package e2e proves etcdsafe against a real control plane: etcd and
// kube-apiserver built from their Go modules, a realistic workload written
// through client-go, then backup, decode parity, create-ready dumps into a
// second API server, and a wiped master restored from the archive.
//
// The tests need the binaries that scripts/e2e.sh builds and names in
// ETCDSAFE_E2E_BIN (a directory holding etcd, kube-apiserver and etcdsafe);
// under -short they are skipped. Run them with `make e2e`.
package e2e
