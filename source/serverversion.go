package source

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// ServerVersion is the version of the kube-apiserver that served a
// source's objects, as far as the source tells.
type ServerVersion struct {
	// Version is nil when nothing in the source names it.
	Version *version.Version
	// Raw is the version as written where it was found ("v1.30.14").
	Raw string
	// From says where it was found, for messages.
	From string
}

// ParseServerVersion reads a Kubernetes version as people and manifests
// write it: "1.30", "v1.30.14", "v1.30.14+k3s1", "v1.31.2-eks-7f9249a".
func ParseServerVersion(s string) (*version.Version, error) {
	v, err := version.ParseGeneric(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not a Kubernetes version (want 1.30 or v1.30.14)", s)
	}
	if v.Major() != 1 {
		return nil, fmt.Errorf("%q is not a Kubernetes version (want 1.30 or v1.30.14)", s)
	}
	return v, nil
}

// Where the kube-apiserver version is written, under the etcd prefix.
const (
	kubeadmConfigKey  = "/configmaps/kube-system/kubeadm-config"
	deckhouseClusterK = "/secrets/kube-system/d8-cluster-configuration"
	apiServerPodsKey  = "/pods/kube-system/kube-apiserver-"
)

// ServerVersion tells which kube-apiserver version served the source's
// objects at revision rev (0: the newest), from the first of these that
// names one:
//
//   - an archive's kubernetes/manifests/kube-apiserver.yaml (the image tag
//     of the master's own kube-apiserver when the backup was taken; only for
//     the newest revision);
//   - ConfigMap kube-system/kubeadm-config (kubernetesVersion of the
//     ClusterConfiguration `kubeadm init` and `kubeadm upgrade` upload);
//   - Secret kube-system/d8-cluster-configuration (Deckhouse's
//     kubernetesVersion, unless "Automatic");
//   - the kube-apiserver static Pods' mirror Pods in kube-system (their
//     image tags; the oldest when masters differ).
//
// It reads the db once, for those keys only (under [Source.Prefix], empty
// being "/registry"). A source that names none
// returns a zero ServerVersion and no error; errors are the db's.
func (s *Source) ServerVersion(ctx context.Context, rev int64) (ServerVersion, error) {
	if rev == 0 && s.APIServerManifest != nil {
		if raw := apiServerImageTag(s.APIServerManifest); raw != "" {
			if v, err := ParseServerVersion(raw); err == nil {
				return ServerVersion{Version: v, Raw: raw, From: "image tag in the archive's kubernetes/manifests/kube-apiserver.yaml"}, nil
			}
		}
	}
	p := s.Prefix
	if p == "" {
		p = "/registry"
	}
	q := inspect.Query{Revision: rev, Prefixes: [][]byte{
		[]byte(p + kubeadmConfigKey), []byte(p + deckhouseClusterK), []byte(p + apiServerPodsKey),
	}}
	es, _, err := s.Snapshot.Index(ctx, q)
	if err != nil {
		return ServerVersion{}, err
	}
	var kubeadm, deckhouse ServerVersion
	var pods []ServerVersion
	for _, e := range es {
		rec, err := s.Snapshot.Get(e.Rev)
		if err != nil {
			return ServerVersion{}, err
		}
		v, err := s.Decoder.Decode(rec.Key, rec.Value)
		if err != nil {
			continue // an undecryptable Secret, a damaged value: it tells nothing
		}
		switch key := string(rec.Key); {
		case key == p+kubeadmConfigKey:
			kubeadm = fromConfig(v.Object, "data", "ClusterConfiguration", "kubernetesVersion in ConfigMap kube-system/kubeadm-config")
		case key == p+deckhouseClusterK:
			deckhouse = fromConfig(v.Object, "data", "cluster-configuration.yaml", "kubernetesVersion in Secret kube-system/d8-cluster-configuration")
		case strings.HasPrefix(key, p+apiServerPodsKey):
			if sv := fromMirrorPod(v.Object); sv.Version != nil {
				pods = append(pods, sv)
			}
		}
	}
	switch {
	case kubeadm.Version != nil:
		return kubeadm, nil
	case deckhouse.Version != nil:
		return deckhouse, nil
	case len(pods) > 0:
		slices.SortStableFunc(pods, func(a, b ServerVersion) int {
			switch {
			case a.Version.LessThan(b.Version):
				return -1
			case b.Version.LessThan(a.Version):
				return 1
			}
			return 0
		})
		if len(pods) > 1 && !pods[0].Version.EqualTo(pods[len(pods)-1].Version) {
			pods[0].From += fmt.Sprintf(", the oldest of %d kube-apiserver Pods (newest %s)", len(pods), pods[len(pods)-1].Raw)
		}
		return pods[0], nil
	}
	return ServerVersion{}, nil
}

// fromConfig reads kubernetesVersion from the YAML document at path in obj
// (a ConfigMap's data, or a Secret's base64 data).
func fromConfig(obj *unstructured.Unstructured, field, name, from string) ServerVersion {
	doc, ok, _ := unstructured.NestedString(obj.Object, field, name)
	if !ok {
		return ServerVersion{}
	}
	if obj.GetKind() == "Secret" {
		var sec corev1.Secret
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &sec); err != nil {
			return ServerVersion{}
		}
		doc = string(sec.Data[name])
	}
	var cc struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cc); err != nil || cc.KubernetesVersion == "" {
		return ServerVersion{}
	}
	v, err := ParseServerVersion(cc.KubernetesVersion)
	if err != nil {
		return ServerVersion{} // "Automatic", "stable-1"
	}
	return ServerVersion{Version: v, Raw: cc.KubernetesVersion, From: from}
}

// fromMirrorPod reads the kube-apiserver image tag of a mirror Pod.
func fromMirrorPod(obj *unstructured.Unstructured) ServerVersion {
	var pod corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pod); err != nil {
		return ServerVersion{}
	}
	if pod.Labels["component"] != "kube-apiserver" {
		return ServerVersion{}
	}
	raw := containerTag(pod.Spec.Containers)
	v, err := ParseServerVersion(raw)
	if raw == "" || err != nil {
		return ServerVersion{}
	}
	return ServerVersion{Version: v, Raw: raw, From: "image tag of Pod kube-system/" + pod.Name}
}

// apiServerImageTag is the image tag of a kube-apiserver static pod
// manifest's kube-apiserver container.
func apiServerImageTag(manifest []byte) string {
	var pod corev1.Pod
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		return ""
	}
	return containerTag(pod.Spec.Containers)
}

// containerTag is the tag of the kube-apiserver container's image (the
// first container's when none has that name), "" when it has none (an
// image by digest only, as Deckhouse runs them).
func containerTag(cs []corev1.Container) string {
	if len(cs) == 0 {
		return ""
	}
	image := cs[0].Image
	for _, c := range cs {
		if c.Name == "kube-apiserver" {
			image = c.Image
		}
	}
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndexByte(image, ':')
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}
