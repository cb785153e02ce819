package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

func TestSave(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 200 {
		if _, err := s.Client.Put(ctx, fmt.Sprintf("/registry/configmaps/ns/cm-%03d", i), string(make([]byte, 1000))); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.db")
	info, err := Save(ctx, s.Client, path)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != info.Size || !HasTrailerSize(info.Size) || len(info.SHA256) != 64 {
		t.Fatalf("info %+v, file size %d", info, st.Size())
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if info.EtcdVersion == "" {
		t.Error("no etcd version")
	}
	if whole, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	} else if got := fmt.Sprintf("%x", sha256.Sum256(whole)); got != info.FileSHA256 {
		t.Errorf("FileSHA256 = %q, whole file hashes to %q", info.FileSHA256, got)
	} else if got := crc32.Checksum(whole, crc32.MakeTable(crc32.Castagnoli)); got != info.FileCRC32C {
		t.Errorf("FileCRC32C = %08x, whole file checksums to %08x", info.FileCRC32C, got)
	}
	if got, err := VerifyTrailer(path); got != TrailerValid || err != nil {
		t.Fatalf("VerifyTrailer = %v, %v", got, err)
	}
	assertOnlyFiles(t, dir, "snap.db")

	// The snapshot is a bbolt file holding what we wrote.
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var keys int
	_ = db.View(func(tx *bolt.Tx) error { keys = tx.Bucket([]byte("key")).Stats().KeyN; return nil })
	db.Close()
	if keys != 200 {
		t.Errorf("key bucket has %d revisions, want 200", keys)
	}

	// One flipped byte anywhere in the body is detected.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyTrailer(bad); got != TrailerMismatch || !errors.Is(err, ErrTrailerMismatch) {
		t.Fatalf("flipped: VerifyTrailer = %v, %v", got, err)
	}

	// Refuses to replace an existing file and leaves it alone.
	if _, err := Save(ctx, s.Client, path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Save: err = %v, want ErrExist", err)
	}
	if got, _ := VerifyTrailer(path); got != TrailerValid {
		t.Fatal("existing snapshot damaged")
	}

	// A raw copy of the data dir's db has no trailer.
	s.Stop()
	if got, err := VerifyTrailer(s.DBPath()); got != TrailerNone || err != nil {
		t.Fatalf("raw db: VerifyTrailer = %v, %v", got, err)
	}
}

func TestSaveCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t)
	ctx := context.Background()
	for i := range 50 {
		if _, err := s.Client.Put(ctx, fmt.Sprintf("k%d", i), string(make([]byte, 20000))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		run  func(dir string) error
	}{
		{name: "cancelled before", run: func(dir string) error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := Save(c, s.Client, filepath.Join(dir, "snap.db"))
			return err
		}},
		{name: "cancelled mid-stream", run: func(dir string) error {
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			testOnlyAfterWrite = func(int64) { cancel() }
			defer func() { testOnlyAfterWrite = nil }()
			_, err := Save(c, s.Client, filepath.Join(dir, "snap.db"))
			return err
		}},
		{name: "missing dir", run: func(dir string) error {
			_, err := Save(ctx, s.Client, filepath.Join(dir, "nope", "snap.db"))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.run(dir); err == nil {
				t.Fatal("Save succeeded")
			}
			assertOnlyFiles(t, dir)
		})
	}
}

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dir holds %v, want %v", got, want)
	}
}
