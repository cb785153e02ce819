package kubestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	jsonserializer "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// DefaultPrefix is kube-apiserver's default --etcd-prefix.
const DefaultPrefix = "/registry"

// DefaultStart is the clock's first reading when [Options.Start] is zero.
var DefaultStart = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

// LastAppliedAnnotation is the annotation `kubectl apply` (client side)
// records the applied manifest in.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Options configures a [Writer]. The zero value is usable.
type Options struct {
	// Prefix is the etcd key prefix (kube-apiserver --etcd-prefix);
	// default [DefaultPrefix].
	Prefix string
	// Seed makes uids (and, with DeterministicCrypto, IVs) reproducible.
	Seed uint64
	// Start is the clock's first reading (truncated to seconds, as the
	// apiserver stores timestamps); default [DefaultStart].
	Start time.Time
	// Step is how far the clock advances after each write; default 1s.
	Step time.Duration
	// Encryption lists the keys for encryption at rest. Resources not
	// listed are stored in plain text (identity).
	Encryption []EncryptionKey
	// DeterministicCrypto draws IVs and nonces from a stream seeded by
	// Seed instead of crypto/rand. Only for reproducible fixtures: reusing
	// nonces across runs is fine for test data and nothing else.
	DeterministicCrypto bool
	// StorageVersions overrides the version built-in kinds are stored at,
	// e.g. {discovery.k8s.io EndpointSlice: "v1beta1"} to mimic an older
	// cluster. The default is the version of the object passed in, except
	// CRDs, which kube-apiserver stores as apiextensions.k8s.io/v1beta1.
	StorageVersions map[schema.GroupKind]string
	// Defaulter, if set, is applied to every object after the
	// last-applied annotation is computed and before metadata is set: it
	// stands in for the apiserver's defaulting.
	Defaulter func(runtime.Object)
	// Manager is the field manager of creates; default
	// "kubectl-client-side-apply".
	Manager string
	// NoLastApplied skips the kubectl last-applied annotation.
	NoLastApplied bool
	// NoManagedFields skips managedFields (faster bulk loads).
	NoManagedFields bool
}

// Writer stores objects into etcd as kube-apiserver does. It remembers the
// metadata of what it wrote so that updates keep uid and creation time and
// bump generation. A Writer is not safe for concurrent use.
type Writer struct {
	c      *clientv3.Client
	opts   Options
	scheme *runtime.Scheme
	pb     runtime.Serializer
	js     runtime.Serializer
	uids   *rand.Rand
	det    io.Reader
	now    time.Time
	enc    map[string]*encrypter
	state  map[string]runtime.Object
	fields *fieldsComputer
}

// New returns a Writer that writes through c. c may be nil when only the
// Prepare methods are used.
func New(c *clientv3.Client, opts Options) (*Writer, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	if opts.Step == 0 {
		opts.Step = time.Second
	}
	if opts.Manager == "" {
		opts.Manager = "kubectl-client-side-apply"
	}
	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	apiextensionsinstall.Install(sch)
	if err := apiregistrationv1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	w := &Writer{
		c:      c,
		opts:   opts,
		scheme: sch,
		pb:     protobuf.NewSerializer(sch, sch),
		js:     jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, sch, sch, jsonserializer.SerializerOptions{}),
		uids:   rand.New(rand.NewPCG(opts.Seed, 0x6b75626573746f72)),
		now:    opts.Start.UTC().Truncate(time.Second),
		enc:    map[string]*encrypter{},
		state:  map[string]runtime.Object{},
	}
	if opts.DeterministicCrypto {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], opts.Seed)
		copy(seed[8:], "kubestore-deterministic-iv")
		w.det = rand.NewChaCha8(seed)
	}
	for _, k := range opts.Encryption {
		if _, ok := w.enc[k.Resource]; ok {
			continue // later keys only decrypt; the first one writes
		}
		e, err := newEncrypter(k, w.det)
		if err != nil {
			return nil, err
		}
		w.enc[k.Resource] = e
	}
	if !opts.NoManagedFields {
		w.fields = newFieldsComputer(sch)
	}
	return w, nil
}

