package segments

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
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
	// The profiles seen, and those with each trait, by trait ordinal: Finish turns them
	// into the index's bitmaps.
	live   memberBuffer
	traits []memberBuffer
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
	known := func(t uint32) bool { return int(t) < len(ix.traitNames) && ix.traitNames[t] != "" }
	for _, m := range f.traits {
		if !known(m.Trait) {
			return fmt.Errorf("profile %d: unknown trait ordinal %d", rec.Profile, m.Trait)
		}
	}
	for _, e := range f.events {
		if !known(e.Trait) {
			return fmt.Errorf("profile %d: unknown trait ordinal %d", rec.Profile, e.Trait)
		}
	}
	for _, h := range rec.IDs {
		ix.dict.set(h, rec.Profile)
	}
	l.addTraits(rec.Profile, f)
	ix.updateDayBits(rec.Profile, nil, f.events)
	l.live.add(rec.Profile)
	ix.profiles.set(rec.Profile, &profile{ids: rec.IDs, traits: f.traits, events: f.events})
	ix.nextProfile = max(ix.nextProfile, rec.Profile+1)
	return nil
}

// addTraits records profile p under each trait of f.
func (l *Loader) addTraits(p uint32, f *facts) {
	add := func(t uint32) {
		for int(t) >= len(l.traits) {
			l.traits = append(l.traits, memberBuffer{})
		}
		l.traits[t].add(p)
	}
	for _, m := range f.traits {
		add(m.Trait)
	}
	last := never
	for _, e := range f.events {
		if e.Trait != last {
			add(e.Trait) // a trait held both ways is added twice, which a bitmap ignores
			last = e.Trait
		}
	}
}

// Finish compiles the segments, computes their bitmaps and the forward lists, and publishes
// the catalog. It does not mark the Index ready.
func (l *Loader) Finish() error {
	ix := l.ix
	ix.live.Or(l.live.bitmap())
	for t := range l.traits {
		if l.traits[t].bm != nil {
			ix.traitBits[t] = l.traits[t].bitmap()
		}
	}
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
// The ordinals are split in contiguous ranges, one per core, each building its own share
// of every segment's bitmap by appends; the shares are then joined.
//
// A profile holding lapsed memberships keeps them, as every bitmap does, until the first
// sweep; like a live index before its sweep, it is in a segment only when both its facts
// now and the bitmaps say so.
func (l *Loader) buildForward() {
	ix := l.ix
	workers := max(1, min(runtime.GOMAXPROCS(0), int(ix.nextProfile/coreShare)))
	shares := make([][]memberBuffer, workers)
	var wg sync.WaitGroup
	for w := range workers {
		shares[w] = make([]memberBuffer, len(ix.slots))
		lo := uint32(uint64(ix.nextProfile) * uint64(w) / uint64(workers))
		hi := uint32(uint64(ix.nextProfile) * uint64(w+1) / uint64(workers))
		wg.Go(func() { l.forwardRange(lo, hi, shares[w]) })
	}
	wg.Wait()
	for i, s := range ix.slots {
		if s == nil {
			continue
		}
		parts := make([]*roaring.Bitmap, workers)
		for w := range workers {
			parts[w] = shares[w][i].bitmap()
		}
		s.bits = roaring.FastOr(parts...)
	}
}

// forwardRange is buildForward for the profiles with ordinals in [lo, hi), recording each
// segment's members in members, by slot. It only reads the index beyond those profiles'
// forward lists, so ranges may run at once.
func (l *Loader) forwardRange(lo, hi uint32, members []memberBuffer) {
	ix := l.ix
	var cands []uint32
	it := ix.live.Iterator()
	it.AdvanceIfNeeded(lo)
	for it.HasNext() {
		p := it.Next()
		if p >= hi {
			break
		}
		pr := ix.profiles.get(p)
		f := facts{traits: pr.traits, events: pr.events}
		stale := lapsed(pr, l.now, ix.retention)
		cands = ix.candidates(cands[:0], &f)
		var buf [64]fwd
		segs := buf[:0]
		for _, slot := range cands {
			s := ix.slots[slot]
			in, until := s.root.membership(&f, s.deps, s.wins, l.now)
			if in && (!stale || s.bits.Contains(p)) {
				segs = append(segs, fwd{slot: slot, until: until})
				members[slot].add(p)
			}
		}
		if len(segs) > 0 {
			pr.segs = slices.Clone(segs) // exactly sized: the lists are most of the index
		}
	}
}

// candidates appends to dst, sorted and without repeats, the slots of the segments that
// may hold a profile with facts f: those whose rules read one of its traits, and those
// that an empty profile matches. It only reads the index.
func (ix *Index) candidates(dst []uint32, f *facts) []uint32 {
	last := never
	add := func(t uint32) {
		if t != last {
			for _, s := range ix.traitSegs[t] {
				dst = append(dst, s.slot)
			}
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
	for _, s := range ix.emptyTrue {
		dst = append(dst, s.slot)
	}
	if !slices.IsSorted(dst) { // often sorted already: slots follow the traits' order
		slices.Sort(dst)
	}
	return slices.Compact(dst)
}

// coreShare is the fewest profiles worth a core of their own when work over profiles is
// split between cores (buildForward, filterProfiles); a variable so that tests can split
// small indexes too.
var coreShare uint32 = 65536

// memberBuffer collects the members of a segment or a trait in increasing order and adds them
// to a bitmap a few thousand at a time, which is much cheaper than one by one.
type memberBuffer struct {
	bm  *roaring.Bitmap
	buf []uint32
}

func (b *memberBuffer) add(p uint32) {
	if b.bm == nil {
		b.bm = roaring.New()
	}
	// The buffer grows as it fills, so the many traits that few profiles hold cost little.
	if b.buf = append(b.buf, p); len(b.buf) == memberBatch {
		b.bm.AddMany(b.buf)
		b.buf = b.buf[:0]
	}
}

// memberBatch is how many members a memberBuffer holds before adding them to its bitmap.
const memberBatch = 4096

func (b *memberBuffer) bitmap() *roaring.Bitmap {
	if b.bm == nil {
		return roaring.New()
	}
	b.bm.AddMany(b.buf)
	return b.bm
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
