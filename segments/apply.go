package segments

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// applyDraft publishes the new state of profile p: trait bitmaps, the segments whose rules
// depend on a changed trait, and the forward list. Only those segments are evaluated, so
// the cost follows the change, not the number of segments. Writer lock held.
func (ix *Index) applyDraft(p uint32, d *draft, now uint32) {
	old := ix.profiles.get(p)
	if d.deleted {
		ix.dropProfile(p, old)
		return
	}
	var oldTraits []Membership
	var oldSegs []fwd
	if old != nil {
		oldTraits, oldSegs = old.traits, old.segs
	}

	affected := ix.changedSegments(oldTraits, d.traits, old == nil)
	segs := make([]fwd, 0, len(oldSegs)+len(affected))
	for _, f := range oldSegs {
		if !slices.Contains(affected, ix.slots[f.slot]) {
			segs = append(segs, f)
		}
	}
	for _, s := range affected {
		in, until := s.root.membership(d.traits, s.deps, now)
		if in {
			segs = append(segs, fwd{slot: s.slot, until: until})
			s.bits.Add(p)
		} else {
			s.bits.Remove(p)
		}
	}
	slices.SortFunc(segs, func(a, b fwd) int { return int(int64(a.slot) - int64(b.slot)) })

	ix.updateTraitBits(p, oldTraits, d.traits)
	ix.live.Add(p)
	ix.scheduleExpiry(p, oldTraits, d.traits)
	ix.profiles.set(p, &profile{ids: d.ids, traits: d.traits, segs: segs})
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
	ix.updateTraitBits(p, old.traits, nil)
	ix.live.Remove(p)
	ix.profiles.set(p, nil)
}

// changedSegments returns the segments that depend on a trait that differs between the
// old and new memberships (presence or expiry), plus, for a new profile, the segments that
// an empty profile matches.
func (ix *Index) changedSegments(old, cur []Membership, isNew bool) []*segState {
	var out []*segState
	add := func(trait uint32) {
		for _, s := range ix.traitSegs[trait] {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || i < len(old) && old[i].Trait < cur[j].Trait:
			add(old[i].Trait)
			i++
		case i == len(old) || cur[j].Trait < old[i].Trait:
			add(cur[j].Trait)
			j++
		default:
			if old[i].Until != cur[j].Until {
				add(cur[j].Trait)
			}
			i++
			j++
		}
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

func (ix *Index) updateTraitBits(p uint32, old, cur []Membership) {
	for _, m := range old {
		if _, ok := findTrait(cur, m.Trait); !ok && ix.traitBits[m.Trait] != nil {
			ix.traitBits[m.Trait].Remove(p)
		}
	}
	for _, m := range cur {
		if ix.traitBits[m.Trait] == nil {
			ix.traitBits[m.Trait] = roaring.New()
		}
		ix.traitBits[m.Trait].Add(p)
	}
}

// scheduleExpiry files p under the buckets of its new expiry times.
func (ix *Index) scheduleExpiry(p uint32, old, cur []Membership) {
	for _, m := range cur {
		if m.Until == never {
			continue
		}
		if i, ok := findTrait(old, m.Trait); ok && old[i].Until == m.Until {
			continue
		}
		b := m.Until/expiryBucket + 1
		ix.expiry[b] = append(ix.expiry[b], p)
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
	ix.recompute(s, now)
	for _, dep := range ix.dependents(s) {
		ix.recompute(dep, now)
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
	if s.root.eval(nil, now) {
		ix.emptyTrue = append(ix.emptyTrue, s)
	}

	fresh, owned := ix.bitmap(s.root)
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
		in, until := s.root.membership(pr.traits, s.deps, now)
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
	ix.profiles.set(p, &profile{ids: pr.ids, traits: pr.traits, segs: segs})
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
}
