package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestExtractExplainsStream is TestExtractExplains for a stream (an S3
// object) whose sidecar comes from ExtractOptions.Sidecar: the archive's
// size is then what was read of the stream. The sidecar is fetched only
// to explain an error, and a missing one leaves the error as it was.
func TestExtractExplainsStream(t *testing.T) {
	t.Parallel()
	id := newX25519(t)
	// 3 chunks and a bit: the last one short
	arch := writeArchive(t, archiveSpec{snapshot: randBytes(t, 200<<10), opts: WriterOptions{Recipients: []age.Recipient{id.Recipient()}}})
	lines := bytes.SplitN(arch, []byte("\n"), 4)
	stanza := len(lines[0]) + 1 + len(lines[1]) + 1 + 5
	damagedKey := bytes.Clone(arch)
	damagedKey[stanza] = map[bool]byte{true: 'B', false: 'A'}[damagedKey[stanza] == 'A']
	// The payload starts after the header's "--- MAC\n" line and the
	// 16-byte nonce; chunks are 64 KiB + 16 bytes of tag.
	payload := bytes.Index(arch, []byte("\n---")) + 1
	payload += bytes.IndexByte(arch[payload:], '\n') + 1 + 16
	const encChunk = 64<<10 + 16
	atBoundary := payload + 2*encChunk
	if atBoundary >= len(arch) {
		t.Fatalf("archive of %d bytes has fewer than 3 chunks", len(arch))
	}
	sc := &Sidecar{Version: SidecarVersion, Archive: "k.tar.zst.age", ArchiveSize: int64(len(arch)),
		ArchiveSHA256: sumHex(arch), Recipients: []string{RecipientFingerprint(id.Recipient().String())}}
	noSidecar := func() (*Sidecar, error) { return nil, fmt.Errorf("get s3://b/k.tar.zst.age.json: %w", fs.ErrNotExist) }
	tests := []struct {
		name    string
		data    []byte
		sidecar func() (*Sidecar, error)
		want    error // errors.Is
		notWant error // !errors.Is, if set
	}{
		{"flip in the last chunk", flip(arch, len(arch)-5), nil, ErrTampered, ErrTruncated},
		{"flip in the last chunk, no sidecar", flip(arch, len(arch)-5), noSidecar, ErrTruncated, ErrTampered},
		{"changed wrapped key", damagedKey, nil, ErrTampered, ErrWrongKey},
		{"changed wrapped key, no sidecar", damagedKey, noSidecar, ErrWrongKey, ErrTampered},
		{"cut inside the last chunk", arch[:len(arch)-5], nil, ErrTruncated, ErrTampered},
		{"cut at a chunk boundary", arch[:atBoundary], nil, ErrTruncated, ErrTampered},
		{"cut after one byte", arch[:1], nil, ErrTruncated, ErrTampered},
		{"empty", nil, nil, ErrTruncated, ErrTampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			get := tc.sidecar
			if get == nil {
				get = func() (*Sidecar, error) { c := *sc; return &c, nil }
			}
			opts := ReaderOptions{Identities: []age.Identity{id}}
			_, err := Extract(context.Background(), bytes.NewReader(tc.data), opts, ExtractOptions{Name: "s3://b/k.tar.zst.age", Sidecar: get})
			if !errors.Is(err, tc.want) || tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Fatalf("got %v, want %v and not %v", err, tc.want, tc.notWant)
			}
			if !strings.Contains(err.Error(), "s3://b/k.tar.zst.age") {
				t.Errorf("error does not name the object: %v", err)
			}
		})
	}
	t.Run("sidecar not fetched on success", func(t *testing.T) {
		t.Parallel()
		called := false
		res, err := Extract(context.Background(), bytes.NewReader(arch), ReaderOptions{Identities: []age.Identity{id}},
			ExtractOptions{Name: "s3://b/k", Sidecar: func() (*Sidecar, error) { called = true; return sc, nil }})
		if err != nil || called || res.ArchiveBytes != int64(len(arch)) {
			t.Fatalf("err %v, sidecar fetched %v, %d bytes", err, called, res.ArchiveBytes)
		}
	})
	t.Run("path wins over sidecar", func(t *testing.T) {
		t.Parallel()
		// Path set and no sidecar beside it: the Sidecar func is not used.
		_, err := Extract(context.Background(), bytes.NewReader(flip(arch, len(arch)-5)), ReaderOptions{Identities: []age.Identity{id}},
			ExtractOptions{Path: t.TempDir() + "/none.age", Sidecar: func() (*Sidecar, error) { return sc, nil }})
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("got %v, want ErrTruncated", err)
		}
	})
}
