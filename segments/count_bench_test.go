package segments_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// benchProfiles is the population of BenchmarkCount and BenchmarkLookup:
// SEGD_BENCH_PROFILES, default one million (ten million is the figure the README quotes).
func benchProfiles(b *testing.B) int {
	if s := os.Getenv("SEGD_BENCH_PROFILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// countIndex loads n profiles through the start-up path: each visited the site on one to
// three of the last 90 days, 30% in London, 10% on the pricing page in the last 30 days,
// 20% gold customers.
func countIndex(b *testing.B, n int, now time.Time) *segments.Index {
	ix := segments.New(segments.NewHasher([]byte("count bench secret")), segments.Provider{ID: "segd"})
	l := ix.NewLoader(now)
	names := []string{"web:visit", "web:geo=london", "web:page=/pricing", "crm:gold"}
	for i, name := range names {
		if err := l.Trait(uint32(i), name); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	today := segments.Day(uint32(now.Unix()))
	until := uint32(now.Add(24 * time.Hour).Unix())
	for p := range uint32(n) {
		rec := segments.ProfileRecord{Profile: p, IDs: []uint64{rng.Uint64() | 1}}
		for range 1 + rng.IntN(3) {
			rec.Events = append(rec.Events, segments.Event{Trait: 0, Day: today - uint16(rng.IntN(90))})
		}
		if rng.IntN(10) < 3 {
			rec.Events = append(rec.Events, segments.Event{Trait: 1, Day: today - uint16(rng.IntN(90))})
		}
		if rng.IntN(10) == 0 {
			rec.Events = append(rec.Events, segments.Event{Trait: 2, Day: today - uint16(rng.IntN(30))})
		}
		if rng.IntN(5) == 0 {
			rec.Traits = append(rec.Traits, segments.Membership{Trait: 3, Until: until})
		}
		if err := l.Profile(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Finish(); err != nil {
		b.Fatal(err)
	}
	ix.MarkReady()
	return ix
}

// BenchmarkCount measures exact counts of three-trait rules over a large population.
func BenchmarkCount(b *testing.B) {
	now := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	n := benchProfiles(b)
	start := time.Now()
	ix := countIndex(b, n, now)
	b.Logf("loaded %d profiles in %s", n, time.Since(start).Round(time.Millisecond))
	for _, rule := range []string{
		"web:geo=london and web:page=/pricing and crm:gold",
		"count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d",
	} {
		b.Run(rule, func(b *testing.B) {
			var got uint64
			for b.Loop() {
				var err error
				if got, err = ix.CountAt(rule, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(got), "profiles")
		})
	}
}
