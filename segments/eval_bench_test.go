package segments

import (
	"testing"
	"time"
)

// BenchmarkMembership measures evaluating one rule for one profile from its own facts,
// with the moment the answer next changes: the work that an event or an import does for
// each segment whose rule reads a changed trait.
func BenchmarkMembership(b *testing.B) {
	now := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	ix, tx := beginWeb(b, now)
	rule := "count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d"
	if err := tx.PutSegment(Segment{ID: "returning", Name: "Returning", Rule: rule}); err != nil {
		b.Fatal(err)
	}
	p := tx.Resolve([]uint64{1})
	today := Day(uint32(now.Unix()))
	for _, d := range []uint16{0, 3, 12, 40, 70} {
		tx.AddEvent(p, "web:visit", today-d)
	}
	tx.AddEvent(p, "web:geo=london", today-3)
	tx.AddEvent(p, "web:page=/pricing", today-12)
	tx.Commit()

	s := ix.segs["returning"]
	pr := ix.profiles.get(p)
	f := &facts{traits: pr.traits, events: pr.events}
	ts := uint32(now.Unix())
	b.ReportAllocs()
	for b.Loop() {
		if in, _ := s.root.membership(f, s.deps, s.wins, ts); !in {
			b.Fatal("the profile does not match")
		}
	}
}
