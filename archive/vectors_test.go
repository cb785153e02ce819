package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

var update = flag.Bool("update", false, "regenerate archive/testdata/vectors")

// A vector file is a few "key: value" header lines, a blank line, then the
// archive bytes. Keys: expect (ok|truncated|bad-mac|wrong-key|
// trailing-data|unsupported-version), identity (an age identity, or
// "insecure"), payload-sha256 (of etcd/snapshot.db, for ok vectors).
type vector struct {
	expect, identity, payloadSHA string
	data                         []byte
}

var expectErr = map[string]error{
	"ok":                  nil,
	"truncated":           ErrTruncated,
	"bad-mac":             ErrTampered,
	"wrong-key":           ErrWrongKey,
	"trailing-data":       ErrTrailingData,
	"unsupported-version": ErrUnsupportedVersion,
}

func readVector(t testing.TB, p string) vector {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(b))
	var v vector
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: header: %v", p, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: bad header line %q", p, line)
		}
		switch k {
		case "expect":
			v.expect = val
		case "identity":
			v.identity = val
		case "payload-sha256":
			v.payloadSHA = val
		default:
			t.Fatalf("%s: unknown header %q", p, k)
		}
	}
	v.data, _ = io.ReadAll(br)
	if _, ok := expectErr[v.expect]; !ok {
		t.Fatalf("%s: unknown expect %q", p, v.expect)
	}
	return v
}

func (v vector) opts(t testing.TB) ReaderOptions {
	if v.identity == "insecure" {
		return ReaderOptions{Insecure: true}
	}
	ids, err := ParseIdentities([]byte(v.identity))
	if err != nil {
		t.Fatal(err)
	}
	return ReaderOptions{Identities: ids}
}

func TestVectors(t *testing.T) {
	t.Parallel()
	if *update {
		generateVectors(t)
	}
	files, _ := filepath.Glob("testdata/vectors/*")
	if len(files) < 6 {
		t.Fatalf("only %d vectors; run go test ./archive -run TestVectors -update", len(files))
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			v := readVector(t, p)
			want := expectErr[v.expect]
			dst := t.TempDir()
			path, m, err := extractSnapshot(bytes.NewReader(v.data), v.opts(t), dst)
			if want != nil {
				if !errors.Is(err, want) {
					t.Fatalf("got %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(got); fmt.Sprintf("%x", sum) != v.payloadSHA {
				t.Fatalf("snapshot sha256 %x, pinned %s", sum, v.payloadSHA)
			}
			if m.FormatVersion != FormatVersion || m.Revision != 42 {
				t.Fatalf("manifest %+v", m)
			}
		})
	}
}

// generateVectors writes deterministic payloads; the age layer is random
// by design, so regenerated files differ byte-wise but not in meaning.
func generateVectors(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	snap := make([]byte, 70<<10) // more than one age chunk
	for i := range snap {
		snap[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(snap)
	id, err := GenerateIdentity(false)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateIdentity(false)
	pq, _ := GenerateIdentity(true)
	meta := Manifest{Tool: "etcdsafe", ToolVersion: "vectors", Host: "master-0", Revision: 42,
		Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	enc := func(r string) []byte {
		recips, err := ParseRecipients([]string{r})
		if err != nil {
			t.Fatal(err)
		}
		return writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Recipients: recips, Manifest: meta}})
	}
	arch := enc(id.Recipient())
	_, p := ageLayout(t, arch)
	secret := func(i *Identity) string { return strings.Split(string(i.File(time.Time{})), "\n")[2] }
	x := age.Identity(id.Age()).(*age.X25519Identity)
	type out struct {
		name, expect, ident string
		data                []byte
	}
	vs := []out{
		{"ok-x25519", "ok", secret(id), arch},
		{"ok-pq", "ok", secret(pq), enc(pq.Recipient())},
		{"ok-insecure", "ok", "insecure", writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Insecure: true, Manifest: meta}})},
		{"truncated-boundary", "truncated", secret(id), arch[:p+encChunk]},
		{"truncated-mid-chunk", "truncated", secret(id), arch[:len(arch)-100]},
		{"bad-mac-first-chunk", "bad-mac", secret(id), flip(arch, p+1000)},
		{"wrong-key", "wrong-key", secret(other), arch},
		{"trailing-data", "trailing-data", secret(id), encryptExtra(t, x, arch, []byte("trailing garbage\n"))},
		{"trailing-data-insecure", "trailing-data", "insecure", append(writeArchive(t, archiveSpec{snapshot: snap, opts: WriterOptions{Insecure: true, Manifest: meta}}), "trailing garbage\n"...)},
	}
	if err := os.MkdirAll("testdata/vectors", 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob("testdata/vectors/*")
	for _, f := range old {
		_ = os.Remove(f)
	}
	for _, v := range vs {
		var b bytes.Buffer
		fmt.Fprintf(&b, "expect: %s\nidentity: %s\n", v.expect, v.ident)
		if v.expect == "ok" {
			fmt.Fprintf(&b, "payload-sha256: %x\n", sum)
		}
		b.WriteString("\n")
		b.Write(v.data)
		if err := os.WriteFile(filepath.Join("testdata/vectors", v.name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
