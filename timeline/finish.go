package timeline

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/etcdsafe/etcdsafe/decode"
)

// finish adds the vanishings, names the events, bounds them in time,
// renders, masks and diffs the versions.
func (t *run) finish() {
	bs := t.res.Backups
	// which backups hold the object live, and where it vanished
	for i := range bs {
		r := bs[i].records
		bs[i].Records = len(r)
		bs[i].Live = len(r) > 0 && !r[len(r)-1].rev.Tombstone
	}
	for i := 0; i+1 < len(bs); i++ {
		if bs[i].Live && bs[i+1].Records == 0 {
			t.vs = append(t.vs, &Version{Event: Vanished, first: i + 1,
				Note: fmt.Sprintf("in %s, not in %s, and no backup holds its deletion (compacted away before the next backup)", bs[i].Name, bs[i+1].Name)})
		}
	}
	t.sortVersions()
	var prev *Version    // the previous version, deletions included
	var prevPut *Version // the previous put that was read
	var prevSecret map[string][32]byte
	for _, v := range t.vs {
		if len(v.obs) > 0 {
			v.FirstSeen, v.LastSeen, v.SeenIn = bs[v.obs[0]].Name, bs[v.obs[len(v.obs)-1]].Name, len(v.obs)
			last := v.obs[len(v.obs)-1]
			if !v.tomb {
				v.Restore = t.bound(last)
			}
		}
		if v.first > 0 {
			v.After = t.bound(v.first - 1)
		}
		v.Before = t.bound(v.first)
		switch {
		case v.Event == Vanished:
		case v.tomb:
			v.Event = Deleted
		case prev == nil && v.Version == 1:
			v.Event = Created
		case prev == nil:
			v.Event = FirstSeen
			v.Note = joinNote(v.Note, fmt.Sprintf("created at revision %d; no backup holds its earlier versions", v.CreateRevision))
		case prev.tomb || prev.Event == Vanished:
			v.Event = Recreated
		case prev.CreateRevision != v.CreateRevision:
			v.Event = Recreated
			v.Note = joinNote(v.Note, "deleted and re-created between two backups; no backup holds the deletion")
		default:
			v.Event = Updated
		}
		prev = v
		if v.tomb || v.Event == Vanished {
			continue
		}
		if !v.has {
			v.Note = joinNote(v.Note, "its value was not read")
			continue
		}
		if v.val == nil {
			continue // not an object: Note says why
		}
		t.managed(v)
		obj, notes, err := decode.Present(v.val, v.Revision, t.o.Render)
		for _, n := range notes {
			t.o.OnWarning(v.FirstSeen, fmt.Errorf("revision %d: %s", v.Revision, n))
		}
		if err != nil {
			v.Note = joinNote(v.Note, "could not be shown: "+err.Error())
			continue
		}
		if !t.o.ShowSecrets {
			prevSecret = maskSecret(obj, prevSecret)
		}
		// the diff leaves out what every write changes (resourceVersion,
		// and generation with every spec change): the header says which
		// revision, and the diff what the write changed
		cmp := obj.DeepCopy()
		unstructured.RemoveNestedField(cmp.Object, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(cmp.Object, "metadata", "generation")
		b, err := yamlv2.Marshal(cmp.Object)
		if err != nil {
			v.Note = joinNote(v.Note, "could not be shown: "+err.Error())
			continue
		}
		v.Object, v.text = obj.Object, string(b)
		if prevPut != nil && v.Event == Updated {
			d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(prevPut.text), B: difflib.SplitLines(v.text),
				FromFile: fmt.Sprintf("revision %d", prevPut.Revision), ToFile: fmt.Sprintf("revision %d", v.Revision), Context: 3,
			})
			v.Diff = d
		}
		prevPut = v
	}
	t.res.Versions = t.vs
}

func (t *run) sortVersions() {
	vs := t.vs
	// insertion order is (first, revision) but for the vanishings
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && less(vs[j], vs[j-1]); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

func less(a, b *Version) bool {
	if a.first != b.first {
		return a.first < b.first
	}
	if a.Revision != b.Revision {
		return a.Revision < b.Revision
	}
	return a.sub < b.sub
}

func (t *run) bound(i int) *Bound {
	b := &t.res.Backups[i]
	return &Bound{Backup: b.Name, Where: b.Where, Time: b.Time}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// managed takes the newest managedFields entry of the stored object:
// the manager that wrote this version last, and when.
func (t *run) managed(v *Version) {
	var newest time.Time
	for _, e := range v.val.Object.GetManagedFields() {
		if e.Time == nil {
			if v.Manager == "" {
				v.Manager, v.Operation = e.Manager, string(e.Operation)
			}
			continue
		}
		if tm := e.Time.UTC(); !tm.Before(newest) {
			newest = tm
			v.Manager, v.Operation = e.Manager, string(e.Operation)
			v.ManagedTime = &tm
		}
	}
}

// maskSecret replaces the values of a Secret's data and stringData, and
// its last-applied-configuration annotation, by
// "(masked, N bytes)", with ", changed" or ", unchanged" against prev (the
// previous version's value hashes), and returns this version's hashes.
func maskSecret(obj *unstructured.Unstructured, prev map[string][32]byte) map[string][32]byte {
	if obj.GetKind() != "Secret" || obj.GetAPIVersion() != "v1" {
		return prev
	}
	cur := map[string][32]byte{}
	// kubectl apply's annotation holds the whole Secret, data included
	if ann := obj.GetAnnotations(); ann != nil {
		if a, ok := ann[lastApplied]; ok {
			h := sha256.Sum256([]byte(a))
			cur["annotation"] = h
			ann[lastApplied] = maskNote(len(a), prev, "annotation", h)
			obj.SetAnnotations(ann)
		}
	}
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj.Object[field].(map[string]any)
		if !ok {
			continue
		}
		for k, val := range m {
			s, _ := val.(string)
			raw := []byte(s)
			if field == "data" {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil {
					raw = b
				}
			}
			h := sha256.Sum256(raw)
			cur[field+"/"+k] = h
			m[k] = maskNote(len(raw), prev, field+"/"+k, h)
		}
	}
	return cur
}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// maskNote says "(masked, N bytes)" and, against the previous version,
// whether the value is new, changed or unchanged.
func maskNote(n int, prev map[string][32]byte, key string, h [32]byte) string {
	state := ""
	if prev != nil {
		if p, ok := prev[key]; !ok {
			state = ", new"
		} else if p != h {
			state = ", changed"
		} else {
			state = ", unchanged"
		}
	}
	return fmt.Sprintf("(masked, %d bytes%s)", n, state)
}
