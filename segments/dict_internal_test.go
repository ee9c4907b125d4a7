package segments

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// dictKey returns distinct non-zero keys that spread over the table like SipHash output.
func dictKey(i int) uint64 {
	x := uint64(i) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31 | 1<<63
}

func TestDictSetLookup(t *testing.T) {
	d := newDict(0)
	if got := d.lookup(dictKey(1)); got != NoProfile {
		t.Fatalf("empty dict: lookup = %d", got)
	}
	const n = 5000 // several growths from the first table of 1024 slots
	for i := range n {
		d.set(dictKey(i), uint32(i))
	}
	for i := 0; i < n; i += 2 {
		d.set(dictKey(i), NoProfile) // unlink: a tombstone
	}
	for i := 1; i < n; i += 4 {
		d.set(dictKey(i), uint32(i+n)) // relink
	}
	for i := range n {
		want := uint32(i)
		switch {
		case i%2 == 0:
			want = NoProfile
		case i%4 == 1:
			want = uint32(i + n)
		}
		if got := d.lookup(dictKey(i)); got != want {
			t.Fatalf("lookup(key %d) = %d, want %d", i, got, want)
		}
	}
	if got := d.lookup(dictKey(n + 1)); got != NoProfile {
		t.Errorf("unknown key: lookup = %d", got)
	}
}

// TestDictGrowsByDoubling checks that a table filled without deletions is the smallest
// one that holds its keys at three quarters full: each growth doubles it, no more.
func TestDictGrowsByDoubling(t *testing.T) {
	d := newDict(0)
	for i := range 200_000 {
		d.set(dictKey(i), uint32(i))
		n := i + 1
		want := 1024
		for want*3/4 < n {
			want *= 2
		}
		if got := len(d.tab.Load().slots); got != want {
			t.Fatalf("%d keys in %d slots, want %d", n, got, want)
		}
	}
}

// TestDictConcurrentGrowth runs readers against one writer that grows the table many times
// and then relinks every key. A reader may see a key as not yet linked, or still linked to
// its old profile, but never linked to any other profile; and once the writer has published
// a step, every reader sees it.
func TestDictConcurrentGrowth(t *testing.T) {
	const n = 40000
	d := newDict(0)
	var inserted, relinked atomic.Int64
	done := make(chan struct{})

	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-done:
					return
				default:
				}
				ins, rel := inserted.Load(), relinked.Load()
				i := rng.IntN(n)
				if msg := checkDictRead(d.lookup(dictKey(i)), i, n, ins, rel); msg != "" {
					errs <- msg
					return
				}
			}
		})
	}

	for i := range n {
		d.set(dictKey(i), uint32(i))
		inserted.Store(int64(i + 1))
	}
	for i := range n {
		d.set(dictKey(i), uint32(i+n))
		relinked.Store(int64(i + 1))
	}
	close(done)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// checkDictRead judges what a reader saw for key i, given how far the writer had got before
// the read began.
func checkDictRead(got uint32, i, n int, inserted, relinked int64) string {
	old, cur := uint32(i), uint32(i+n)
	switch {
	case int64(i) < relinked && got != cur:
		return sprintKey("relinked", i, got, cur)
	case int64(i) < inserted && got != old && got != cur:
		return sprintKey("inserted", i, got, old)
	case got != NoProfile && got != old && got != cur:
		return sprintKey("unwritten", i, got, NoProfile)
	}
	return ""
}

func sprintKey(state string, i int, got, want uint32) string {
	return fmt.Sprintf("%s key %d: got profile %d, want %d", state, i, got, want)
}
