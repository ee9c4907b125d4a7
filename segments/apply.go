package segments

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// applyDraft publishes the new state of profile p: trait and day bitmaps, the segments
// whose rules read a changed trait, and the forward list. Only those segments are
// evaluated, so the cost follows the change, not the number of segments. Writer lock held.
func (ix *Index) applyDraft(p uint32, d *draft, now uint32) {
	old := ix.profiles.get(p)
	if d.deleted {
		ix.dropProfile(p, old)
		return
	}
	of, cur := old.facts(), d.facts()
	var oldSegs []fwd
	if old != nil {
		oldSegs = old.segs
	}

	affected := ix.changedSegments(of, cur, old == nil, d.reeval)
	segs := make([]fwd, 0, len(oldSegs)+len(affected))
	for _, f := range oldSegs {
		if !slices.Contains(affected, ix.slots[f.slot]) {
			segs = append(segs, f)
		}
	}
	for _, s := range affected {
		in, until := s.root.membership(cur, s.deps, s.wins, now)
		if in {
			segs = append(segs, fwd{slot: s.slot, until: until})
			s.bits.Add(p)
		} else {
			s.bits.Remove(p)
		}
	}
	slices.SortFunc(segs, func(a, b fwd) int { return int(int64(a.slot) - int64(b.slot)) })

	ix.updateTraitBits(p, of, cur)
	ix.updateDayBits(p, of.events, cur.events)
	ix.live.Add(p)
	pr := &profile{ids: d.ids, traits: d.traits, events: d.events, segs: segs}
	ix.scheduleNext(p, pr, now)
	ix.profiles.set(p, pr)
}

func (ix *Index) dropProfile(p uint32, old *profile) {
	if old == nil {
		return
	}
	for _, f := range old.segs {
		if s := ix.slots[f.slot]; s != nil {
			s.bits.Remove(p)
		}
	}
	ix.updateTraitBits(p, old.facts(), &facts{})
	ix.updateDayBits(p, old.events, nil)
	ix.live.Remove(p)
	ix.profiles.set(p, nil)
}

