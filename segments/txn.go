package segments

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors a Txn returns for definitions.
var (
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("in use")
	// ErrOptedOut marks data refused because every ID it names was deleted and suppressed.
	ErrOptedOut = errors.New("id opted out")
)

// Txn is a set of changes to the Index, prepared under its writer lock. The caller builds
// it, persists Changes, then calls Commit to publish it to readers, or Rollback to drop it.
// Exactly one of them must be called. A Txn is not safe for concurrent use.
type Txn struct {
	ix     *Index
	now    uint32
	drafts map[uint32]*draft
	order  []uint32          // drafted profiles in first-touch order
	links  map[uint64]uint32 // ID hash -> profile, NoProfile to unlink
	next   uint32
	// suppress holds the ID hashes this Txn adds to the suppression list, in order; supp
	// holds the same hashes as a set, nil until the first.
	suppress []uint64
	supp     map[uint64]struct{}

	putSources  []Source
	delSources  []string
	putSegments []Segment
	delSegments []string
	expired     []uint32 // expiry buckets that Expire handled; dropped at Commit
	done        bool
}

type draft struct {
	ids     []uint64
	traits  []Membership
	events  []Event
	deleted bool
	reeval  bool // re-evaluate every segment that reads the profile: windows slid
}

func (d *draft) empty() bool { return len(d.traits) == 0 && len(d.events) == 0 }

func (d *draft) facts() *facts { return &facts{traits: d.traits, events: d.events} }

// Begin starts a Txn at now, taking the writer lock until Commit or Rollback.
func (ix *Index) Begin(now time.Time) *Txn {
	ix.mu.Lock()
	return &Txn{
		ix:     ix,
		now:    unixSeconds(now),
		drafts: make(map[uint32]*draft),
		links:  make(map[uint64]uint32),
		next:   ix.nextProfile,
	}
}

// Now returns the Txn's clock in unix seconds.
func (t *Txn) Now() uint32 { return t.now }

// Source returns a defined source.
func (t *Txn) Source(id string) (Source, bool) {
	s, ok := t.ix.sources[id]
	if !ok {
		return Source{}, false
	}
	return *s, true
}

func (t *Txn) profileOf(h uint64) uint32 {
	if p, ok := t.links[h]; ok {
		return p
	}
	return t.ix.dict.lookup(h)
}

func (t *Txn) draftOf(p uint32) *draft {
	if d, ok := t.drafts[p]; ok {
		return d
	}
	d := &draft{}
	if pr := t.ix.profiles.get(p); pr != nil {
		d.ids = slices.Clone(pr.ids)
		d.traits = slices.Clone(pr.traits)
		d.events = slices.Clone(pr.events)
	}
	t.drafts[p] = d
	t.order = append(t.order, p)
	return d
}

// Resolve returns the profile that the ID hashes belong to, linking the unknown ones to it.
// It creates a profile when none is known, and merges profiles when the IDs were linked to
// different ones, so that one person is one profile. Suppressed IDs are ignored: when every
// ID is suppressed, Resolve returns NoProfile, which Add, AddEvent and Remove ignore.
func (t *Txn) Resolve(ids []uint64) uint32 {
	target := NoProfile
	live := 0
	for _, h := range ids {
		if t.suppressed(h) {
			continue
		}
		live++
		p := t.profileOf(h)
		switch {
		case p == NoProfile || p == target:
		case target == NoProfile:
			target = p
		default:
			t.merge(target, p)
		}
	}
	if live == 0 {
		return NoProfile
	}
	if target == NoProfile {
		target = t.next
		t.next++
	}
	d := t.draftOf(target)
	for _, h := range ids {
		if !t.suppressed(h) && t.profileOf(h) != target {
			t.links[h] = target
			d.ids = append(d.ids, h)
		}
	}
	return target
}

// merge moves every ID and trait of profile from into profile into, and deletes from.
func (t *Txn) merge(into, from uint32) {
	src, dst := t.draftOf(from), t.draftOf(into)
	for _, h := range src.ids {
		t.links[h] = into
		dst.ids = append(dst.ids, h)
	}
	for _, m := range src.traits {
		i, ok := findTrait(dst.traits, m.Trait)
		switch {
		case !ok:
			dst.traits = slices.Insert(dst.traits, i, m)
		case m.Until > dst.traits[i].Until:
			dst.traits[i].Until = m.Until
		}
	}
	for _, e := range src.events {
		if i, ok := slices.BinarySearchFunc(dst.events, e, cmpEvent); !ok {
			dst.events = slices.Insert(dst.events, i, e)
		}
	}
	src.ids, src.traits, src.events, src.deleted = nil, nil, nil, true
}

