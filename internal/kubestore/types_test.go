package kubestore

import (
	"crypto/cipher"

	"k8s.io/apimachinery/pkg/runtime"
)

type (
	runtimeObject = runtime.Object
	cipherBlock   = cipher.Block
)
