package kubestore

import (
	"bytes"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func metaOf(obj runtime.Object) ([]metav1.ManagedFieldsEntry, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return m.GetManagedFields(), nil
}