// AddEvent records that profile p showed trait on day (see Day). Days older than the
// retention are the caller's to refuse; the sweep drops them.
func (t *Txn) AddEvent(p uint32, trait string, day uint16) {
	if p == NoProfile {
		return
	}
	e := Event{Trait: t.ix.traitOrdinal(trait), Day: day}
	d := t.draftOf(p)
	if i, ok := slices.BinarySearchFunc(d.events, e, cmpEvent); !ok {
		d.events = slices.Insert(d.events, i, e)
	}
}

// Retention returns how many days of events the index keeps.
func (t *Txn) Retention() int { return int(t.ix.retention) }

// Add gives profile p the trait until the given unix second, replacing an earlier expiry.
func (t *Txn) Add(p uint32, trait string, until uint32) {
	if p == NoProfile {
		return
	}
	ord := t.ix.traitOrdinal(trait)
	d := t.draftOf(p)
	i, ok := findTrait(d.traits, ord)
	if ok {
		d.traits[i].Until = until
		return
	}
	d.traits = slices.Insert(d.traits, i, Membership{Trait: ord, Until: until})
}

// Remove takes the trait from profile p. A profile that ends the Txn without any trait is
// deleted and its IDs unlinked, as Expire does with one whose traits all lapsed.
func (t *Txn) Remove(p uint32, trait string) {
	ord, ok := t.ix.traitIDs[trait]
	if !ok || p == NoProfile {
		return
	}
	d := t.draftOf(p)
	if i, ok := findTrait(d.traits, ord); ok {
		d.traits = slices.Delete(d.traits, i, i+1)
	}
}

