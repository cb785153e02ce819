package snapshot

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
)

const spoolMarker = "etcdsafe-spool-marker-7f3a"

func TestSaveSpool(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded etcd skipped under -short")
	}
	s := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 300 {
		v := spoolMarker + strings.Repeat("v", 1000)
		if _, err := s.Client.Put(ctx, fmt.Sprintf("/registry/secrets/ns/s-%03d", i), v); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sp, err := SaveSpool(ctx, s.Client, dir)
	if err != nil {
		t.Fatalf("SaveSpool: %v", err)
	}
	defer sp.Close()
	// Unlinked at once: a kill leaves nothing in dir.
	assertOnlyFiles(t, dir)

	// What reached the disk is ciphertext: no marker, no bbolt magic.
	raw := make([]byte, sp.Info.Size)
	if _, err := sp.f.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(spoolMarker)) || bytes.Contains(raw, []byte("authRoles")) {
		t.Fatal("plaintext in the spool file")
	}

	// The plaintext read back matches the first pass's figures.
	plain, err := io.ReadAll(sp.NewReader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(plain)) != sp.Info.Size || !HasTrailerSize(sp.Info.Size) {
		t.Fatalf("read %d bytes, info %+v", len(plain), sp.Info)
	}
	if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != sp.Info.FileSHA256 {
		t.Fatal("plaintext does not hash to FileSHA256")
	}
	if crc32.Checksum(plain, crc32.MakeTable(crc32.Castagnoli)) != sp.Info.FileCRC32C {
		t.Fatal("plaintext does not match FileCRC32C")
	}
	if !bytes.Contains(plain, []byte(spoolMarker)) {
		t.Fatal("marker missing from the plaintext")
	}
	// Random access at every alignment against the sequential read.
	for _, off := range []int64{0, 1, 15, 16, 17, 4095, 4096, 65537, sp.Info.Size - 33, sp.Info.Size - 1} {
		for _, n := range []int{1, 15, 16, 17, 1000} {
			if off+int64(n) > sp.Info.Size {
				continue
			}
			got := make([]byte, n)
			if _, err := sp.ReadAt(got, off); err != nil {
				t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
			}
			if !bytes.Equal(got, plain[off:off+int64(n)]) {
				t.Fatalf("ReadAt(%d, %d) differs from the stream", n, off)
			}
		}
	}
	got, err := NewestRevision(sp, sp.Info.Size)
	if err != nil || got != rev {
		t.Fatalf("NewestRevision = %d, %v; want %d", got, err, rev)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := sp.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("ReadAt after Close")
	}

	// Cancelled mid-stream: an error, and nothing left behind.
	cdir := t.TempDir()
	cctx, ccancel := context.WithCancel(ctx)
	testOnlyAfterWrite = func(int64) { ccancel() }
	defer func() { testOnlyAfterWrite = nil }()
	if _, err := SaveSpool(cctx, s.Client, cdir); err == nil {
		t.Fatal("cancelled SaveSpool succeeded")
	}
	assertOnlyFiles(t, cdir)
}

func TestAddCounter(t *testing.T) {
	t.Parallel()
	var c [aes.BlockSize]byte
	for i := 8; i < 16; i++ {
		c[i] = 0xff
	}
	addCounter(&c, 2)
	want := [aes.BlockSize]byte{7: 1, 15: 1}
	if c != want {
		t.Fatalf("carry: %x", c)
	}
}
