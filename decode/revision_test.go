package decode

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func TestParseRevision(t *testing.T) {
	t.Parallel()
	valid := Revision{Main: 231, Sub: 2}.Bytes()
	tomb := Revision{Main: 231, Sub: 0, Tombstone: true}.Bytes()
	badSep := bytes.Clone(valid)
	badSep[8] = '-'
	badMark := append(bytes.Clone(valid), 'x')
	tests := []struct {
		name    string
		in      []byte
		want    Revision
		wantErr bool
	}{
		{"put", valid, Revision{Main: 231, Sub: 2}, false},
		{"tombstone", tomb, Revision{Main: 231, Tombstone: true}, false},
		{"empty", nil, Revision{}, true},
		{"one byte", []byte{0}, Revision{}, true},
		{"16 bytes", valid[:16], Revision{}, true},
		{"bad separator", badSep, Revision{}, true},
		{"18th byte not t", badMark, Revision{}, true},
		{"19 bytes", append(bytes.Clone(tomb), 't'), Revision{}, true},
		{"main out of range", append([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, '_'}, make([]byte, 8)...), Revision{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRevision(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadRevision) {
					t.Fatalf("err = %v, want ErrBadRevision", err)
				}
				if got != (Revision{}) {
					t.Fatalf("got %v with an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			if !bytes.Equal(got.Bytes(), tc.in) {
				t.Fatalf("Bytes() = %x, want %x", got.Bytes(), tc.in)
			}
		})
	}
}

// TestParseKeyValueMatchesEtcd checks the allocation-free parser against
// etcd's generated protobuf code, both ways.
func TestParseKeyValueMatchesEtcd(t *testing.T) {
	t.Parallel()
	cases := []*mvccpb.KeyValue{
		{Key: []byte("/registry/pods/ns/p"), CreateRevision: 5, ModRevision: 9, Version: 3, Value: []byte("k8s\x00xyz"), Lease: 0x7a11},
		{Key: []byte("tombstone-only")},
		{Key: []byte("/registry/empty"), CreateRevision: 1, ModRevision: 1000000001, Version: 1},
		{Key: []byte("k"), Value: bytes.Repeat([]byte{0xab}, 70000)},
	}
	for _, want := range cases {
		b, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseKeyValue(b)
		if err != nil {
			t.Fatalf("%s: %v", want.Key, err)
		}
		if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) || got.CreateRevision != want.CreateRevision ||
			got.ModRevision != want.ModRevision || got.Version != want.Version || got.Lease != want.Lease {
			t.Errorf("%s: got %+v", want.Key, got)
		}
	}
}

func TestParseKeyValueErrors(t *testing.T) {
	t.Parallel()
	good, _ := proto.Marshal(&mvccpb.KeyValue{Key: []byte("/registry/x"), Value: []byte("value")})
	tests := map[string][]byte{
		"empty":            {},
		"truncated":        good[:len(good)-2],
		"bad tag":          {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"no key":           {0x10, 0x01},
		"length too large": {0x0a, 0xff, 0xff, 0xff, 0x0f, 'a'},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKeyValue(in); !errors.Is(err, ErrBadKeyValue) {
				t.Fatalf("err = %v, want ErrBadKeyValue", err)
			}
		})
	}
}

func FuzzRevisionKey(f *testing.F) {
	f.Add(Revision{Main: 1, Sub: 0}.Bytes())
	f.Add(Revision{Main: 231, Tombstone: true}.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRevision(b)
		if err != nil {
			if r != (Revision{}) {
				t.Fatal("non-zero result with error")
			}
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("round trip %x -> %v -> %x", b, r, r.Bytes())
		}
	})
}

func FuzzKeyValue(f *testing.F) {
	b, _ := proto.Marshal(&mvccpb.KeyValue{Key: []byte("/registry/a"), CreateRevision: 2, ModRevision: 3, Version: 1, Value: []byte("k8s\x00")})
	f.Add(b)
	f.Add([]byte{0x0a, 0x01, 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseKeyValue(b)
		var ref mvccpb.KeyValue
		refErr := proto.Unmarshal(b, &ref)
		if err != nil {
			if got.Key != nil || got.Value != nil {
				t.Fatal("non-zero result with error")
			}
			return
		}
		if refErr != nil {
			t.Fatalf("we accepted what protobuf rejects: %v", refErr)
		}
		if !bytes.Equal(got.Key, ref.Key) || !bytes.Equal(got.Value, ref.Value) || got.ModRevision != ref.ModRevision {
			t.Fatalf("disagrees with protobuf: %+v vs %v", got, &ref)
		}
	})
}

func TestPeekKey(t *testing.T) {
	t.Parallel()
	b, _ := proto.Marshal(&mvccpb.KeyValue{Key: []byte("/registry/a/b"), ModRevision: 3, Value: []byte("v")})
	if k, ok := PeekKey(b); !ok || string(k) != "/registry/a/b" {
		t.Fatalf("PeekKey = %q, %v", k, ok)
	}
	for _, in := range [][]byte{nil, {0x0a}, {0x10, 0x01}, {0x0a, 0x05, 'a'}, {0x0a, 0xff}} {
		if k, ok := PeekKey(in); ok {
			t.Errorf("PeekKey(%x) = %q, true", in, k)
		}
	}
}