// Scheme returns the scheme the writer encodes with: client-go's built-in
// types plus apiextensions (internal, v1, v1beta1) and apiregistration v1.
func (w *Writer) Scheme() *runtime.Scheme { return w.scheme }

// Prefix returns the key prefix.
func (w *Writer) Prefix() string { return w.opts.Prefix }

// Now returns the time the next write will be stamped with.
func (w *Writer) Now() time.Time { return w.now }

// EncryptionConfigYAML renders the writer's encryption keys as an
// EncryptionConfiguration file.
func (w *Writer) EncryptionConfigYAML() []byte { return EncryptionConfigYAML(w.opts.Encryption) }

// target describes where and how one object is stored.
type target struct {
	key      string
	gvk      schema.GroupVersionKind
	resource string // for encryption lookup: "secrets", "deployments.apps", "widgets.example.com"
	cr       bool
	gen      bool
}

// KeyFor returns the etcd key of a built-in object.
func (w *Writer) KeyFor(obj runtime.Object) (string, error) {
	t, err := w.targetOf(obj)
	return t.key, err
}

func (w *Writer) targetOf(obj runtime.Object) (target, error) {
	gvk, err := w.gvkOf(obj)
	if err != nil {
		return target{}, err
	}
	ki, err := lookupKind(gvk.GroupKind())
	if err != nil {
		return target{}, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return target{}, fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	key, err := Key(w.opts.Prefix, gvk.GroupKind(), m.GetNamespace(), m.GetName())
	if err != nil {
		return target{}, err
	}
	return target{key: key, gvk: gvk, resource: resourceName(gvk.Group, ki.path), gen: ki.generation}, nil
}

func (w *Writer) crTarget(u *unstructured.Unstructured, plural string) (target, error) {
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return target{}, fmt.Errorf("custom resource %q: apiVersion and kind must be set", u.GetName())
	}
	key, err := CRKey(w.opts.Prefix, gvk.Group, plural, u.GetNamespace(), u.GetName())
	if err != nil {
		return target{}, err
	}
	return target{key: key, gvk: gvk, resource: plural + "." + gvk.Group, cr: true, gen: true}, nil
}

// resourceName maps a key path to the resource name an
// EncryptionConfiguration uses.
func resourceName(group, path string) string {
	special := map[string]string{
		"services/specs": "services", "services/endpoints": "endpoints", "minions": "nodes",
		"controllers": "replicationcontrollers", "ingress": "ingresses",
	}
	r, ok := special[path]
	if !ok {
		r = path[strings.LastIndex(path, "/")+1:]
	}
	if group != "" && group != "events.k8s.io" {
		r += "." + group
	}
	return r
}

func (w *Writer) gvkOf(obj runtime.Object) (schema.GroupVersionKind, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.GroupVersionKind(), nil
	}
	gvks, _, err := w.scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("object kind: %w", err)
	}
	if len(gvks) == 0 {
		return schema.GroupVersionKind{}, fmt.Errorf("object kind of %T: none registered", obj)
	}
	gvk := gvks[0]
	if gvk.Version == runtime.APIVersionInternal {
		return schema.GroupVersionKind{}, fmt.Errorf("%s: internal version objects cannot be written; pass a versioned type", gvk.Kind)
	}
	return gvk, nil
}

func (w *Writer) tick() metav1.Time {
	t := w.now
	w.now = w.now.Add(w.opts.Step)
	return metav1.NewTime(t)
}

// NewUID returns the next deterministic UID (version 4 layout).
func (w *Writer) NewUID() types.UID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], w.uids.Uint64())
	binary.BigEndian.PutUint64(b[8:], w.uids.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
}

// Create stores a new built-in object (including CRDs and APIServices) as
// `kubectl apply` would create it and returns the etcd revision. obj is
// not modified. It fails if the key already exists.
func (w *Writer) Create(ctx context.Context, obj runtime.Object) (int64, error) {
	key, val, err := w.PrepareCreate(obj)
	if err != nil {
		return 0, err
	}
	return w.putNew(ctx, key, val)
}

