package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// rebuildWorld drives a store through random imports, segment definitions and deletions,
// clock moves and sweeps.
type rebuildWorld struct {
	t    *testing.T
	rng  *rand.Rand
	e    *env
	ids  []string // every ID the imports may name, as type:value
	segN int      // segments s0 .. s(segN-1) may exist
}

var rebuildCodes = []string{"a", "b", "geo=x", "c/d"}

func newRebuildWorld(t *testing.T, seed uint64) *rebuildWorld {
	w := &rebuildWorld{t: t, rng: rand.New(rand.NewPCG(seed, 42)), e: newEnv(t)}
	for i := range 25 {
		w.ids = append(w.ids, fmt.Sprintf("uid:u%d", i), fmt.Sprintf("ifa:AB-%d", i),
			fmt.Sprintf("eid:id5.io:e%d", i))
	}
	return w
}

func (w *rebuildWorld) step() {
	w.t.Helper()
	switch k := w.rng.IntN(10); {
	case k < 3:
		w.importTSV()
	case k < 6:
		w.importNDJSON()
	case k < 9:
		w.defineSegment()
	default:
		id := fmt.Sprintf("s%d", w.rng.IntN(w.segN+1))
		err := w.e.db.DeleteSegment(id)
		if err != nil && !errors.Is(err, segments.ErrInUse) &&
			!errors.Is(err, segments.ErrNotFound) {
			w.t.Fatalf("delete %s: %v", id, err)
		}
	}
}

// lineIDs returns one ID, or now and then two, which may merge two profiles.
func (w *rebuildWorld) lineIDs() []string {
	n := 1
	if w.rng.IntN(6) == 0 {
		n = 2
	}
	out := make([]string, n)
	for i := range out {
		out[i] = w.ids[w.rng.IntN(len(w.ids))]
	}
	return out
}

func (w *rebuildWorld) codes() (add, remove []string) {
	for _, c := range rebuildCodes {
		switch w.rng.IntN(5) {
		case 0, 1:
			add = append(add, c)
		case 2:
			remove = append(remove, c)
		}
	}
	if len(add)+len(remove) == 0 {
		add = append(add, rebuildCodes[0])
	}
	return add, remove
}

func (w *rebuildWorld) importTSV() {
	var b strings.Builder
	for range 1 + w.rng.IntN(10) {
		add, remove := w.codes()
		codes := slices.Clone(add)
		for _, c := range remove {
			codes = append(codes, "-"+c)
		}
		fmt.Fprintf(&b, "%s\t%s\n", strings.Join(w.lineIDs(), "|"), strings.Join(codes, ","))
	}
	source := []string{"crm", "web"}[w.rng.IntN(2)]
	checkResult(w.t, w.e.importText(source, segments.TSV, b.String()),
		strings.Count(b.String(), "\n"), nil)
}

func (w *rebuildWorld) importNDJSON() {
	var b strings.Builder
	for range 1 + w.rng.IntN(10) {
		var ids []string
		for _, s := range w.lineIDs() {
			id, _ := segments.ParseID(s)
			ids = append(ids, fmt.Sprintf(`{"type":%q,"value":%q}`, id.Type, id.Value))
		}
		add, remove := w.codes()
		fmt.Fprintf(&b, `{"ids":[%s],"add":%s,"remove":%s,"ttl":"%dh"}`+"\n",
			strings.Join(ids, ","), jsonList(add), jsonList(remove), 1+w.rng.IntN(4))
	}
	checkResult(w.t, w.e.importText("web", segments.NDJSON, b.String()),
		strings.Count(b.String(), "\n"), nil)
}

func jsonList(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return `["` + strings.Join(s, `","`) + `"]`
}

// defineSegment defines or redefines a random segment with a random rule, which may
// reference any segment: the store refuses cycles and unknown segments.
func (w *rebuildWorld) defineSegment() {
	id := fmt.Sprintf("s%d", w.rng.IntN(w.segN+1))
	if id == fmt.Sprintf("s%d", w.segN) {
		w.segN++
	}
	err := w.e.db.PutSegment(segments.Segment{ID: id, Name: id, Rule: w.rule(3)})
	if err != nil && !errors.As(err, new(*segments.RuleError)) {
		w.t.Fatalf("define %s: %v", id, err)
	}
}

