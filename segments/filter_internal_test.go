package segments

import (
	"testing"
	"time"
)

// TestFilterProfilesSplit checks that filtering profiles by their own facts gives the same
// set whether or not the work is split between cores, and that every profile is judged:
// the first and the last of each part included.
func TestFilterProfilesSplit(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ix, tx := beginWeb(t, now)
	today := Day(uint32(now.Unix()))
	for i := range 101 {
		p := tx.Resolve([]uint64{uint64(i) + 1})
		tx.AddEvent(p, "web:visit", today-uint16(i%40)) // within 30 days unless i%40 >= 30
	}
	tx.Commit()
	e, err := ParseRule("web:visit in 30d")
	if err != nil {
		t.Fatal(err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n, err := ix.compile(e, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := uint32(now.Unix())
	want := ix.filterRange(ix.live, n, ts, 0, 1<<32)
	if want.GetCardinality() == 0 || want.GetCardinality() == ix.live.GetCardinality() {
		t.Fatalf("%d of %d profiles match: the case tests nothing", want.GetCardinality(),
			ix.live.GetCardinality())
	}
	for _, share := range []uint32{1, 2, 3, 50, 1 << 20} {
		restore := SplitWorkForTest(share)
		got := ix.filterProfiles(ix.live, n, ts)
		restore()
		if !got.Equals(want) {
			t.Errorf("split from %d profiles: %d profiles, want %d", share,
				got.GetCardinality(), want.GetCardinality())
		}
	}
}
