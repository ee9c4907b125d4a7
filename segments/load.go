package segments

import (
	"fmt"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Loader fills an Index from persisted state at start-up. Call its methods in any order,
// but Suppressed before Profile, then Finish. It is used before the Index serves, so it
// takes no care of readers.
type Loader struct {
	ix   *Index
	now  uint32
	segs []Segment
}

// NewLoader returns a Loader for ix, which must be empty, taking now as the clock.
func (ix *Index) NewLoader(now time.Time) *Loader {
	return &Loader{ix: ix, now: unixSeconds(now)}
}

// Trait registers a persisted trait name under its ordinal.
func (l *Loader) Trait(ord uint32, name string) error {
	ix := l.ix
	if other, ok := ix.traitIDs[name]; ok && other != ord {
		return fmt.Errorf("trait %q stored under ordinals %d and %d", name, other, ord)
	}
	for uint32(len(ix.traitNames)) <= ord {
		ix.traitNames = append(ix.traitNames, "")
		ix.traitStored = append(ix.traitStored, false)
		ix.traitBits = append(ix.traitBits, nil)
		ix.traitSegs = append(ix.traitSegs, nil)
	}
	if ix.traitNames[ord] != "" && ix.traitNames[ord] != name {
		return fmt.Errorf("trait ordinal %d stored as %q and %q", ord, ix.traitNames[ord], name)
	}
	ix.traitNames[ord] = name
	ix.traitStored[ord] = true
	ix.traitIDs[name] = ord
	return nil
}

// Source registers a source definition.
func (l *Loader) Source(s Source) {
	l.ix.sources[s.ID] = &s
}

// Segment registers a segment definition; segments are compiled in Finish, once all are
// known, so references may come in any order.
func (l *Loader) Segment(g Segment) {
	l.segs = append(l.segs, g)
}

// NextProfile records the first unallocated profile ordinal.
func (l *Loader) NextProfile(n uint32) {
	l.ix.nextProfile = max(l.ix.nextProfile, n)
}

// Profile registers one persisted profile. Lapsed memberships and days past the retention
// are kept, as a live index keeps them until its sweep: they are never served, and the
// first sweep deletes them from the index and the store. It reports an error for a record
// that names an unknown trait, and refuses a record that holds a suppressed ID with an
// error wrapping ErrOptedOut, for the caller to skip: such a record outlived the deletion
// that suppressed the ID (an old backup restored, say) and must not come back. The index
// keeps rec's slices, which the caller must not use again.
func (l *Loader) Profile(rec ProfileRecord) error {
	ix := l.ix
	for _, h := range rec.IDs {
		if _, ok := ix.suppressed[h]; ok {
			ix.nextProfile = max(ix.nextProfile, rec.Profile+1) // never reuse its ordinal
			return fmt.Errorf("profile %d: %w", rec.Profile, ErrOptedOut)
		}
	}
	traits := rec.Traits
	slices.SortFunc(traits, func(a, b Membership) int { return int(int64(a.Trait) - int64(b.Trait)) })
	events := rec.Events
	slices.SortFunc(events, cmpEvent)
	f := &facts{traits: traits, events: slices.CompactFunc(events, func(a, b Event) bool {
		return a == b
	})}
	for _, t := range f.traitSet() {
		if int(t) >= len(ix.traitNames) || ix.traitNames[t] == "" {
			return fmt.Errorf("profile %d: unknown trait ordinal %d", rec.Profile, t)
		}
	}
	for _, h := range rec.IDs {
		ix.dict.set(h, rec.Profile)
	}
	ix.updateTraitBits(rec.Profile, &facts{}, f)
	ix.updateDayBits(rec.Profile, nil, f.events)
	ix.live.Add(rec.Profile)
	ix.profiles.set(rec.Profile, &profile{ids: rec.IDs, traits: f.traits, events: f.events})
	ix.nextProfile = max(ix.nextProfile, rec.Profile+1)
	return nil
}

// Finish compiles the segments, computes their bitmaps and the forward lists, and publishes
// the catalog. It does not mark the Index ready.
func (l *Loader) Finish() error {
	ix := l.ix
	pending := slices.Clone(l.segs)
	for len(pending) > 0 {
		progress := false
		for i := 0; i < len(pending); i++ {
			g := pending[i]
			if !refsDefined(ix, g) {
				continue
			}
			if err := l.install(g); err != nil {
				return err
			}
			pending = slices.Delete(pending, i, i+1)
			i--
			progress = true
		}
		if !progress {
			return fmt.Errorf("segment %q: references an undefined segment or a cycle",
				pending[0].ID)
		}
	}
	ix.indexWindows()
	l.buildForward()
	l.schedule()
	ix.catalog.Store(ix.buildCatalog())
	return nil
}

func refsDefined(ix *Index, g Segment) bool {
	e, err := ParseRule(g.Rule)
	if err != nil {
		return true // install reports it
	}
	ok := true
	var visit func(Expr)
	visit = func(e Expr) {
		switch e := e.(type) {
		case *SegmentExpr:
			_, found := ix.segs[e.ID]
			ok = ok && found
		case *AndExpr:
			visit(e.L)
			visit(e.R)
		case *OrExpr:
			visit(e.L)
			visit(e.R)
		case *NotExpr:
			visit(e.X)
		}
	}
	visit(e)
	return ok
}

func (l *Loader) install(g Segment) error {
	ix := l.ix
	e, err := ParseRule(g.Rule)
	if err != nil {
		return fmt.Errorf("segment %q: %w", g.ID, err)
	}
	root, err := ix.compile(e, g.ID)
	if err != nil {
		return fmt.Errorf("segment %q: %w", g.ID, err)
	}
	s := &segState{def: g, slot: ix.freeSlot(), root: root}
	ix.segs[g.ID] = s
	ix.slots[s.slot] = s
	s.deps, s.refs = root.traits(), root.refs()
	for _, t := range s.deps {
		ix.traitSegs[t] = append(ix.traitSegs[t], s)
	}
	s.wins = root.windows()
	if root.eval(&facts{}, l.now) {
		ix.emptyTrue = append(ix.emptyTrue, s)
	}
	bm, owned := ix.bitmap(root, l.now)
	if !owned {
		bm = bm.Clone()
	}
	s.bits = bm
	return nil
}

// buildForward computes every profile's forward list and every segment's members, profile
// by profile: each profile is read once, while its facts are in the cache, and only the
// segments that read one of its traits, or that an empty profile matches, are evaluated.
// Profiles come in ordinal order, so the new bitmaps are built by appends.
//
// A profile holding lapsed memberships keeps them, as every bitmap does, until the first
// sweep; like a live index before its sweep, it is in a segment only when both its facts
// now and the bitmaps say so.
func (l *Loader) buildForward() {
	ix := l.ix
	members := make([]memberBuffer, len(ix.slots))
	var cands []*segState
	it := ix.live.Iterator()
	for it.HasNext() {
		p := it.Next()
		pr := ix.profiles.get(p)
		f := facts{traits: pr.traits, events: pr.events}
		stale := lapsed(pr, l.now, ix.retention)
		cands = ix.candidates(cands[:0], &f)
		var buf [64]fwd
		segs := buf[:0]
		for _, s := range cands {
			in, until := s.root.membership(&f, s.deps, s.wins, l.now)
			if in && (!stale || s.bits.Contains(p)) {
				segs = append(segs, fwd{slot: s.slot, until: until})
				members[s.slot].add(p)
			}
		}
		if len(segs) > 0 {
			pr.segs = slices.Clone(segs) // exactly sized: the lists are most of the index
		}
	}
	for i, s := range ix.slots {
		if s != nil {
			s.bits = members[i].bitmap()
		}
	}
}

// memberBuffer collects a segment's members in increasing order and adds them to a bitmap
// a few thousand at a time, which is much cheaper than one by one.
type memberBuffer struct {
	bm  *roaring.Bitmap
	buf []uint32
}

func (b *memberBuffer) add(p uint32) {
	if b.buf == nil {
		b.bm, b.buf = roaring.New(), make([]uint32, 0, 4096)
	}
	b.buf = append(b.buf, p)
	if len(b.buf) == cap(b.buf) {
		b.bm.AddMany(b.buf)
		b.buf = b.buf[:0]
	}
}

func (b *memberBuffer) bitmap() *roaring.Bitmap {
	if b.bm == nil {
		return roaring.New()
	}
	b.bm.AddMany(b.buf)
	return b.bm
}

// candidates appends to dst, sorted by slot and without repeats, the segments that may
// hold a profile with facts f: those whose rules read one of its traits, and those that
// an empty profile matches. Writer lock held.
func (ix *Index) candidates(dst []*segState, f *facts) []*segState {
	last := never
	add := func(t uint32) {
		if t != last {
			dst = append(dst, ix.traitSegs[t]...)
			last = t
		}
	}
	for _, m := range f.traits {
		add(m.Trait)
	}
	last = never
	for _, e := range f.events {
		add(e.Trait)
	}
	dst = append(dst, ix.emptyTrue...)
	slices.SortFunc(dst, func(a, b *segState) int { return int(int64(a.slot) - int64(b.slot)) })
	return slices.Compact(dst)
}

// schedule files every profile under the bucket of its next change by time; one whose
// memberships lapsed while segd was down lands in a past bucket, which the first sweep
// handles.
func (l *Loader) schedule() {
	ix := l.ix
	it := ix.live.Iterator()
	for it.HasNext() {
		p := it.Next()
		pr := ix.profiles.get(p)
		if lapsed(pr, l.now, ix.retention) {
			b := l.now / expiryBucket
			ix.expiry[b] = append(ix.expiry[b], p)
			continue
		}
		ix.scheduleNext(p, pr, l.now)
	}
}

// lapsed reports whether pr holds a membership past its expiry or a day past the
// retention at now.
func lapsed(pr *profile, now uint32, retention uint16) bool {
	for _, m := range pr.traits {
		if m.Until <= now {
			return true
		}
	}
	oldest := int(Day(now)) - int(retention) + 1
	for _, e := range pr.events {
		if int(e.Day) < oldest {
			return true
		}
	}
	return false
}
