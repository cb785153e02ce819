#!/usr/bin/env bash
# Builds the etcdutl binary of a released etcd from its Go module (no
# prebuilt download): its main package is copied into a scratch module that
# requires etcdutl at that version, since `go install pkg@v` refuses modules
# with replace directives. Usage: build-etcdutl.sh OUT [VERSION]
set -euo pipefail
out=$(realpath -m "$1"); ver=${2:-v3.7.3}
src=$(go mod download -json "go.etcd.io/etcd/etcdutl/v3@$ver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$src"/main.go "$src"/ctl.go "$tmp"/
cd "$tmp"
GOFLAGS= go mod init etcdutl-build >/dev/null 2>&1
GOFLAGS= go get "go.etcd.io/etcd/etcdutl/v3@$ver" >/dev/null 2>&1
GOFLAGS= go mod tidy >/dev/null 2>&1
GOFLAGS= go build -o "$out" .