// CreateCR stores a custom resource (JSON) under
// <prefix>/<group>/<plural>/... and returns the revision.
func (w *Writer) CreateCR(ctx context.Context, u *unstructured.Unstructured, plural string) (int64, error) {
	key, val, err := w.PrepareCreateCR(u, plural)
	if err != nil {
		return 0, err
	}
	return w.putNew(ctx, key, val)
}

// Update stores a new version of an object this Writer created, as an
// update by field manager `manager` (e.g. "kubectl-set"). uid and
// creationTimestamp are kept; generation is bumped when spec changes.
func (w *Writer) Update(ctx context.Context, obj runtime.Object, manager string) (int64, error) {
	key, val, err := w.PrepareUpdate(obj, manager)
	if err != nil {
		return 0, err
	}
	return w.PutRaw(ctx, key, val)
}

// UpdateCR is [Writer.Update] for a custom resource.
func (w *Writer) UpdateCR(ctx context.Context, u *unstructured.Unstructured, plural, manager string) (int64, error) {
	t, err := w.crTarget(u, plural)
	if err != nil {
		return 0, err
	}
	key, val, err := w.prepareUpdate(t, u, manager)
	if err != nil {
		return 0, err
	}
	return w.PutRaw(ctx, key, val)
}

// Delete deletes the object's key; etcd records a tombstone revision.
func (w *Writer) Delete(ctx context.Context, obj runtime.Object) (int64, error) {
	key, err := w.KeyFor(obj)
	if err != nil {
		return 0, err
	}
	return w.DeleteKey(ctx, key)
}

// DeleteKey deletes key and returns the revision of the deletion. It fails
// if the key does not exist (a real delete of a missing object is a 404).
func (w *Writer) DeleteKey(ctx context.Context, key string) (int64, error) {
	resp, err := w.c.Delete(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", key, err)
	}
	if resp.Deleted == 0 {
		return 0, fmt.Errorf("delete %s: not found", key)
	}
	delete(w.state, key)
	w.tick()
	return resp.Header.Revision, nil
}

// PutRaw stores value under key as is (for special keys such as
// compact_rev_key); opts may attach a lease.
func (w *Writer) PutRaw(ctx context.Context, key string, value []byte, opts ...clientv3.OpOption) (int64, error) {
	resp, err := w.c.Put(ctx, key, string(value), opts...)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// PutObject stores a built-in object under an arbitrary key, protobuf
// encoded, without touching its metadata or encrypting it; for
// RangeAllocations (/registry/ranges/...) and masterleases Endpoints.
func (w *Writer) PutObject(ctx context.Context, key string, obj runtime.Object, opts ...clientv3.OpOption) (int64, error) {
	obj = obj.DeepCopyObject()
	gvk, err := w.gvkOf(obj)
	if err != nil {
		return 0, err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	var buf bytes.Buffer
	if err := w.pb.Encode(obj, &buf); err != nil {
		return 0, fmt.Errorf("encode %s for %s: %w", gvk.Kind, key, err)
	}
	return w.PutRaw(ctx, key, buf.Bytes(), opts...)
}

func (w *Writer) putNew(ctx context.Context, key string, val []byte) (int64, error) {
	// Like the apiserver's create: succeed only if the key is absent.
	resp, err := w.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		delete(w.state, key)
		return 0, fmt.Errorf("create %s: already exists", key)
	}
	return resp.Header.Revision, nil
}

// PrepareCreate does everything [Writer.Create] does except the write:
// it returns the key and stored value and records the object as created.
// Bulk loaders batch these into transactions.
func (w *Writer) PrepareCreate(obj runtime.Object) (key string, val []byte, err error) {
	t, err := w.targetOf(obj)
	if err != nil {
		return "", nil, err
	}
	return w.prepareCreate(t, obj.DeepCopyObject())
}

// PrepareCreateCR is [Writer.PrepareCreate] for a custom resource.
func (w *Writer) PrepareCreateCR(u *unstructured.Unstructured, plural string) (key string, val []byte, err error) {
	t, err := w.crTarget(u, plural)
	if err != nil {
		return "", nil, err
	}
	return w.prepareCreate(t, u.DeepCopy())
}

// PrepareUpdate is [Writer.Update] without the write.
func (w *Writer) PrepareUpdate(obj runtime.Object, manager string) (key string, val []byte, err error) {
	t, err := w.targetOf(obj)
	if err != nil {
		return "", nil, err
	}
	return w.prepareUpdate(t, obj, manager)
}

func (w *Writer) prepareCreate(t target, obj runtime.Object) (string, []byte, error) {
	if _, ok := w.state[t.key]; ok {
		return "", nil, fmt.Errorf("create %s: already exists", t.key)
	}
	obj.GetObjectKind().SetGroupVersionKind(t.gvk)
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", t.key, err)
	}
	if !w.opts.NoLastApplied {
		la, err := lastApplied(obj)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", t.key, err)
		}
		ann := m.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[LastAppliedAnnotation] = la
		m.SetAnnotations(ann)
	}
	if w.opts.Defaulter != nil {
		w.opts.Defaulter(obj)
	}
	now := w.tick()
	m.SetResourceVersion("")
	m.SetSelfLink("")
	if m.GetUID() == "" {
		m.SetUID(w.NewUID())
	}
	m.SetCreationTimestamp(now)
	m.SetGeneration(0)
	if t.gen {
		m.SetGeneration(1)
	}
	m.SetManagedFields(nil)
	if w.fields != nil {
		set, err := w.fields.fieldSet(obj, t)
		if err != nil {
			return "", nil, fmt.Errorf("managed fields of %s: %w", t.key, err)
		}
		mf, err := managedEntry(w.opts.Manager, t.gvk.GroupVersion().String(), now, set)
		if err != nil {
			return "", nil, fmt.Errorf("managed fields of %s: %w", t.key, err)
		}
		m.SetManagedFields([]metav1.ManagedFieldsEntry{mf})
	}
	val, err := w.encode(t, obj)
	if err != nil {
		return "", nil, err
	}
	w.state[t.key] = obj
	return t.key, val, nil
}

