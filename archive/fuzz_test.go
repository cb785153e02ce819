package archive

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"filippo.io/age"
)

// fuzzIdentity is fixed so the corpus (the vectors) stays decryptable.
func fuzzIdentity(t testing.TB) age.Identity {
	v := readVector(t, filepath.Join("testdata", "vectors", "ok-x25519"))
	ids, err := ParseIdentities([]byte(v.identity))
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

// FuzzArchiveHeader feeds arbitrary bytes to the reader, encrypted or not.
// Properties: no panic; failure means a nil report and an error wrapping
// one of the package sentinels.
func FuzzArchiveHeader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*"))
	for _, p := range files {
		v := readVector(f, p)
		if len(v.data) > 4096 {
			f.Add(v.data[:4096])
		}
	}
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\n"))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	id := fuzzIdentity(f)
	sentinels := []error{ErrTruncated, ErrTampered, ErrTrailingData, ErrWrongKey, ErrNotArchive, ErrUnsupportedVersion}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Extract(context.Background(), bytes.NewReader(data), ReaderOptions{Identities: []age.Identity{id}, Insecure: true}, ExtractOptions{})
		if err == nil {
			if rep == nil || rep.Manifest == nil {
				t.Fatal("nil report without error")
			}
			return
		}
		if rep != nil {
			t.Fatal("report with error")
		}
		if !isAny(err, sentinels) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	})
}

// FuzzManifest checks that ParseManifest never panics, returns nil on
// error, and that whatever it accepts survives Marshal → Parse unchanged.
func FuzzManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "vectors", "ok-*"))
	for _, p := range files {
		v := readVector(f, p)
		r, err := NewReader(bytes.NewReader(v.data), v.opts(f))
		if err != nil {
			f.Fatal(err)
		}
		b, _ := r.Manifest().Marshal()
		r.Close()
		f.Add(b)
	}
	f.Add([]byte(`{"format_version":2}`))
	f.Add([]byte(`{"format_version":1,"entries":[{"path":"../x","type":"dir"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("non-nil manifest with error")
			}
			if !errors.Is(err, ErrNotArchive) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("re-parse of marshalled manifest: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
		b2, _ := m2.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatal("marshal is not stable")
		}
	})
}
