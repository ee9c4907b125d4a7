package segments_test

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// lookupIndex loads n profiles through the start-up path, each linked to one ID and in 20
// of 200 single-trait segments, and returns the index with the profiles' ID hashes.
func lookupIndex(b *testing.B, n int, now time.Time) (*segments.Index, []uint64) {
	ix := segments.New(segments.NewHasher([]byte("lookup bench secret")), segments.Provider{ID: "segd"})
	l := ix.NewLoader(now)
	const traits = 200
	for i := range traits {
		code := "crm:c" + strconv.Itoa(i)
		if err := l.Trait(uint32(i), code); err != nil {
			b.Fatal(err)
		}
		l.Segment(segments.Segment{ID: "s" + strconv.Itoa(i), Name: code, Rule: code,
			ExportID: strconv.Itoa(i), Segtax: 4})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	until := uint32(now.Add(24 * time.Hour).Unix())
	hashes := make([]uint64, n)
	for p := range uint32(n) {
		hashes[p] = rng.Uint64() | 1
		rec := segments.ProfileRecord{Profile: p, IDs: []uint64{hashes[p]}}
		for _, t := range rng.Perm(traits)[:20] {
			rec.Traits = append(rec.Traits, segments.Membership{Trait: uint32(t), Until: until})
		}
		if err := l.Profile(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Finish(); err != nil {
		b.Fatal(err)
	}
	ix.MarkReady()
	return ix, hashes
}

// BenchmarkLookup measures the request path's read of the index: an ID hash to the
// served segment slots of its profile, over a population too large for the CPU's caches.
func BenchmarkLookup(b *testing.B) {
	now := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	ix, hashes := lookupIndex(b, benchProfiles(b), now)
	cat := ix.Catalog()
	ts := uint32(now.Unix())
	dst := make([]uint32, 0, 64)
	rng := rand.New(rand.NewPCG(5, 6))
	runtime.GC() // so that collecting the set-up's garbage does not run in the loop
	b.ReportAllocs()
	for b.Loop() {
		dst = ix.Lookup(dst[:0], cat, hashes[rng.IntN(len(hashes))], ts)
		if len(dst) != 20 {
			b.Fatalf("%d segments, want 20", len(dst))
		}
	}
}