func (w *Writer) prepareUpdate(t target, in runtime.Object, manager string) (string, []byte, error) {
	prev, ok := w.state[t.key]
	if !ok {
		return "", nil, fmt.Errorf("update %s: not created by this writer", t.key)
	}
	obj := in.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(t.gvk)
	if w.opts.Defaulter != nil {
		w.opts.Defaulter(obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", t.key, err)
	}
	pm, err := meta.Accessor(prev)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", t.key, err)
	}
	now := w.tick()
	m.SetResourceVersion("")
	m.SetUID(pm.GetUID())
	m.SetCreationTimestamp(pm.GetCreationTimestamp())
	m.SetGeneration(pm.GetGeneration())
	if t.gen {
		changed, err := specChanged(prev, obj)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", t.key, err)
		}
		if changed {
			m.SetGeneration(pm.GetGeneration() + 1)
		}
	}
	m.SetManagedFields(pm.GetManagedFields())
	if w.fields != nil {
		mf, err := w.fields.update(prev, obj, t, manager, now)
		if err != nil {
			return "", nil, fmt.Errorf("managed fields of %s: %w", t.key, err)
		}
		m.SetManagedFields(mf)
	}
	val, err := w.encode(t, obj)
	if err != nil {
		return "", nil, err
	}
	w.state[t.key] = obj
	return t.key, val, nil
}

// Stored returns a copy of the object last written under key, with the
// metadata the writer set, or nil.
func (w *Writer) Stored(key string) runtime.Object {
	if o, ok := w.state[key]; ok {
		return o.DeepCopyObject()
	}
	return nil
}

func specChanged(a, b runtime.Object) (bool, error) {
	ua, err := toUnstructured(a)
	if err != nil {
		return false, err
	}
	ub, err := toUnstructured(b)
	if err != nil {
		return false, err
	}
	return !reflect.DeepEqual(ua["spec"], ub["spec"]), nil
}

func toUnstructured(obj runtime.Object) (map[string]any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return runtime.DeepCopyJSON(u.Object), nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("to unstructured: %w", err)
	}
	return m, nil
}

