package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
)

func Example() {
	id, _ := GenerateIdentity(true)
	recips, _ := ParseRecipients([]string{id.Recipient()})

	snap := []byte("bbolt bytes and a sha256 trailer")
	sum := sha256.Sum256(snap)

	var out bytes.Buffer // a temp file committed with internal/fsx in real use
	w, _ := NewWriter(&out, WriterOptions{
		Recipients: recips,
		Manifest:   Manifest{Tool: "etcdsafe", Host: "master-0", Revision: 1234},
	})
	_ = w.AddSnapshot(bytes.NewReader(snap), int64(len(snap)), hex.EncodeToString(sum[:]))
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	opts := ReaderOptions{Identities: []age.Identity{id.Age()}}
	rep, err := Extract(context.Background(), bytes.NewReader(out.Bytes()), opts, ExtractOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", rep.Entries, "entry, revision", rep.Manifest.Revision)

	dir, _ := os.MkdirTemp("", "example-") // an fsx.Staging dir in real use
	defer os.RemoveAll(dir)
	res, err := Extract(context.Background(), bytes.NewReader(out.Bytes()), opts,
		ExtractOptions{Name: "example", SnapshotTo: filepath.Join(dir, "snapshot.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(res.Snapshot)
	fmt.Println(string(b))
	// Output:
	// verified: 1 entry, revision 1234
	// bbolt bytes and a sha256 trailer
}
