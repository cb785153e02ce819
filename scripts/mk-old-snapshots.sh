#!/usr/bin/env bash
# Makes testdata/real-k8s<MINOR>-etcd3.5: a small real snapshot written by an
# older kube-apiserver over etcd v3.5, both built from their Go modules
# (e2e/oldcp/k8s<MINOR>/go.mod pins them), with what the API served at its
# revision. MINOR is 1.33 (the default) or 1.30.
# Run once by hand; the result is committed and decoded by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
minor=${1:-1.33}
pins=e2e/oldcp/k8s$minor
[ -f "$pins/go.mod" ] || { echo "mk-old-snapshots: no $pins/go.mod (MINOR is 1.33 or 1.30)" >&2; exit 2; }
out=$(realpath -m "${2:-testdata/real-k8s$minor-etcd3.5}")
k8s=$(cd "$pins" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(cd "$pins" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
# stamp the version as Kubernetes' own build does, so that the server
# reports it (/version) as a released binary would
kminor=${k8s#v1.}
kminor=${kminor%%.*}
ldflags="-X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kminor -X k8s.io/component-base/version.gitTreeState=clean"
hash=$(cat "$pins/go.mod" "$pins/go.sum" <(echo "$ldflags") | sha256sum | cut -c1-16)
bin=.cache/e2e-bin/old-$hash
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/etcd" ]; then
	echo "== building etcd and kube-apiserver from $pins/go.mod into $bin"
	mkdir -p "$bin.tmp"
	(cd "$pins" && go build -trimpath -ldflags "$ldflags" -o "$OLDPWD/$bin.tmp/" ./cmd/etcd ./cmd/kube-apiserver)
	rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
(cd e2e && go run ./cmd/mksnapshot -etcd "../$bin/etcd" -kube-apiserver "../$bin/kube-apiserver" \
	-out "$out" -pins "$pins/go.mod" -versions "kube-apiserver $k8s and etcd $etcd")
