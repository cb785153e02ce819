package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// withTrailer returns body followed by its SHA-256.
func withTrailer(body []byte) []byte {
	s := sha256.Sum256(body)
	return append(append([]byte{}, body...), s[:]...)
}

func TestTrailerWriter(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1024 bytes
	good := withTrailer(body)
	flipped := append([]byte{}, good...)
	flipped[100] ^= 1
	badTail := append([]byte{}, good...)
	badTail[len(badTail)-1] ^= 1
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{name: "valid", data: good},
		{name: "empty", data: nil, wantErr: ErrNoTrailer},
		{name: "only 31 bytes", data: good[:31], wantErr: ErrNoTrailer},
		{name: "only 32 bytes", data: good[len(good)-32:], wantErr: ErrTrailerMismatch},
		{name: "empty body with its trailer", data: withTrailer(nil)},
		{name: "no trailer (raw db)", data: body, wantErr: ErrNoTrailer},
		{name: "truncated by one", data: good[:len(good)-1], wantErr: ErrNoTrailer},
		{name: "body byte flipped", data: flipped, wantErr: ErrTrailerMismatch},
		{name: "trailer byte flipped", data: badTail, wantErr: ErrTrailerMismatch},
	}
	// Odd write sizes make the 32-byte window straddle chunk boundaries.
	steps := []int{1, 7, 31, 32, 33, 511, 512, 513, 4096}
	for _, tc := range tests {
		for _, step := range steps {
			w := newTrailerWriter()
			for off := 0; off < len(tc.data); off += step {
				end := min(off+step, len(tc.data))
				if _, err := w.Write(tc.data[off:end]); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := w.check()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("%s step %d: err = %v, want %v", tc.name, step, err, tc.wantErr)
			}
			if err == nil && sum == "" {
				t.Errorf("%s step %d: empty sum", tc.name, step)
			}
		}
	}
}

func TestVerifyTrailerFiles(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte{0xAB}, 4096)
	good := withTrailer(body)
	flipped := append([]byte{}, good...)
	flipped[4000] ^= 0x80
	tests := []struct {
		name    string
		data    []byte
		want    TrailerStatus
		wantErr error
	}{
		{name: "valid", data: good, want: TrailerValid},
		{name: "raw db", data: body, want: TrailerNone},
		{name: "flipped", data: flipped, want: TrailerMismatch, wantErr: ErrTrailerMismatch},
		{name: "truncated", data: good[:len(good)-5], want: TrailerNone},
		{name: "empty", data: nil, want: TrailerNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.db")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := VerifyTrailer(p)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyTrailer = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := VerifyTrailer(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
}

// The real snapshot written by `etcdctl snapshot save` must verify.
func TestVerifyTrailerRealSnapshot(t *testing.T) {
	t.Parallel()
	p := filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db")
	got, err := VerifyTrailer(p)
	if err != nil || got != TrailerValid {
		t.Fatalf("VerifyTrailer(%s) = %v, %v", p, got, err)
	}
}
