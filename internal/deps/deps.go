// Package deps pins the modules the project builds on before every one of
// them is imported by real code, so that `go mod tidy` keeps them.
package deps

import (
	_ "filippo.io/age"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pmezard/go-difflib/difflib"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/etcd/api/v3/mvccpb"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/etcdutl/v3/snapshot"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	_ "k8s.io/apimachinery/pkg/runtime"
	_ "k8s.io/apiserver/pkg/apis/apiserver/v1"
	_ "k8s.io/apiserver/pkg/storage/value/encrypt/aes"
	_ "k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
	_ "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	_ "sigs.k8s.io/yaml"
)
