package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestHashFile: size, whole-file SHA-256 and CRC-32C match an independent
// computation, and the trailer status is right, for every shape of file.
func TestHashFile(t *testing.T) {
	t.Parallel()
	realSnap, err := os.ReadFile(filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), realSnap...)
	flipped[len(flipped)/2] ^= 1
	withTrailer := func(body []byte) []byte {
		s := sha256.Sum256(body)
		return append(append([]byte(nil), body...), s[:]...)
	}
	page := make([]byte, 512)
	tests := []struct {
		name string
		data []byte
		want TrailerStatus
	}{
		{"real snapshot", realSnap, TrailerValid},
		{"raw db (trailer cut)", realSnap[:len(realSnap)-TrailerSize], TrailerNone},
		{"flipped byte", flipped, TrailerMismatch},
		{"empty", nil, TrailerNone},
		{"trailer only", withTrailer(nil), TrailerValid}, // the SHA-256 of an empty body
		{"one page + trailer", withTrailer(page), TrailerValid},
		{"one page + wrong trailer", append(append([]byte(nil), page...), make([]byte, 32)...), TrailerMismatch},
		{"odd size", make([]byte, 513), TrailerNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "db")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := HashFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tc.data)
			want := FileHash{Size: int64(len(tc.data)), SHA256: hex.EncodeToString(sum[:]),
				CRC32C: crc32.Checksum(tc.data, crc32.MakeTable(crc32.Castagnoli)), Trailer: tc.want}
			if got != want {
				t.Fatalf("HashFile = %+v, want %+v", got, want)
			}
		})
	}
	// Pinned: the real snapshot's hash, so a change to the fixture or the
	// hashing fails loudly.
	got, err := HashFile(filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db"))
	if err != nil || got.SHA256 != "469878ec4681a7d240aff0387611c20df7d9316e746dacd67b542083989cf009" || got.Size != 303136 {
		t.Fatalf("real snapshot: %+v %v", got, err)
	}
	if _, err := HashFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