func (w *rebuildWorld) rule(depth int) string {
	if depth == 0 || w.rng.IntN(3) == 0 {
		if w.segN > 0 && w.rng.IntN(4) == 0 {
			return fmt.Sprintf("segment:s%d", w.rng.IntN(w.segN))
		}
		source := []string{"crm", "web"}[w.rng.IntN(2)]
		return source + ":" + rebuildCodes[w.rng.IntN(len(rebuildCodes))]
	}
	switch w.rng.IntN(3) {
	case 0:
		return "(" + w.rule(depth-1) + " and " + w.rule(depth-1) + ")"
	case 1:
		return "(" + w.rule(depth-1) + " or " + w.rule(depth-1) + ")"
	}
	return "not " + w.rule(depth-1)
}

// members returns, per segment, the profiles whose forward lists hold it, found through
// every ID; and checks that every profile the index holds was reached.
func (w *rebuildWorld) members(e *env) map[string][]uint32 {
	w.t.Helper()
	out := map[string][]uint32{}
	seen := map[uint32]bool{}
	for _, id := range w.ids {
		p, ok := e.ix.LookupProfile(e.hash(id), e.clk.Now())
		if !ok || seen[p.Profile] {
			continue
		}
		seen[p.Profile] = true
		for _, s := range p.Segments {
			out[s] = append(out[s], p.Profile)
		}
	}
	if got := e.ix.Stats().Profiles; got != len(seen) {
		w.t.Fatalf("index holds %d profiles, the IDs reach %d", got, len(seen))
	}
	for _, s := range e.ix.Segments() {
		slices.Sort(out[s.ID])
		if uint64(len(out[s.ID])) != s.Size {
			w.t.Fatalf("segment %s: size %d, but %d profiles list it", s.ID, s.Size,
				len(out[s.ID]))
		}
	}
	return out
}

// TestRebuildEqualsLive checks that an index rebuilt from the store after a random history
// equals the live one: every profile, link, trait and served segment, every segment's size
// and members, and counts of the segments' rules. Each round restarts from the store and
// goes on with the rebuilt index, so restarts chain.
func TestRebuildEqualsLive(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newRebuildWorld(t, seed)
			for round := range 8 {
				for range 8 {
					w.step()
				}
				// Whole hours and one minute: no membership lapses in the ten seconds
				// before a sweep, which the sweep would leave to the next one.
				w.e.clk.Advance(time.Duration(w.rng.IntN(3))*time.Hour + time.Minute)
				w.e.sweep()

				before, members := snapshot(t, w.e, w.ids), w.members(w.e)
				counts := w.counts(w.e)
				w.e = w.e.reopen()
				if after := snapshot(t, w.e, w.ids); after != before {
					t.Fatalf("round %d: rebuilt index\n%s\nlive index\n%s", round, after, before)
				}
				if got := w.members(w.e); !equalMembers(got, members) {
					t.Fatalf("round %d: members %v, live %v", round, got, members)
				}
				if got := w.counts(w.e); !slices.Equal(got, counts) {
					t.Fatalf("round %d: counts %v, live %v", round, got, counts)
				}
			}
		})
	}
}

// counts returns Count of every segment's rule and of each segment combined with a trait,
// which reads the segment and trait bitmaps rather than the forward lists.
func (w *rebuildWorld) counts(e *env) []uint64 {
	w.t.Helper()
	var out []uint64
	for _, s := range e.ix.Segments() {
		for _, rule := range []string{s.Rule, "segment:" + s.ID + " and not crm:a",
			"segment:" + s.ID + " or web:geo=x"} {
			n, err := e.ix.Count(rule)
			if err != nil {
				w.t.Fatalf("Count(%q): %v", rule, err)
			}
			out = append(out, n)
		}
	}
	return out
}

func equalMembers(a, b map[string][]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
