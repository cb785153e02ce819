package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func TestExplainTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.tar.zst.age")
	if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	cut := fmt.Errorf("read: %w", ErrTruncated)
	if err := explainTruncation(p, cut); !errors.Is(err, cut) || errors.Is(err, ErrTampered) {
		t.Fatalf("without sidecar: %v", err)
	}
	writeSidecar := func(size int64) {
		sc := &Sidecar{Version: SidecarVersion, Archive: "a.tar.zst.age", ArchiveSize: size, ArchiveSHA256: fmt.Sprintf("%064d", 0)}
		b, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(SidecarPath(p), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSidecar(200) // the file is shorter than written: really cut
	if err := explainTruncation(p, cut); !errors.Is(err, cut) || errors.Is(err, ErrTampered) {
		t.Fatalf("shorter than the sidecar: %v", err)
	}
	writeSidecar(100) // full size: a flip, not a cut
	err := explainTruncation(p, cut)
	if !errors.Is(err, ErrTampered) || errors.Is(err, ErrTruncated) {
		t.Fatalf("full size: %v", err)
	}
	other := errors.New("x")
	if err := explainTruncation(p, other); err != other { //nolint:errorlint // the very error must come back unwrapped
		t.Fatal("other errors must pass through")
	}
}

func TestExplainWrongKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.tar.zst.age")
	if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pq := range []bool{false, true} {
		mine, err := GenerateIdentity(pq)
		if err != nil {
			t.Fatal(err)
		}
		other, err := GenerateIdentity(pq)
		if err != nil {
			t.Fatal(err)
		}
		wrong := fmt.Errorf("decrypt: %w", ErrWrongKey)
		ids := []age.Identity{mine.Age()}
		if err := explainWrongKey(p, ids, wrong); !errors.Is(err, wrong) || errors.Is(err, ErrTampered) {
			t.Fatalf("without sidecar: %v", err)
		}
		sc := &Sidecar{Version: SidecarVersion, Archive: "a.tar.zst.age", ArchiveSize: 100, ArchiveSHA256: fmt.Sprintf("%064d", 0),
			Recipients: []string{RecipientFingerprint(other.Recipient())}}
		b, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(SidecarPath(p), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := explainWrongKey(p, ids, wrong); !errors.Is(err, wrong) || errors.Is(err, ErrTampered) {
			t.Fatalf("pq=%v: archive made for another key: %v", pq, err)
		}
		sc.Recipients = append(sc.Recipients, RecipientFingerprint(mine.Recipient()))
		b, _ = sc.Marshal()
		if err := os.WriteFile(SidecarPath(p), b, 0o600); err != nil {
			t.Fatal(err)
		}
		got := explainWrongKey(p, ids, wrong)
		if !errors.Is(got, ErrTampered) || errors.Is(got, ErrWrongKey) {
			t.Fatalf("pq=%v: made for this key: %v", pq, got)
		}
	}
}
