#!/usr/bin/env bash
# make e2e: builds etcd and kube-apiserver from e2e/go.mod (cached in
# .cache/e2e-bin/<hash of e2e/go.mod and go.sum>), etcdsafe and the local S3
# server (internal/cmd/s3server) from this tree, then runs the e2e tests
# against a real control plane and a real S3 server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
hash=$(cat e2e/go.mod e2e/go.sum | sha256sum | cut -c1-16)
bin=$PWD/.cache/e2e-bin/$hash
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/etcd" ]; then
	echo "== e2e: building etcd and kube-apiserver from e2e/go.mod into $bin"
	rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
	(cd e2e && go build -trimpath -o "$bin.tmp/" ./cmd/etcd ./cmd/kube-apiserver)
	rm -rf "$bin" && mv "$bin.tmp" "$bin"
	echo "== e2e: built in $(( $(date +%s) - start ))s"
fi
# static, as the release builds it (and so the release below reuses its compiled packages)
CGO_ENABLED=0 go build -trimpath -o "$bin/etcdsafe" ./cmd/etcdsafe
# the S3 server of the off-site scenarios (versitygw, built on its first
# start into .cache/tools by internal/s3test, as for make test)
go build -trimpath -o "$bin/s3server" ./internal/cmd/s3server
go build -trimpath -o "$bin/kmsplugin" ./internal/cmd/kmsplugin
# the packages of make release for this machine's arch (nfpm built from its
# module into .cache/tools): TestPackage builds them again and compares the
# bytes, then unpacks the .deb with dpkg -x and runs its binary
release=$PWD/.cache/e2e-release
nfpm=$PWD/.cache/tools/nfpm-$(sed -n 's/^NFPM_VERSION := //p' Makefile)/nfpm
echo "== e2e: make release for $(go env GOARCH) (.deb, .rpm)"
rstart=$(date +%s)
make -s release DIST="$release" ARCHES="$(go env GOARCH)" FORMATS="deb rpm" >.cache/e2e-release.log 2>&1 ||
	{ tail -30 .cache/e2e-release.log; echo "== e2e: make release failed"; exit 1; }
echo "== e2e: release built in $(( $(date +%s) - rstart ))s"
# the du --html page is opened in a real headless Chromium: Debian's
# package, installed when missing (the test fails, never skips, without it)
if ! command -v chromium >/dev/null 2>&1; then
	echo "== e2e: installing chromium (Debian's package) for the du --html test"
	if [ "$(id -u)" = 0 ]; then
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >.cache/e2e-chromium-install.log 2>&1 ||
			{ tail -20 .cache/e2e-chromium-install.log; echo "== e2e: chromium could not be installed: the du --html test will fail"; }
	else
		echo "== e2e: not root: install chromium yourself (apt-get install chromium); the du --html test will fail"
	fi
fi
artifacts=$PWD/.cache/artifacts
mkdir -p "$artifacts"
rm -f "$artifacts/du-treemap.png"
echo "== e2e: tests"
status=0
(cd e2e && ETCDSAFE_E2E_BIN="$bin" ETCDSAFE_E2E_RELEASE="$release" ETCDSAFE_E2E_NFPM="$nfpm" ETCDSAFE_E2E_ARTIFACTS="$artifacts" ETCDSAFE_E2E_CHROMIUM="$(command -v chromium || true)" \
	go test -count=1 -timeout 30m -v ./...) >.cache/e2e-last.log 2>&1 || status=$?
grep -E '^(e2e |--- |FAIL|ok |PASS)|_test.go:[0-9]+: (parity|create-ready|restore|backup|watch|control plane|workload|du-html|release|packaged|kms)' .cache/e2e-last.log || true
if [ -s "$artifacts/du-treemap.png" ]; then
	echo "== e2e: artifact: the du --html treemap as Chromium drew it: .cache/artifacts/du-treemap.png"
fi
if [ "$status" != 0 ]; then
	echo "== e2e: FAILED (exit $status); failures:"
	grep -v 'warnings.go' .cache/e2e-last.log | grep -B2 -A8 -E '^\s*[a-z_]+_test.go:[0-9]+: ' | grep -vE 'etcdsafe [a-z]+ \(' | tail -60
fi
echo "== e2e: done in $(( $(date +%s) - start ))s (full log: .cache/e2e-last.log)"
exit "$status"
