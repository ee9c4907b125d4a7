package segments_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// dayModel is the model of one profile for window rules: its event days and its
// onboarding memberships' expiry, by trait.
type dayModel struct {
	days  map[string][]uint16
	until map[string]uint32
}

// windowWorld holds random profiles with events and memberships, and random rules over
// them with windows and counts, each as text and as a brute-force predicate.
type windowWorld struct {
	rng       *rand.Rand
	traits    []string
	retention uint16
}

type dayPredicate func(p *dayModel, now uint32) bool

func (w *windowWorld) atom() (string, dayPredicate) {
	tr := w.traits[w.rng.IntN(len(w.traits))]
	days := []uint16{1, 3, 7, 30}[w.rng.IntN(4)]
	inWindow := func(p *dayModel, now uint32, n uint16) int {
		today := int(now / 86400)
		c := 0
		for _, d := range p.days[tr] {
			if int(d) <= today && int(d) > today-int(n) {
				c++
			}
		}
		return c
	}
	switch w.rng.IntN(3) {
	case 0:
		return tr, func(p *dayModel, now uint32) bool {
			return p.until[tr] > now || inWindow(p, now, w.retention) > 0
		}
	case 1:
		return fmt.Sprintf("%s in %dd", tr, days), func(p *dayModel, now uint32) bool {
			return inWindow(p, now, days) > 0
		}
	}
	k := 1 + w.rng.IntN(min(3, int(days)))
	return fmt.Sprintf("count(%s in %dd) >= %d", tr, days, k),
		func(p *dayModel, now uint32) bool { return inWindow(p, now, days) >= k }
}

func (w *windowWorld) rule(depth int) (string, dayPredicate) {
	if depth == 0 || w.rng.IntN(3) == 0 {
		return w.atom()
	}
	l, lp := w.rule(depth - 1)
	switch w.rng.IntN(3) {
	case 0:
		r, rp := w.rule(depth - 1)
		return "(" + l + " and " + r + ")",
			func(p *dayModel, t uint32) bool { return lp(p, t) && rp(p, t) }
	case 1:
		r, rp := w.rule(depth - 1)
		return "(" + l + " or " + r + ")",
			func(p *dayModel, t uint32) bool { return lp(p, t) || rp(p, t) }
	}
	return "not " + l, func(p *dayModel, t uint32) bool { return !lp(p, t) }
}

// TestWindowCountsMatchModel defines random window rules over random event histories and
// checks, as the clock moves and the sweep runs, that counts, segment sizes and what is
// served all equal a brute-force evaluation. Even these few profiles are split between
// cores where the index would split many.
func TestWindowCountsMatchModel(t *testing.T) {
	defer segments.SplitWorkForTest(4)()
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { checkWindowWorld(t, seed) })
	}
}

func checkWindowWorld(t *testing.T, seed uint64) {
	w := &windowWorld{rng: rand.New(rand.NewPCG(seed, 7)), retention: 40,
		traits: []string{"web:visit", "web:page=/pricing", "web:geo=london", "crm:gold"}}
	ix := segments.New(segments.NewHasher([]byte("window world secret")), segments.Provider{ID: "segd"})
	ix.SetRetention(int(w.retention))
	start := time.Date(2031, 3, 10, 12, 0, 0, 0, time.UTC)
	today := uint16(start.Unix() / 86400)

	profiles := map[string]*dayModel{}
	tx := ix.Begin(start)
	for i := range 60 {
		uid := fmt.Sprint("u", i)
		m := &dayModel{days: map[string][]uint16{}, until: map[string]uint32{}}
		p := tx.Resolve([]uint64{ix.Hasher().Hash(segments.ID{Type: "uid", Value: uid})})
		for range 1 + w.rng.IntN(6) {
			tr := w.traits[w.rng.IntN(3)]
			d := today - uint16(w.rng.IntN(int(w.retention)))
			if !containsDay(m.days[tr], d) {
				m.days[tr] = append(m.days[tr], d)
			}
			tx.AddEvent(p, tr, d)
		}
		if w.rng.IntN(2) == 0 {
			until := uint32(start.Add(time.Duration(w.rng.IntN(20*24)) * time.Hour).Unix())
			m.until["crm:gold"] = until
			tx.Add(p, "crm:gold", until)
		}
		profiles[uid] = m
	}
	rules := map[string]dayPredicate{}
	for i := range 8 {
		text, pred := w.rule(3)
		id := fmt.Sprint("s", i)
		if err := tx.PutSegment(segments.Segment{ID: id, Name: id, Rule: text}); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		rules[id] = pred
		rules[text] = pred
	}
	tx.Commit()
	ix.MarkReady()

	for _, step := range []time.Duration{0, 26 * time.Hour, 3 * 24 * time.Hour, 9 * 24 * time.Hour,
		25 * 24 * time.Hour, 45 * 24 * time.Hour} {
		now := start.Add(step)
		sweep := ix.Begin(now)
		sweep.Expire()
		sweep.Commit()
		checkWindowStep(t, ix, profiles, rules, now)
	}
}

func checkWindowStep(t *testing.T, ix *segments.Index, profiles map[string]*dayModel,
	rules map[string]dayPredicate, now time.Time) {
	t.Helper()
	sec := uint32(now.Unix())
	retention := uint16(ix.Retention())
	for text, pred := range rules {
		want := uint64(0)
		for _, m := range profiles {
			if m.exists(sec, retention) && pred(m, sec) {
				want++
			}
		}
		if info, ok := ix.Segment(text); ok {
			if info.Size != want {
				t.Errorf("%s at %s: segment %s size %d, want %d", info.Rule, now, text, info.Size, want)
			}
			continue
		}
		if got, err := ix.CountAt(text, now); err != nil || got != want {
			t.Errorf("%s at %s: count %d, %v; want %d", text, now, got, err, want)
		}
	}
	cat := ix.Catalog()
	for uid, m := range profiles {
		served := ix.Lookup(nil, cat, ix.Hasher().Hash(segments.ID{Type: "uid", Value: uid}), sec)
		n := 0
		for id, pred := range rules {
			if _, isSeg := ix.Segment(id); isSeg && m.exists(sec, retention) && pred(m, sec) {
				n++
			}
		}
		if len(served) != n {
			t.Errorf("%s at %s: served %d segments, want %d", uid, now, len(served), n)
		}
	}
}

// exists reports whether, once swept at now, the profile still holds a membership or a
// retained day: a profile with neither is deleted.
func (m *dayModel) exists(now uint32, retention uint16) bool {
	for _, u := range m.until {
		if u > now {
			return true
		}
	}
	today := int(now / 86400)
	for _, ds := range m.days {
		for _, d := range ds {
			if int(d) > today-int(retention) {
				return true
			}
		}
	}
	return false
}

func containsDay(ds []uint16, d uint16) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}