// lastApplied renders obj as kubectl records it: the manifest as given,
// sorted keys, annotations present (empty if none), a trailing newline.
func lastApplied(obj runtime.Object) (string, error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return "", err
	}
	delete(u, "status")
	prune(u)
	md, _ := u["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		u["metadata"] = md
	}
	// What the user wrote, not what the server assigns.
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"} {
		delete(md, k)
	}
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	delete(ann, LastAppliedAnnotation)
	md["annotations"] = ann
	b, err := json.Marshal(u)
	if err != nil {
		return "", fmt.Errorf("marshal last-applied: %w", err)
	}
	return string(b) + "\n", nil
}

// prune drops nulls and empty maps, which Go structs produce but a
// hand-written manifest does not contain.
func prune(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		for k, c := range t {
			if prune(c) {
				delete(t, k)
			}
		}
		return len(t) == 0
	case []any:
		for _, c := range t {
			prune(c)
		}
	}
	return false
}

// encode converts obj to its storage version and serialization, then
// encrypts it if its resource is configured for encryption.
func (w *Writer) encode(t target, obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	switch {
	case t.cr:
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("encode %s: custom resource is %T, want *unstructured.Unstructured", t.key, obj)
		}
		// Sorted keys and a newline: what the apiserver's unstructured
		// JSON encoder writes.
		b, err := json.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", t.key, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	default:
		out, err := w.toStorageVersion(t, obj)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", t.key, err)
		}
		ser := w.pb
		if g := t.gvk.Group; g == "apiextensions.k8s.io" || g == "apiregistration.k8s.io" {
			ser = w.js
		}
		if err := ser.Encode(out, &buf); err != nil {
			return nil, fmt.Errorf("encode %s: %w", t.key, err)
		}
	}
	if e, ok := w.enc[t.resource]; ok {
		return e.encrypt(t.key, buf.Bytes())
	}
	return buf.Bytes(), nil
}

func (w *Writer) toStorageVersion(t target, obj runtime.Object) (runtime.Object, error) {
	gk := t.gvk.GroupKind()
	version := t.gvk.Version
	if gk.Group == "apiextensions.k8s.io" {
		version = apiextensionsv1beta1.SchemeGroupVersion.Version
	}
	if v, ok := w.opts.StorageVersions[gk]; ok {
		version = v
	}
	if version == t.gvk.Version {
		return obj, nil
	}
	to := gk.WithVersion(version)
	// Convert through the internal (hub) version where the scheme has one
	// (apiextensions): versioned types convert only to and from it.
	hub, err := w.scheme.ConvertToVersion(obj, schema.GroupVersion{Group: gk.Group, Version: runtime.APIVersionInternal})
	if err == nil {
		var out runtime.Object
		if out, err = w.scheme.ConvertToVersion(hub, to.GroupVersion()); err == nil {
			return out, nil
		}
	}
	// client-go's scheme has no internal types for built-ins, so there is
	// no converter; old and new schemas are close enough that a JSON round
	// trip carries every field both versions share.
	nobj, nerr := w.scheme.New(to)
	if nerr != nil {
		return nil, fmt.Errorf("convert to %s: %w", to, errors.Join(err, nerr))
	}
	b, merr := json.Marshal(obj)
	if merr != nil {
		return nil, fmt.Errorf("convert to %s: %w", to, merr)
	}
	if uerr := json.Unmarshal(b, nobj); uerr != nil {
		return nil, fmt.Errorf("convert to %s: %w", to, uerr)
	}
	nobj.GetObjectKind().SetGroupVersionKind(to)
	return nobj, nil
}

// sortManaged orders entries as the apiserver's encoder does: entries
// without a time first, then by time, then by manager name.
func sortManaged(mf []metav1.ManagedFieldsEntry) {
	sort.SliceStable(mf, func(i, j int) bool {
		a, b := mf[i], mf[j]
		if (a.Time == nil) != (b.Time == nil) {
			return a.Time == nil
		}
		if a.Time != nil && !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		return a.Manager < b.Manager
	})
}
