package inspect

import (
	"context"

	"errors"
	bolt "go.etcd.io/bbolt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckZeroedPages zeroes, one at a time, the first page of every node
// in use in a real kube-apiserver snapshot, and requires that Open or
// Check reports it as corrupt (a zeroed page has no valid type and the
// wrong id), without a panic: bbolt's own check panics in a goroutine of
// its own on such a page, which would kill the process.
func TestCheckZeroedPages(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(realSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(realSnapshot, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("clean snapshot: %v", err)
	}
	s.Close()
	const pageSize = 4096
	// pages in use, from bbolt itself on the intact file (its free list
	// loaded): the free ones hold nothing a read would reach
	db, err := bolt.Open(realSnapshot, 0o400, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	pages := int(tx.Size() / pageSize)
	inUse := map[int]bool{}
	for pg := 2; pg < pages; pg++ {
		pi, err := tx.Page(pg)
		if err != nil || pi == nil {
			t.Fatalf("page %d: %v", pg, err)
		}
		if pi.Type == "free" {
			continue
		}
		// The pages that continue a large node (overflow) hold only its
		// bytes: zeroing one is a change no page check can see, which is
		// why a raw db without trailer stays "unchecked" even after
		// Check. The first page of every node must be caught.
		inUse[pg] = true
		pg += pi.OverflowCount
	}
	dir := t.TempDir()
	detected, total := 0, 0
	for pg := 2; pg < pages; pg++ {
		if !inUse[pg] {
			continue
		}
		b := append([]byte(nil), orig...)
		clear(b[pg*pageSize : (pg+1)*pageSize])
		p := filepath.Join(dir, "db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		total++
		s, err := Open(p, OpenOptions{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotEtcd) && !errors.Is(err, ErrNotSnapshot) {
				t.Errorf("page %d: open: %v", pg, err)
			}
			detected++
			continue
		}
		err = s.Check(context.Background())
		s.Close()
		switch {
		case err == nil:
			t.Errorf("page %d in use zeroed: Check found nothing", pg)
		case !errors.Is(err, ErrCorrupt):
			t.Errorf("page %d: %v does not wrap ErrCorrupt", pg, err)
		default:
			detected++
		}
	}
	if total == 0 {
		t.Fatal("no page in use found")
	}
	t.Logf("zeroed pages in use detected: %d of %d", detected, total)
}

// TestCheckKeyOrder: zeroing page 64 of the real snapshot (an overflow page
// of leaf 63) turns a key into zeros; Open and Status read on, Check
// reports the key out of order (bbolt's own check panicked in a goroutine
// of its own on this file).
func TestCheckKeyOrder(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(realSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[64*4096 : 65*4096])
	p := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Status(context.Background(), false); err != nil {
		t.Fatalf("status: %v", err)
	}
	var ce *CheckError
	if err := s.Check(context.Background()); !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "is not after") {
		t.Fatalf("Check: %v", err)
	}
}