func findTrait(tr []Membership, ord uint32) (int, bool) {
	// A plain binary search: the generic one with a comparison closure is not inlined,
	// and this runs for every trait of every rule evaluated.
	lo, hi := 0, len(tr)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if tr[m].Trait < ord {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(tr) && tr[lo].Trait == ord
}

// Expire drops the memberships that have lapsed by the Txn's clock, and the profiles left
// with none. It returns the number of profiles touched.
func (t *Txn) Expire() int {
	touched := 0
	for b, ps := range t.ix.expiry {
		if b*expiryBucket > t.now {
			continue
		}
		t.expired = append(t.expired, b)
		for _, p := range ps {
			if t.expireProfile(p) {
				touched++
			}
		}
	}
	return touched
}

// expireProfile re-evaluates a profile whose memberships lapse or whose days slide out of
// a window by now, dropping lapsed memberships and days past the retention.
func (t *Txn) expireProfile(p uint32) bool {
	// A profile filed in several buckets is visited once per bucket; it is counted once.
	if d, drafted := t.drafts[p]; drafted && (d.deleted || d.reeval) {
		return false
	}
	// A profile is filed again whenever it changes; an entry whose moment has not come is
	// stale.
	if pr := t.ix.profiles.get(p); pr == nil || pr.next > t.now {
		return false
	}
	d := t.draftOf(p)
	d.reeval = true
	d.traits = slices.DeleteFunc(d.traits, func(m Membership) bool { return m.Until <= t.now })
	oldest := int(Day(t.now)) - int(t.ix.retention) + 1
	d.events = slices.DeleteFunc(d.events, func(e Event) bool { return int(e.Day) < oldest })
	if d.empty() {
		for _, h := range d.ids {
			t.links[h] = NoProfile
		}
		d.ids, d.deleted = nil, true
	}
	return true
}

// PutSource defines or redefines a source.
func (t *Txn) PutSource(s Source) error {
	if err := s.Validate(); err != nil {
		return err
	}
	t.putSources = append(t.putSources, s)
	return nil
}

// DeleteSource removes a source definition. Its memberships stay until they expire.
func (t *Txn) DeleteSource(id string) error {
	if _, ok := t.ix.sources[id]; !ok {
		return fmt.Errorf("source %q: %w", id, ErrNotFound)
	}
	t.delSources = append(t.delSources, id)
	return nil
}

// PutSegment defines or redefines a segment. A rule that does not compile returns an error
// that wraps a *RuleError.
func (t *Txn) PutSegment(g Segment) error {
	if err := g.Validate(); err != nil {
		return err
	}
	e, _ := ParseRule(g.Rule) // Validate parsed it
	if _, err := t.ix.compile(e, g.ID); err != nil {
		return fmt.Errorf("rule: %w", err)
	}
	t.putSegments = append(t.putSegments, g)
	return nil
}

// DeleteSegment removes a segment. A segment that others reference cannot be deleted.
func (t *Txn) DeleteSegment(id string) error {
	s, ok := t.ix.segs[id]
	if !ok {
		return fmt.Errorf("segment %q: %w", id, ErrNotFound)
	}
	for _, other := range t.ix.segs {
		if slices.Contains(other.refs, s) {
			return fmt.Errorf("segment %q is referenced by %q: %w", id, other.def.ID, ErrInUse)
		}
	}
	t.delSegments = append(t.delSegments, id)
	return nil
}

// Changes returns what Commit will change, for the caller to persist first.
func (t *Txn) Changes() Changes {
	t.dropEmpty()
	c := Changes{
		NextProfile:     t.next,
		PutSources:      t.putSources,
		DeletedSources:  t.delSources,
		PutSegments:     t.putSegments,
		DeletedSegments: t.delSegments,
		Suppressed:      t.suppress,
	}
	newTraits := make(map[uint32]bool)
	for _, p := range t.order {
		d := t.drafts[p]
		if d.deleted {
			c.Deleted = append(c.Deleted, p)
			continue
		}
		c.Profiles = append(c.Profiles, ProfileRecord{Profile: p, IDs: d.ids, Traits: d.traits,
			Events: d.events})
		d.eachTrait(func(tr uint32) {
			if !t.ix.traitStored[tr] && !newTraits[tr] {
				newTraits[tr] = true
				c.Traits = append(c.Traits, TraitName{Ordinal: tr, Name: t.ix.traitNames[tr]})
			}
		})
	}
	return c
}

// eachTrait calls fn for the trait of every membership and event, repeats included.
func (d *draft) eachTrait(fn func(uint32)) {
	for _, m := range d.traits {
		fn(m.Trait)
	}
	for _, e := range d.events {
		fn(e.Trait)
	}
}

// dropEmpty deletes the drafted profiles left without traits, which nothing would ever
// expire, and unlinks their IDs. It may run more than once.
func (t *Txn) dropEmpty() {
	for _, p := range t.order {
		d := t.drafts[p]
		if d.deleted || !d.empty() {
			continue
		}
		for _, h := range d.ids {
			if t.ix.dict.lookup(h) == NoProfile {
				delete(t.links, h) // never published: nothing to unlink
			} else {
				t.links[h] = NoProfile
			}
		}
		d.ids, d.deleted = nil, true
	}
}

// Rollback drops the Txn and releases the writer lock.
func (t *Txn) Rollback() {
	if t.done {
		return
	}
	t.done = true
	t.ix.mu.Unlock()
}

// Commit publishes the Txn to readers and releases the writer lock. The caller must have
// persisted Changes first.
func (t *Txn) Commit() {
	if t.done {
		return
	}
	defer t.Rollback()
	t.dropEmpty()
	ix := t.ix
	for _, b := range t.expired {
		delete(ix.expiry, b)
	}
	for _, p := range t.order {
		ix.applyDraft(p, t.drafts[p], t.now)
	}
	for h, p := range t.links {
		ix.dict.set(h, p)
	}
	for _, h := range t.suppress {
		ix.suppress(h)
	}
	for _, p := range t.order {
		t.drafts[p].eachTrait(func(tr uint32) { ix.traitStored[tr] = true })
	}
	ix.nextProfile = t.next
	t.commitDefinitions()
}

func (t *Txn) commitDefinitions() {
	ix := t.ix
	for _, s := range t.putSources {
		ix.sources[s.ID] = &s
	}
	for _, id := range t.delSources {
		delete(ix.sources, id)
	}
	for _, g := range t.putSegments {
		ix.installSegment(g, t.now)
	}
	for _, id := range t.delSegments {
		ix.removeSegment(id)
	}
	if len(t.putSegments)+len(t.delSegments)+len(t.putSources)+len(t.delSources) > 0 {
		ix.catalog.Store(ix.buildCatalog())
	}
}
