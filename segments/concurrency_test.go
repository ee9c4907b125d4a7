package segments_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// TestLookupDuringWrites runs the request path against a writer that keeps adding profiles,
// growing the dictionary and the profile table many times, and then moves every profile to
// another segment. Each user must be served nothing, its old segment or its new one: never
// a segment of another profile, and never a stale answer once the writer has moved on.
func TestLookupDuringWrites(t *testing.T) {
	const users = 6000
	ix := newIndex()
	for r := range 3 {
		define(t, ix, t0, fmt.Sprintf("r%d", r), fmt.Sprintf("k:r%d", r))
	}
	slotOf := map[string]uint32{}
	for r := range 3 {
		u := fmt.Sprintf("probe%d", r)
		give(t, ix, t0, t0.Add(time.Hour), []uint64{uid(u)}, fmt.Sprintf("k:r%d", r))
		slotOf[fmt.Sprintf("k:r%d", r)] = ix.Lookup(nil, ix.Catalog(), uid(u), unix(t0))[0]
	}
	oldSlot := func(i int) uint32 { return slotOf[fmt.Sprintf("k:r%d", i%3)] }
	newSlot := func(i int) uint32 { return slotOf[fmt.Sprintf("k:r%d", (i+1)%3)] }

	var added, moved atomic.Int64
	done := make(chan struct{})
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var buf []uint32
			for {
				select {
				case <-done:
					return
				default:
				}
				a, m := added.Load(), moved.Load()
				i := rng.IntN(users)
				buf = ix.Lookup(buf[:0], ix.Catalog(), uid(fmt.Sprint("user", i)), unix(t0))
				if msg := judgeLookup(buf, int64(i), a, m, oldSlot(i), newSlot(i)); msg != "" {
					errs <- fmt.Sprintf("user %d: %s", i, msg)
					return
				}
			}
		})
	}

	until := unix(t0.Add(time.Hour))
	for i := 0; i < users; i += 50 {
		update(t, ix, t0, func(tx *segments.Txn) error {
			for j := i; j < i+50; j++ {
				tx.Add(tx.Resolve([]uint64{uid(fmt.Sprint("user", j))}),
					fmt.Sprintf("k:r%d", j%3), until)
			}
			return nil
		})
		added.Store(int64(i + 50))
	}
	for i := 0; i < users; i += 50 {
		update(t, ix, t0, func(tx *segments.Txn) error {
			for j := i; j < i+50; j++ {
				p := tx.Resolve([]uint64{uid(fmt.Sprint("user", j))})
				tx.Add(p, fmt.Sprintf("k:r%d", (j+1)%3), until)
				tx.Remove(p, fmt.Sprintf("k:r%d", j%3))
			}
			return nil
		})
		moved.Store(int64(i + 50))
	}
	close(done)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// judgeLookup checks the slots served to user i, given how far the writer had got before
// the lookup began.
func judgeLookup(got []uint32, i, added, moved int64, old, cur uint32) string {
	switch {
	case len(got) > 1:
		return fmt.Sprintf("served slots %v, want at most one", got)
	case i < moved && (len(got) != 1 || got[0] != cur):
		return fmt.Sprintf("served slots %v after the move to %d", got, cur)
	case i < added && len(got) != 1:
		return fmt.Sprintf("served slots %v after it was added", got)
	case len(got) == 1 && got[0] != old && got[0] != cur:
		return fmt.Sprintf("served slot %d, which belongs to other profiles", got[0])
	}
	return ""
}
