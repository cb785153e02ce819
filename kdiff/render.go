package kdiff

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
)

// Object is one reported change: an object (or a key) added, deleted or
// changed. Its JSON form is part of `etcdsafe diff -o json`.
type Object struct {
	// Change is "added", "deleted" or "changed".
	Change string `json:"change"`
	// Key is the etcd key.
	Key string `json:"key"`
	// Kind, APIVersion, Resource ("deployments.apps"), Namespace and Name
	// say what the key holds; Kind is "" for a key that names no object.
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	Resource   string `json:"resource,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	// A and B describe the value on each side; nil on the side that
	// lacks the key.
	A *Version `json:"a,omitempty"`
	B *Version `json:"b,omitempty"`
	// Undecoded says why the values were compared as bytes, not as
	// objects ("not a Kubernetes object", a decode error): the change is
	// then told by sizes and digests only.
	Undecoded string `json:"undecoded,omitempty"`
	// Diff is the unified diff of the two create-ready YAML documents
	// (from /dev/null for an added object, to it for a deleted one),
	// Secret values masked; "" for keys compared as bytes and with
	// [Options.Stat].
	Diff string `json:"diff,omitempty"`
	// NoiseOnly: a changed object whose only differences were noise. It
	// is counted, not emitted.
	NoiseOnly bool `json:"-"`

	group, rel string // API group; path in the diff's file names
	after      map[string]any
	problems   []sideProblem
}

type sideProblem struct {
	side string
	err  error
}

// Version is one side's value of a changed key.
type Version struct {
	// Revision is the mod revision; CreateRevision the create revision.
	Revision       int64 `json:"revision"`
	CreateRevision int64 `json:"createRevision"`
	// Size is the stored value's size in bytes; Encryption its
	// encryption-at-rest provider ("identity" when none).
	Size       int    `json:"size"`
	Encryption string `json:"encryption"`
	// SHA256 is the stored value's digest, given only for an Undecoded
	// change whose value is neither a Secret's nor encrypted.
	SHA256 string `json:"sha256,omitempty"`
}

// kindLabel is Kind with its group ("Certificate.cert-manager.io"), or
// "(key)".
func (o *Object) kindLabel() string {
	switch {
	case o.Kind == "":
		return "(key)"
	case o.group != "":
		return o.Kind + "." + o.group
	}
	return o.Kind
}

// Label is how text output names the object: "Deployment payments/api",
// "ClusterRole view", or the key.
func (o *Object) Label() string {
	if o.Kind == "" {
		return o.Key
	}
	if o.Namespace != "" {
		return o.kindLabel() + " " + o.Namespace + "/" + o.Name
	}
	return o.kindLabel() + " " + o.Name
}

// IsEvent says whether o is an Event (core or events.k8s.io).
func (o *Object) IsEvent() bool {
	return o.Kind == "Event" && (o.group == "" || o.group == "events.k8s.io")
}

// maskNote is what replaces a Secret's value.
func maskNote(n int, state string) string {
	if state == "" {
		return fmt.Sprintf("(masked, %d bytes)", n)
	}
	return fmt.Sprintf("(masked, %d bytes, %s)", n, state)
}

// render decodes, cleans, masks and diffs change i; with Stat and not
// full, an added or deleted object is only counted. It runs on the
// workers and writes nothing shared.
func (p *Plan) render(i int, full bool) *Object {
	c := &p.Changes[i]
	o := &Object{Key: c.Key, Change: map[inspect.ChangeKind]string{inspect.Added: "added", inspect.Deleted: "deleted", inspect.Modified: "changed"}[c.Kind]}
	if c.Known && !c.Info.Resource.Internal {
		r := c.Info.Resource
		o.Kind, o.Namespace, o.Name, o.Resource, o.group = r.Kind, c.Info.Namespace, c.Info.Name, r.GroupResource(), r.Group
		o.APIVersion = r.Version
		if r.Group != "" {
			o.APIVersion = r.Group + "/" + r.Version
		}
		o.rel = r.GroupResource() + "/"
		if o.Namespace != "" {
			o.rel += o.Namespace + "/"
		}
		o.rel += o.Name
	}
	if c.A != nil {
		o.A = version(c.A)
	}
	if c.B != nil {
		o.B = version(c.B)
	}
	brief := p.o.Stat || !p.o.EventDiffs && o.IsEvent()
	if brief && !full && c.Kind != inspect.Modified {
		return o
	}
	var objA, objB *unstructured.Unstructured
	var valA, valB []byte
	var errA, errB error
	if c.A != nil {
		objA, valA, errA = p.renderSide(p.a, c.A, c.Info.Resource.Group)
	}
	if c.B != nil {
		objB, valB, errB = p.renderSide(p.b, c.B, c.Info.Resource.Group)
	}
	for _, e := range []struct {
		side string
		err  error
	}{{"A", errA}, {"B", errB}} {
		if e.err != nil && !errors.Is(e.err, source.ErrNotObject) {
			o.problems = append(o.problems, sideProblem{e.side, e.err})
		}
	}
	if errA != nil || errB != nil {
		p.asKey(o, c, valA, valB, cmpErr(errA, errB))
		return o
	}
	if objB != nil {
		o.after = objB.Object
	}
	secret := isSecret(objA) || isSecret(objB)
	if secret && !p.o.ShowSecrets {
		maskSecrets(objA, objB)
	}
	ya, err := marshal(objA)
	if err == nil {
		var yb string
		if yb, err = marshal(objB); err == nil {
			if c.Kind == inspect.Modified && ya == yb {
				o.NoiseOnly = true
				return o
			}
			if !brief || full {
				o.Diff, err = unified(ya, yb, o.rel, c.Key)
			}
		}
	}
	if err != nil {
		o.problems = append(o.problems, sideProblem{"", fmt.Errorf("diff: %w", err)})
		p.asKey(o, c, valA, valB, err.Error())
	}
	return o
}

func cmpErr(a, b error) string {
	for _, e := range []error{a, b} {
		if errors.Is(e, source.ErrNotObject) {
			return source.ErrNotObject.Error()
		}
	}
	for _, e := range []error{a, b} {
		if e != nil {
			return e.Error()
		}
	}
	return ""
}

// asKey makes o a change told by sizes and digests. compact_rev_key,
// which records the last compaction, changes with every compaction: noise.
func (p *Plan) asKey(o *Object, c *Change, valA, valB []byte, why string) {
	o.Undecoded = why
	o.Diff = ""
	if c.Kind == inspect.Modified && c.Key == decode.CompactRevKey {
		o.NoiseOnly = true
		return
	}
	secret := c.Known && c.Info.Resource.Group == "" && c.Info.Resource.Kind == "Secret"
	for _, v := range []struct {
		ver *Version
		val []byte
	}{{o.A, valA}, {o.B, valB}} {
		if v.ver != nil && v.val != nil && !secret && v.ver.Encryption == "identity" {
			sum := sha256.Sum256(v.val)
			v.ver.SHA256 = hex.EncodeToString(sum[:])
		}
	}
}

func version(e *inspect.Entry) *Version {
	return &Version{Revision: e.ModRevision, CreateRevision: e.CreateRevision, Size: int(e.ValueSize), Encryption: e.Encryption()}
}

// renderSide reads e from s and renders it create-ready. The value is
// returned for a key compared as bytes.
func (p *Plan) renderSide(s *source.Source, e *inspect.Entry, group string) (*unstructured.Unstructured, []byte, error) {
	rec, err := s.Snapshot.Get(e.Rev)
	if err != nil {
		return nil, nil, err
	}
	ro := source.RenderOptions{Present: decode.PresentOptions{AsGroup: group, Clean: decode.CleanOptions{KeepStatus: p.o.IncludeStatus}}}
	obj, _, err := s.RenderRecord(rec, ro)
	return obj, rec.Value, err
}

func isSecret(o *unstructured.Unstructured) bool {
	return o != nil && o.GetKind() == "Secret" && o.GetAPIVersion() == "v1"
}

// maskSecrets replaces the values of data, stringData and the
// last-applied annotation (which holds them too) in a and b (either may
// be nil) by their length and, where both sides hold the key, whether the
// value changed: a change stays visible, the values do not, and no digest
// of them (a short password's digest is as good as the password).
func maskSecrets(a, b *unstructured.Unstructured) {
	type field struct {
		path   []string
		base64 bool
	}
	for _, f := range []field{{[]string{"data"}, true}, {[]string{"stringData"}, false}, {[]string{"metadata", "annotations"}, false}} {
		ma, mb := stringMap(a, f.path), stringMap(b, f.path)
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		for k := range keys {
			if f.path[0] == "metadata" && k != "kubectl.kubernetes.io/last-applied-configuration" {
				continue
			}
			va, inA := ma[k].(string)
			vb, inB := mb[k].(string)
			state := [2]string{}
			if inA && inB && va != vb {
				state = [2]string{"old value", "new value"}
			}
			if _, ok := ma[k]; ok {
				ma[k] = maskNote(valueLen(va, f.base64), state[0])
			}
			if _, ok := mb[k]; ok {
				mb[k] = maskNote(valueLen(vb, f.base64), state[1])
			}
		}
	}
}

func stringMap(o *unstructured.Unstructured, path []string) map[string]any {
	if o == nil {
		return nil
	}
	m := o.Object
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func valueLen(v string, b64 bool) int {
	if b64 {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			return len(b)
		}
	}
	return len(v)
}

// marshal is the YAML `etcdsafe get` prints; "" for nil.
func marshal(o *unstructured.Unstructured) (string, error) {
	if o == nil {
		return "", nil
	}
	b, err := yamlv2.Marshal(o.Object)
	return string(b), err
}

// unified is the unified diff of two YAML documents, named a/REL and
// b/REL (or by key), /dev/null for a missing side.
func unified(a, b, rel, key string) (string, error) {
	if rel == "" {
		rel = strings.TrimPrefix(key, "/")
	}
	from, to := "a/"+rel, "b/"+rel
	if a == "" {
		from = "/dev/null"
	}
	if b == "" {
		to = "/dev/null"
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: lines(a), B: lines(b), FromFile: from, ToFile: to, Context: 3})
}

// lines splits s after each newline, without difflib.SplitLines's empty
// last line.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}