// changedSegments returns the segments that read a trait whose memberships or days differ
// between old and cur (every trait of the profile when all is set), plus, for a new
// profile, the segments that an empty profile matches.
func (ix *Index) changedSegments(old, cur *facts, isNew, all bool) []*segState {
	var out []*segState
	add := func(trait uint32) {
		for _, s := range ix.traitSegs[trait] {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	for _, t := range changedTraits(old, cur, all) {
		add(t)
	}
	if isNew {
		for _, s := range ix.emptyTrue {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// changedTraits returns the traits whose membership (presence or expiry) or days differ
// between old and cur, or, when all is set, every trait of either; repeats are possible.
func changedTraits(old, cur *facts, all bool) []uint32 {
	var out []uint32
	for _, m := range old.traits {
		if i, ok := findTrait(cur.traits, m.Trait); all || !ok || cur.traits[i].Until != m.Until {
			out = append(out, m.Trait)
		}
	}
	for _, m := range cur.traits {
		if _, ok := findTrait(old.traits, m.Trait); all || !ok {
			out = append(out, m.Trait)
		}
	}
	for _, e := range old.events {
		if _, ok := slices.BinarySearchFunc(cur.events, e, cmpEvent); all || !ok {
			out = append(out, e.Trait)
		}
	}
	for _, e := range cur.events {
		if _, ok := slices.BinarySearchFunc(old.events, e, cmpEvent); all || !ok {
			out = append(out, e.Trait)
		}
	}
	return out
}

// traitSet returns the sorted, distinct traits of f's memberships and events.
func (f *facts) traitSet() []uint32 {
	out := make([]uint32, 0, len(f.traits)+len(f.events))
	for _, m := range f.traits {
		out = append(out, m.Trait)
	}
	for _, e := range f.events {
		out = append(out, e.Trait)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// updateTraitBits keeps traitBits[t] the set of profiles with a membership or a day of t.
func (ix *Index) updateTraitBits(p uint32, old, cur *facts) {
	now := cur.traitSet()
	for _, t := range old.traitSet() {
		if !containsSorted(now, t) && ix.traitBits[t] != nil {
			ix.traitBits[t].Remove(p)
		}
	}
	for _, t := range now {
		if ix.traitBits[t] == nil {
			ix.traitBits[t] = roaring.New()
		}
		ix.traitBits[t].Add(p)
	}
}

func (ix *Index) updateDayBits(p uint32, old, cur []Event) {
	for _, e := range old {
		if _, ok := slices.BinarySearchFunc(cur, e, cmpEvent); !ok {
			k := dayKey(e.Trait, e.Day)
			if b := ix.dayBits[k]; b != nil {
				if b.Remove(p); b.IsEmpty() {
					delete(ix.dayBits, k)
				}
			}
		}
	}
	for _, e := range cur {
		k := dayKey(e.Trait, e.Day)
		b := ix.dayBits[k]
		if b == nil {
			b = roaring.New()
			ix.dayBits[k] = b
		}
		b.Add(p)
	}
}

// scheduleNext files profile p under the bucket of the next moment at which its segments
// may change by time alone: a membership lapsing, or a day sliding out of a window that
// some rule reads, or out of the retention. The sweep re-evaluates it then.
func (ix *Index) scheduleNext(p uint32, pr *profile, now uint32) {
	next := never
	for _, m := range pr.traits {
		if m.Until > now {
			next = min(next, m.Until)
		}
	}
	for _, e := range pr.events {
		for _, days := range ix.traitWins[e.Trait] {
			if c := (uint32(e.Day) + uint32(days)) * 86400; c > now {
				next = min(next, c)
			}
		}
		if c := (uint32(e.Day) + uint32(ix.retention)) * 86400; c > now {
			next = min(next, c)
		}
	}
	pr.next = next
	if next != never {
		b := next/expiryBucket + 1
		ix.expiry[b] = append(ix.expiry[b], p)
	}
}

// indexWindows rebuilds, for every trait, the window lengths that defined rules read.
func (ix *Index) indexWindows() {
	clear(ix.traitWins)
	for _, s := range ix.slots {
		if s == nil {
			continue
		}
		for _, w := range s.wins {
			if !slices.Contains(ix.traitWins[w.trait], w.days) {
				ix.traitWins[w.trait] = append(ix.traitWins[w.trait], w.days)
			}
		}
	}
}

// installSegment defines g, or redefines it in place so that references to it stay valid,
// then recomputes it and every segment that depends on it. Writer lock held; g compiles.
func (ix *Index) installSegment(g Segment, now uint32) {
	s, ok := ix.segs[g.ID]
	if !ok {
		s = &segState{slot: ix.freeSlot(), bits: roaring.New()}
		ix.segs[g.ID] = s
		ix.slots[s.slot] = s
	}
	e, _ := ParseRule(g.Rule)
	root, _ := ix.compile(e, g.ID)
	s.def, s.root = g, root
	deps := ix.dependents(s)
	s.wins = root.windows()
	for _, dep := range deps {
		dep.wins = dep.root.windows()
	}
	ix.indexWindows()
	ix.recompute(s, now)
	for _, dep := range deps {
		ix.recompute(dep, now)
	}
	ix.reschedule(s.wins, now)
}

// reschedule files again every profile with days of a trait that wins read: a new window
// brings new moments at which profiles may enter or leave a segment.
func (ix *Index) reschedule(wins []window, now uint32) {
	var traits []uint32
	for _, w := range wins {
		if !slices.Contains(traits, w.trait) && ix.traitBits[w.trait] != nil {
			traits = append(traits, w.trait)
		}
	}
	seen := roaring.New()
	for _, t := range traits {
		it := ix.traitBits[t].Iterator()
		for it.HasNext() {
			p := it.Next()
			if pr := ix.profiles.get(p); pr != nil && len(pr.events) > 0 && seen.CheckedAdd(p) {
				ix.scheduleNext(p, pr, now)
			}
		}
	}
}

func (ix *Index) freeSlot() uint32 {
	for i, s := range ix.slots {
		if s == nil {
			return uint32(i)
		}
	}
	ix.slots = append(ix.slots, nil)
	return uint32(len(ix.slots) - 1)
}

// dependents returns the segments that reference s, directly or not, each after the
// segments it references.
func (ix *Index) dependents(s *segState) []*segState {
	var out []*segState
	var visit func(*segState)
	visit = func(x *segState) {
		for _, other := range ix.sortedSegs() {
			if slices.Contains(other.refs, x) && !slices.Contains(out, other) {
				out = append(out, other)
				visit(other)
			}
		}
	}
	visit(s)
	return out
}

func (ix *Index) sortedSegs() []*segState {
	out := make([]*segState, 0, len(ix.segs))
	for _, s := range ix.slots {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// recompute rebuilds s's dependencies, bitmap and forward-list entries after its rule or a
// rule it references changed.
func (ix *Index) recompute(s *segState, now uint32) {
	for _, t := range s.deps {
		ix.traitSegs[t] = slices.DeleteFunc(ix.traitSegs[t], func(x *segState) bool { return x == s })
	}
	ix.emptyTrue = slices.DeleteFunc(ix.emptyTrue, func(x *segState) bool { return x == s })
	s.deps, s.refs = s.root.traits(), s.root.refs()
	for _, t := range s.deps {
		ix.traitSegs[t] = append(ix.traitSegs[t], s)
	}
	if s.root.eval(&facts{}, now) {
		ix.emptyTrue = append(ix.emptyTrue, s)
	}

	fresh, owned := ix.bitmap(s.root, now)
	if !owned {
		fresh = fresh.Clone()
	}
	touched := roaring.Or(s.bits, fresh)
	it := touched.Iterator()
	for it.HasNext() {
		p := it.Next()
		pr := ix.profiles.get(p)
		if pr == nil {
			fresh.Remove(p)
			continue
		}
		in, until := s.root.membership(pr.facts(), s.deps, s.wins, now)
		if !in {
			fresh.Remove(p)
		}
		ix.setForward(p, pr, s.slot, in, until)
	}
	s.bits = fresh
}

// setForward replaces profile p's forward entry for slot, copying the profile.
func (ix *Index) setForward(p uint32, pr *profile, slot uint32, in bool, until uint32) {
	i, found := slices.BinarySearchFunc(pr.segs, slot, func(f fwd, x uint32) int {
		return int(int64(f.slot) - int64(x))
	})
	if !in && !found || in && found && pr.segs[i].until == until {
		return
	}
	segs := slices.Clone(pr.segs)
	switch {
	case !in:
		segs = slices.Delete(segs, i, i+1)
	case found:
		segs[i].until = until
	default:
		segs = slices.Insert(segs, i, fwd{slot: slot, until: until})
	}
	ix.profiles.set(p, &profile{ids: pr.ids, traits: pr.traits, events: pr.events, segs: segs,
		next: pr.next})
}

// removeSegment deletes a segment that nothing references. Writer lock held.
func (ix *Index) removeSegment(id string) {
	s := ix.segs[id]
	it := s.bits.Iterator()
	for it.HasNext() {
		p := it.Next()
		if pr := ix.profiles.get(p); pr != nil {
			ix.setForward(p, pr, s.slot, false, 0)
		}
	}
	for _, t := range s.deps {
		ix.traitSegs[t] = slices.DeleteFunc(ix.traitSegs[t], func(x *segState) bool { return x == s })
	}
	ix.emptyTrue = slices.DeleteFunc(ix.emptyTrue, func(x *segState) bool { return x == s })
	delete(ix.segs, id)
	ix.slots[s.slot] = nil
	ix.indexWindows()
}
