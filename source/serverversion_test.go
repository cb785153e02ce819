package source_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
)

func serverVersionOf(t *testing.T, path string, o source.Options, rev int64) source.ServerVersion {
	t.Helper()
	s, err := source.Open(t.Context(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sv, err := s.ServerVersion(t.Context(), rev)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// The real snapshots say which kube-apiserver wrote them through the
// kubeadm-config ConfigMap mksnapshot uploads as kubeadm does; the v1.37
// one has none.
func TestServerVersionOfRealSnapshots(t *testing.T) {
	t.Parallel()
	for dir, want := range map[string]string{
		"real-k8s1.30-etcd3.5": "v1.30.14",
		"real-k8s1.33-etcd3.5": "v1.33.13",
		"real-k8s1.37-etcd3.7": "",
	} {
		t.Run(dir, func(t *testing.T) {
			sv := serverVersionOf(t, filepath.Join("../testdata", dir, "snapshot.db"), source.Options{}, 0)
			if sv.Raw != want {
				t.Fatalf("version %q (%v, from %q), want %q", sv.Raw, sv.Version, sv.From, want)
			}
			if want != "" && (sv.Version == nil || sv.From != "kubernetesVersion in ConfigMap kube-system/kubeadm-config") {
				t.Errorf("version %v from %q", sv.Version, sv.From)
			}
		})
	}
}

// An archive names the version its master's kube-apiserver manifest runs.
func TestServerVersionOfArchive(t *testing.T) {
	t.Parallel()
	p := makeArchive(t, nil)
	sv := serverVersionOf(t, p, source.Options{AllowUnencrypted: true}, 0)
	if sv.Raw != "v1.31.4" || sv.Version.Minor() != 31 || !strings.Contains(sv.From, "kubernetes/manifests/kube-apiserver.yaml") {
		t.Fatalf("%+v", sv)
	}
	// at an older revision the manifest (taken with the newest) says
	// nothing; the demo db names no version
	if sv := serverVersionOf(t, p, source.Options{AllowUnencrypted: true}, 20); sv.Version != nil {
		t.Fatalf("at revision 20: %+v", sv)
	}
}

// Without kubeadm-config: Deckhouse's cluster configuration (a Secret,
// encrypted at rest), else the kube-apiserver mirror Pods, the oldest when
// masters differ. Each at the revision asked for.
func TestServerVersionSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w, err := kubestore.New(srv.Client, demodata.WriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	must := func(rev int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	mirror := func(node, image string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-apiserver-" + node,
				Labels: map[string]string{"component": "kube-apiserver", "tier": "control-plane"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{
				{Name: "sidecar", Image: "registry.example.com/sidecar:v9.9.9"},
				{Name: "kube-apiserver", Image: image},
			}},
		}
	}
	must(w.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-apiserver-proxy",
		Labels: map[string]string{"app": "proxy"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Image: "proxy:v1.20.0"}}}}))
	noVersion := must(w.Create(ctx, mirror("m0", "registry.deckhouse.io/deckhouse/ce@sha256:0123")))
	must(w.Create(ctx, mirror("m1", "registry.k8s.io/kube-apiserver:v1.32.2")))
	pods := must(w.Create(ctx, mirror("m2", "localhost:5000/kube-apiserver:v1.31.4@sha256:0123")))
	d8 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "d8-cluster-configuration"},
		Data: map[string][]byte{"cluster-configuration.yaml": []byte("apiVersion: deckhouse.io/v1\nkind: ClusterConfiguration\nkubernetesVersion: Automatic\n")}}
	automatic := must(w.Create(ctx, d8))
	d8.Data["cluster-configuration.yaml"] = []byte("apiVersion: deckhouse.io/v1\nkind: ClusterConfiguration\nkubernetesVersion: \"1.29\"\n")
	deckhouse := must(w.Update(ctx, d8, "deckhouse"))
	kubeadm := must(w.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.32.2\n"}}))
	db := filepath.Join(t.TempDir(), "s.db")
	if _, err := snapshot.Save(ctx, srv.Client, db); err != nil {
		t.Fatal(err)
	}
	o := source.Options{DecryptionConfig: w.EncryptionConfigYAML()}
	cases := []struct {
		rev        int64
		raw, from  string
		orUnknown  bool
		withoutKey bool
	}{
		{rev: noVersion, orUnknown: true},
		{rev: pods, raw: "v1.31.4", from: "image tag of Pod kube-system/kube-apiserver-m2, the oldest of 2 kube-apiserver Pods (newest v1.32.2)"},
		{rev: automatic, raw: "v1.31.4", from: "image tag of Pod kube-system/kube-apiserver-m2, the oldest of 2 kube-apiserver Pods (newest v1.32.2)"},
		{rev: deckhouse, raw: "1.29", from: "kubernetesVersion in Secret kube-system/d8-cluster-configuration"},
		// without the key the Secret tells nothing: the Pods do
		{rev: deckhouse, raw: "v1.31.4", withoutKey: true, from: "image tag of Pod kube-system/kube-apiserver-m2, the oldest of 2 kube-apiserver Pods (newest v1.32.2)"},
		{rev: kubeadm, raw: "v1.32.2", from: "kubernetesVersion in ConfigMap kube-system/kubeadm-config"},
		{rev: 0, raw: "v1.32.2", from: "kubernetesVersion in ConfigMap kube-system/kubeadm-config"},
	}
	for _, tc := range cases {
		o := o
		if tc.withoutKey {
			o = source.Options{}
		}
		sv := serverVersionOf(t, db, o, tc.rev)
		if tc.orUnknown {
			if sv.Version != nil {
				t.Errorf("revision %d: %+v, want none", tc.rev, sv)
			}
			continue
		}
		if sv.Raw != tc.raw || sv.From != tc.from || sv.Version == nil {
			t.Errorf("revision %d: %q from %q, want %q from %q", tc.rev, sv.Raw, sv.From, tc.raw, tc.from)
		}
	}
}

func TestParseServerVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1.30": "1.30", "v1.30.14": "1.30.14", "v1.31.2-eks-7f9249a": "1.31.2", " v1.29.0+k3s1 ": "1.29.0"} {
		v, err := source.ParseServerVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("%q: %v, %v; want %s", in, v, err, want)
		}
	}
	for _, in := range []string{"", "Automatic", "1", "v2.0.0", "latest"} {
		if v, err := source.ParseServerVersion(in); err == nil {
			t.Errorf("%q: %v, want an error", in, v)
		}
	}
}

// TestLabelsMatchDecode: on every value of the real snapshots and the demo
// (history included, Secrets decrypted), the labels decode.Decoder.Labels
// reads from the wire are the ones a full decode finds, and it fails
// where a full decode fails.
func TestLabelsMatchDecode(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"real-k8s1.30-etcd3.5", "real-k8s1.33-etcd3.5", "real-k8s1.37-etcd3.7", "generated"} {
		t.Run(dir, func(t *testing.T) {
			db, enc := filepath.Join("../testdata", dir, "snapshot.db"), filepath.Join("../testdata", dir, "encryption-config.yaml")
			if dir == "generated" {
				db = filepath.Join("../testdata", dir, "demo.db")
			}
			s, err := source.Open(t.Context(), db, source.Options{DecryptionConfigPath: enc})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n, labelled := 0, 0
			_, err = s.Snapshot.Records(t.Context(), func(rec inspect.Record) error {
				if rec.Rev.Tombstone || len(rec.Value) == 0 {
					return nil
				}
				switch decode.SniffEncoding(rec.Value) {
				case decode.EncodingText, decode.EncodingEmpty:
					return nil
				}
				v, derr := s.Decoder.Decode(rec.Key, rec.Value)
				got, lerr := s.Decoder.Labels(rec.Key, rec.Value)
				if (derr == nil) != (lerr == nil) {
					t.Errorf("%s@%d: Decode error %v, Labels error %v", rec.Key, rec.Rev.Main, derr, lerr)
					return nil
				}
				if derr != nil {
					return nil
				}
				want := v.Object.GetLabels()
				if len(want) > 0 {
					labelled++
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s@%d: Labels %v, Decode finds %v", rec.Key, rec.Rev.Main, got, want)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n < 50 || labelled < 10 {
				t.Fatalf("only %d values (%d labelled) compared", n, labelled)
			}
			t.Logf("%d values, %d labelled: the same labels", n, labelled)
		})
	}
}
