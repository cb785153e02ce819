package par

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestOrdered: results come out in submission order whatever order the
// workers finish in, at most the window is in flight, and an error of
// emit or a cancelled context stops it.
func TestOrdered(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8} {
		t.Run(fmt.Sprint("workers=", n), func(t *testing.T) {
			var inFlight, maxInFlight atomic.Int64
			work := func(i int) int {
				if c := inFlight.Add(1); c > maxInFlight.Load() {
					maxInFlight.Store(c)
				}
				// later items finish first, often
				time.Sleep(time.Duration((7*i)%5) * 100 * time.Microsecond)
				return i * i
			}
			var got []int
			emit := func(v int) error {
				inFlight.Add(-1)
				got = append(got, v)
				return nil
			}
			p := NewOrdered(context.Background(), n, work, emit)
			defer p.Stop()
			const total = 500
			for i := range total {
				if err := p.Submit(i); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Finish(); err != nil {
				t.Fatal(err)
			}
			if len(got) != total {
				t.Fatalf("%d results, want %d", len(got), total)
			}
			for i, v := range got {
				if v != i*i {
					t.Fatalf("result %d is %d, want %d", i, v, i*i)
				}
			}
			if window := max(1, 4*n); maxInFlight.Load() > int64(window) {
				t.Errorf("%d items in flight, window is %d", maxInFlight.Load(), window)
			}
		})
	}

	t.Run("emit error", func(t *testing.T) {
		for _, n := range []int{1, 4} {
			boom := errors.New("boom")
			emitted := 0
			p := NewOrdered(context.Background(), n, func(i int) int { return i }, func(v int) error {
				emitted++
				if v == 10 {
					return boom
				}
				return nil
			})
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				err = p.Submit(i)
			}
			if err == nil {
				err = p.Finish()
			}
			p.Stop()
			if !errors.Is(err, boom) || emitted != 11 {
				t.Errorf("workers=%d: err %v after %d emitted, want boom after 11", n, err, emitted)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		emitted := 0
		p := NewOrdered(ctx, 2, func(i int) int { <-release; return i }, func(int) error { emitted++; return nil })
		for i := range 8 {
			if err := p.Submit(i); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		err := p.Finish() // the workers are still blocked: Finish must not wait for them
		close(release)
		p.Stop()
		if !errors.Is(err, context.Canceled) || emitted != 0 {
			t.Errorf("Finish after cancel: %v, %d emitted", err, emitted)
		}
	})
}
