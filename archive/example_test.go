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
	rep, err := Verify(context.Background(), bytes.NewReader(out.Bytes()), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", rep.Entries, "entry, revision", rep.Manifest.Revision)

	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	p, _, err := ExtractSnapshot(context.Background(), bytes.NewReader(out.Bytes()), opts, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(filepath.Dir(p))
	b, _ := os.ReadFile(p)
	fmt.Println(string(b))
	// Output:
	// verified: 1 entry, revision 1234
	// bbolt bytes and a sha256 trailer
}
