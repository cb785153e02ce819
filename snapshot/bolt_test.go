package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// revKey is etcd's revision key: 8-byte big-endian main, '_', 8-byte sub.
func revKey(main, sub int64) []byte {
	k := make([]byte, 17)
	binary.BigEndian.PutUint64(k, uint64(main))
	k[8] = '_'
	binary.BigEndian.PutUint64(k[9:], uint64(sub))
	return k
}

// makeBolt writes a bbolt file with etcd-like buckets and the given key
// revisions, each with a value of valueSize bytes, and returns its path.
func makeBolt(t testing.TB, pageSize int, revs []int64, valueSize int, withKey bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(p, 0o600, &bolt.Options{PageSize: pageSize, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// Buckets on both sides of "key", so the lookup must compare.
		for _, name := range []string{"alarm", "auth", "authRoles", "authUsers", "cluster", "lease", "members", "members_removed", "meta"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("x"), []byte("y")); err != nil {
				return err
			}
		}
		if !withKey {
			return nil
		}
		b, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		for _, r := range revs {
			if err := b.Put(revKey(r, 0), make([]byte, valueSize)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func revs(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 2)
	}
	return out
}

func newestRevisionOf(t *testing.T, p string) (int64, error) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return NewestRevision(f, st.Size())
}

func TestNewestRevision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pageSize  int
		revs      []int64
		valueSize int
		want      int64
	}{
		{name: "empty key bucket", pageSize: 4096, want: 0},
		{name: "one key (inline bucket)", pageSize: 4096, revs: []int64{7}, want: 7},
		{name: "many pages, deep tree", pageSize: 4096, revs: revs(20000), valueSize: 100, want: 20001},
		{name: "small pages, deeper tree", pageSize: 1024, revs: revs(5000), valueSize: 10, want: 5001},
		{name: "overflow values", pageSize: 4096, revs: revs(50), valueSize: 20000, want: 51},
		{name: "huge revision", pageSize: 4096, revs: []int64{3, 1 << 40}, want: 1 << 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := makeBolt(t, tc.pageSize, tc.revs, tc.valueSize, true)
			got, err := newestRevisionOf(t, p)
			if err != nil || got != tc.want {
				t.Fatalf("NewestRevision = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	t.Run("no key bucket", func(t *testing.T) {
		if _, err := newestRevisionOf(t, makeBolt(t, 4096, nil, 0, false)); !errors.Is(err, ErrNotEtcdDB) {
			t.Fatalf("err = %v, want ErrNotEtcdDB", err)
		}
	})
	t.Run("real snapshot", func(t *testing.T) {
		got, err := newestRevisionOf(t, filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db"))
		if err != nil || got != 231 { // pinned, as in cmd's offline backup test
			t.Fatalf("NewestRevision = %d, %v; want 231", got, err)
		}
	})
	t.Run("damaged", func(t *testing.T) {
		good, err := os.ReadFile(makeBolt(t, 4096, revs(3000), 50, true))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			mut  func(b []byte)
		}{
			{"not bbolt", func(b []byte) { clear(b[:8192]) }},
			{"both metas bad", func(b []byte) { b[16+20] ^= 1; b[4096+16+20] ^= 1 }},
			{"every tree page zeroed", func(b []byte) { clear(b[8192:]) }},
		} {
			b := append([]byte(nil), good...)
			tc.mut(b)
			p := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := newestRevisionOf(t, p); !errors.Is(err, ErrNotEtcdDB) {
				t.Errorf("%s: err = %v, want ErrNotEtcdDB", tc.name, err)
			}
		}
	})
}

// FuzzNewestRevision: no panic, no hang, on any bytes.
func FuzzNewestRevision(f *testing.F) {
	for _, n := range []int{0, 1, 300} {
		b, err := os.ReadFile(makeBolt(f, 1024, revs(n), 8, true))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewestRevision(bytesReaderAt(b), int64(len(b)))
		if err != nil && r != 0 {
			t.Fatalf("revision %d with error %v", r, err)
		}
	})
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, fmt.Errorf("read at %d beyond %d", off, len(b))
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read at %d", off)
	}
	return n, nil
}
