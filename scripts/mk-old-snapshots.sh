#!/usr/bin/env bash
# Makes testdata/real-k8s1.33-etcd3.5: a small real snapshot written by
# kube-apiserver v1.33 over etcd v3.5, both built from their Go modules
# (e2e/mksnapshot/go.mod pins them), with what the API served at its revision.
# Run once by hand; the result is committed and decoded by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-testdata/real-k8s1.33-etcd3.5}
hash=$(cat e2e/mksnapshot/go.mod e2e/mksnapshot/go.sum | sha256sum | cut -c1-16)
bin=.cache/e2e-bin/old-$hash
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/etcd" ]; then
	echo "== building etcd and kube-apiserver from e2e/mksnapshot/go.mod into $bin"
	mkdir -p "$bin.tmp"
	(cd e2e/mksnapshot && go build -trimpath -o "../../$bin.tmp/" ./cmd/etcd ./cmd/kube-apiserver)
	rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
k8s=$(cd e2e/mksnapshot && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(cd e2e/mksnapshot && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
(cd e2e && go run ./cmd/mksnapshot -etcd "../$bin/etcd" -kube-apiserver "../$bin/kube-apiserver" \
	-out "../$out" -versions "kube-apiserver $k8s and etcd $etcd")
