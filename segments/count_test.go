package segments_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// traitSet is the model of one profile: the traits it has.
type traitSet map[string]bool

// ruleModel evaluates a rule directly over a profile of the model.
type ruleModel func(traitSet) bool

// countWorld is an independent model of what the index should hold: profiles as trait sets
// and segments as predicates, evaluated by brute force.
type countWorld struct {
	rng      *rand.Rand
	alphabet []string
	profiles map[string]traitSet // uid -> traits; a profile without traits does not exist
	segIDs   []string            // defined segments, in definition order
	segRules map[string]ruleModel
}

func newCountWorld(seed uint64) *countWorld {
	return &countWorld{
		rng:      rand.New(rand.NewPCG(seed, 0x5e9d)),
		alphabet: []string{"a:x", "a:y", "b:x", "b:y=1", "c:z/p"},
		profiles: map[string]traitSet{},
		segRules: map[string]ruleModel{},
	}
}

// rule returns a random rule of at most depth levels as source text and as a model. It may
// reference the first refs segments.
func (w *countWorld) rule(depth, refs int) (string, ruleModel) {
	if depth == 0 || w.rng.IntN(4) == 0 {
		if refs > 0 && w.rng.IntN(4) == 0 {
			id := w.segIDs[w.rng.IntN(refs)]
			return "segment:" + id, func(p traitSet) bool { return w.segRules[id](p) }
		}
		tr := w.alphabet[w.rng.IntN(len(w.alphabet))]
		return tr, func(p traitSet) bool { return p[tr] }
	}
	keyword := func(kw string) string {
		if w.rng.IntN(5) == 0 {
			return string(kw[0]-'a'+'A') + kw[1:] // keywords are case-insensitive
		}
		return kw
	}
	l, lm := w.rule(depth-1, refs)
	switch w.rng.IntN(3) {
	case 0:
		r, rm := w.rule(depth-1, refs)
		return "(" + l + " " + keyword("and") + " " + r + ")",
			func(p traitSet) bool { return lm(p) && rm(p) }
	case 1:
		r, rm := w.rule(depth-1, refs)
		return "(" + l + " " + keyword("or") + " " + r + ")",
			func(p traitSet) bool { return lm(p) || rm(p) }
	}
	return keyword("not") + " " + l, func(p traitSet) bool { return !lm(p) }
}

// count returns how many profiles of the model m matches.
func (w *countWorld) count(m ruleModel) uint64 {
	n := uint64(0)
	for _, p := range w.profiles {
		if m(p) {
			n++
		}
	}
	return n
}

// defineSegment defines segment i, referencing only earlier segments so that no cycle forms.
func (w *countWorld) defineSegment(t *testing.T, ix *segments.Index, i int) {
	t.Helper()
	id := fmt.Sprintf("s%d", i)
	if i == len(w.segIDs) {
		w.segIDs = append(w.segIDs, id)
	}
	src, m := w.rule(3, i)
	define(t, ix, t0, id, src)
	w.segRules[id] = m
}

// changeProfiles adds and removes random traits of n random profiles in one Txn.
func (w *countWorld) changeProfiles(t *testing.T, ix *segments.Index, n, users int) {
	t.Helper()
	until := unix(t0.Add(24 * time.Hour))
	update(t, ix, t0, func(tx *segments.Txn) error {
		for range n {
			u := fmt.Sprintf("u%d", w.rng.IntN(users))
			p := tx.Resolve([]uint64{uid(u)})
			set := w.profiles[u]
			if set == nil {
				set = traitSet{}
			}
			for _, tr := range w.alphabet {
				switch w.rng.IntN(6) {
				case 0, 1:
					tx.Add(p, tr, until)
					set[tr] = true
				case 2:
					tx.Remove(p, tr)
					delete(set, tr)
				}
			}
			w.profiles[u] = set
			if len(set) == 0 {
				delete(w.profiles, u)
			}
		}
		return nil
	})
}

// check compares the index with the model: random rules counted, segment sizes, and what
// the request path serves to every user.
func (w *countWorld) check(t *testing.T, ix *segments.Index, rules, users int) {
	t.Helper()
	for range rules {
		src, m := w.rule(4, len(w.segIDs))
		got, err := ix.Count(src)
		if err != nil {
			t.Fatalf("Count(%q): %v", src, err)
		}
		if want := w.count(m); got != want {
			t.Fatalf("Count(%q) = %d, want %d", src, got, want)
		}
	}
	for _, id := range w.segIDs {
		if got, want := size(t, ix, id), w.count(w.segRules[id]); got != want {
			info, _ := ix.Segment(id)
			t.Errorf("segment %s (%s): size %d, want %d", id, info.Rule, got, want)
		}
	}
	for i := range users {
		u := fmt.Sprintf("u%d", i)
		var want []string
		if p, ok := w.profiles[u]; ok {
			for _, id := range w.segIDs {
				if w.segRules[id](p) {
					want = append(want, id)
				}
			}
		}
		slices.Sort(want)
		if got := served(t, ix, uid(u), t0); !slices.Equal(got, want) {
			t.Fatalf("user %s with %v: served %v, want %v", u, w.profiles[u], got, want)
		}
	}
}

// TestCountMatchesModel compares Count, segment sizes and served segments with a brute-force
// evaluation over random profiles, rules and segment definitions, changed in random order.
func TestCountMatchesModel(t *testing.T) {
	const users = 150
	for seed := range uint64(24) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newCountWorld(seed)
			ix := newIndex()
			segsFirst := seed%2 == 0
			if segsFirst {
				for i := range 4 {
					w.defineSegment(t, ix, i)
				}
			}
			for range 4 {
				w.changeProfiles(t, ix, 40, users)
			}
			if !segsFirst {
				for i := range 4 {
					w.defineSegment(t, ix, i)
				}
			}
			w.check(t, ix, 100, users)

			w.defineSegment(t, ix, w.rng.IntN(4)) // redefinition, dependents follow
			w.changeProfiles(t, ix, 60, users)
			w.check(t, ix, 100, users)
		})
	}
}

func TestCountErrors(t *testing.T) {
	ix := newIndex()
	for _, rule := range []string{"", "crm:x and", "segment:nope", "web:x in 400d"} {
		if _, err := ix.Count(rule); err == nil {
			t.Errorf("Count(%q) succeeded", rule)
		}
	}
}
