package timeline

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/etcdsafe/etcdsafe/decode"
)

// Object names what a timeline follows: TYPE/NAME with an optional
// namespace, or one raw etcd key.
type Object struct {
	// Type is a kubectl-style type ("deployment", "deploy",
	// "deployments.apps"); a custom resource is named PLURAL.GROUP
	// ("widgets.example.com"), since the backups' CRDs are not read.
	Type      string `json:"type,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Resource is the type resolved ("deployments.apps"), set by Run.
	Resource string `json:"resource,omitempty"`
	// Key is a raw etcd key, instead of Type and Name.
	Key string `json:"-"`
	// Prefix is kube-apiserver's --etcd-prefix; default "/registry".
	Prefix string `json:"-"`

	namespaced bool
}

// String is how messages name the object.
func (o Object) String() string {
	if o.Key != "" {
		return "key " + o.Key
	}
	s := o.Type + "/" + o.Name
	if o.Namespace != "" {
		s += " in namespace " + o.Namespace
	}
	return s
}

// UsageError is an object that names nothing: an unknown type, a
// missing name.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// matcher tells the object's keys: one exact key, or a name in any
// namespace of a resource.
type matcher struct {
	exact  []byte
	prefix []byte // the resource's keys: PREFIX/KEYPATH/
	suffix []byte // "/NAME"
	// scopeUnknown: a custom resource whose scope is unknown: both
	// PREFIX/KEYPATH/NAME and PREFIX/KEYPATH/NS/NAME match
	scopeUnknown bool
}

func (m *matcher) match(k []byte) bool {
	if m.exact != nil {
		return bytes.Equal(k, m.exact)
	}
	if !bytes.HasPrefix(k, m.prefix) || !bytes.HasSuffix(k, m.suffix) || len(k) <= len(m.prefix)+len(m.suffix) {
		return m.scopeUnknown && len(k) == len(m.prefix)+len(m.suffix)-1 && bytes.HasPrefix(k, m.prefix) && bytes.HasSuffix(k, m.suffix[1:])
	}
	ns := k[len(m.prefix) : len(k)-len(m.suffix)]
	return len(ns) > 0 && bytes.IndexByte(ns, '/') < 0
}

// matcher resolves the object's type and returns its matcher; it fills
// in Resource.
func (o *Object) matcher() (*matcher, error) {
	if o.Prefix == "" {
		o.Prefix = "/registry"
	}
	prefix := strings.TrimSuffix(o.Prefix, "/")
	if o.Key != "" {
		return &matcher{exact: []byte(o.Key)}, nil
	}
	if o.Type == "" || o.Name == "" || strings.ContainsAny(o.Name, "/\x00") || strings.ContainsAny(o.Namespace, "/\x00") {
		return nil, &UsageError{fmt.Sprintf("timeline needs one object, TYPE/NAME (got %q/%q)", o.Type, o.Name)}
	}
	var keyPath string
	scopeUnknown := false
	r, err := decode.BuiltinResources().Resolve(o.Type)
	switch {
	case err == nil:
		keyPath, o.namespaced, o.Resource = r.KeyPath, r.Namespaced, r.GroupResource()
	case errors.Is(err, decode.ErrUnknownResource) && strings.Contains(o.Type, "."):
		plural, group, _ := strings.Cut(strings.ToLower(o.Type), ".")
		keyPath, o.Resource = group+"/"+plural, plural+"."+group
		o.namespaced, scopeUnknown = o.Namespace != "", o.Namespace == ""
	case errors.Is(err, decode.ErrUnknownResource):
		return nil, &UsageError{fmt.Sprintf("unknown type %q: name a custom resource by PLURAL.GROUP (its CRDs are not read)", o.Type)}
	default:
		return nil, &UsageError{err.Error()}
	}
	base := prefix + "/" + keyPath + "/"
	switch {
	case !o.namespaced && !scopeUnknown:
		o.Namespace = ""
		return &matcher{exact: []byte(base + o.Name)}, nil
	case o.Namespace != "":
		return &matcher{exact: []byte(base + o.Namespace + "/" + o.Name)}, nil
	}
	return &matcher{prefix: []byte(base), suffix: []byte("/" + o.Name), scopeUnknown: scopeUnknown}, nil
}
