package segments

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Index holds every profile, trait and segment in memory.
//
// The request path (Lookup, Catalog) reads immutable snapshots without locks and never
// waits for writers. All changes go through a Txn, one at a time; admin reads (counts,
// listings) take a read lock and may wait for a Txn to finish.
type Index struct {
	hasher   Hasher
	provider Provider
	dict     *dict
	profiles profileTable
	catalog  atomic.Pointer[Catalog]
	ready    atomic.Bool

	mu          sync.RWMutex // writer lock; see Txn
	sources     map[string]*Source
	segs        map[string]*segState
	slots       []*segState // by slot; nil where free
	traitIDs    map[string]uint32
	traitNames  []string
	traitStored []bool                     // whether the trait's name is persisted
	traitBits   []*roaring.Bitmap          // by trait ordinal: memberships and event days; nil when empty
	dayBits     map[uint64]*roaring.Bitmap // by dayKey: profiles with the trait that day
	retention   uint16                     // days of events kept; see SetRetention
	callers     []Caller                   // see SetCallers
	traitWins   map[uint32][]uint16        // window lengths that rules read, by trait
	traitSegs   [][]*segState              // by trait ordinal: segments that depend on it
	emptyTrue   []*segState                // segments a profile without traits matches
	live        *roaring.Bitmap            // every profile that exists
	nextProfile uint32
	expiry      map[uint32][]uint32 // expiry bucket -> profiles with a membership ending in it
	suppressed  map[uint64]struct{} // ID hashes never to be linked again; nil until the first
}

// segState is a defined segment. Writer lock held for every field but def.
type segState struct {
	def    Segment
	slot   uint32
	root   *node
	deps   []uint32    // trait ordinals the rule depends on, sorted
	wins   []window    // trait windows the rule reads
	refs   []*segState // segments the rule references directly
	bits   *roaring.Bitmap
	active bool // false while loading
}

// expiryBucket is the width, in seconds, of the buckets in which the sweeper finds lapsed
// memberships. Serving checks expiry exactly; buckets only delay cleanup.
const expiryBucket = 10

// New returns an empty Index that hashes IDs with h and renders user.data as prov. It is
// not ready until MarkReady is called, so that a caller can load it first.
func New(h Hasher, prov Provider) *Index {
	ix := &Index{
		hasher:    h,
		provider:  prov,
		dict:      newDict(0),
		sources:   make(map[string]*Source),
		segs:      make(map[string]*segState),
		traitIDs:  make(map[string]uint32),
		live:      roaring.New(),
		expiry:    make(map[uint32][]uint32),
		dayBits:   make(map[uint64]*roaring.Bitmap),
		traitWins: make(map[uint32][]uint16),
		retention: DefaultRetention,
	}
	ix.catalog.Store(newCatalog(prov, nil))
	return ix
}

// DefaultRetention is how many days of events an Index keeps unless told otherwise.
const DefaultRetention = 180

// SetRetention sets how many days of events are kept, at most 3650; windows in rules may
// not be longer. Call it before loading or defining anything.
func (ix *Index) SetRetention(days int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.retention = uint16(min(max(days, 1), 3650))
}

// SetCallers declares the callers whose segment filters every catalog carries, in the
// order that Catalog.Permit numbers them. Names must be unique.
func (ix *Index) SetCallers(cs []Caller) error {
	seen := make(map[string]bool, len(cs))
	var errs []error
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[cs[i].Name] {
			errs = append(errs, fmt.Errorf("caller %q: defined twice", cs[i].Name))
		}
		seen[cs[i].Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.callers = slices.Clone(cs)
	ix.catalog.Store(ix.buildCatalog())
	return nil
}

// Retention returns how many days of events are kept.
func (ix *Index) Retention() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return int(ix.retention)
}

// Hasher returns the hasher that maps raw IDs to the index's keys.
func (ix *Index) Hasher() Hasher { return ix.hasher }

// Ready reports whether the index is fully loaded and may serve.
func (ix *Index) Ready() bool { return ix.ready.Load() }

// MarkReady declares the index whole. Before it, Lookup finds nothing.
func (ix *Index) MarkReady() { ix.ready.Store(true) }

// Catalog returns the current segment catalog. Safe for concurrent use.
func (ix *Index) Catalog() *Catalog { return ix.catalog.Load() }

// Lookup appends to dst the slots of the segments that the profile of ID hash h is in and
// that are served at now (unix seconds) according to cat. It allocates nothing beyond
// growing dst and is safe for concurrent use.
func (ix *Index) Lookup(dst []uint32, cat *Catalog, h uint64, now uint32) []uint32 {
	if !ix.ready.Load() {
		return dst
	}
	p := ix.dict.lookup(h)
	if p == NoProfile {
		return dst
	}
	pr := ix.profiles.get(p)
	if pr == nil {
		return dst
	}
	for _, f := range pr.segs {
		if f.until > now && cat.served(f.slot, now) {
			dst = append(dst, f.slot)
		}
	}
	return dst
}

// Stats are the index's sizes.
type Stats struct {
	Profiles int // profiles that exist
	IDs      int // ID hashes linked, tombstones included
	Traits   int
	Segments int
}

// Stats returns the index's sizes.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return Stats{
		Profiles: int(ix.live.GetCardinality()),
		IDs:      ix.dict.size(),
		Traits:   len(ix.traitNames),
		Segments: len(ix.segs),
	}
}

// Source returns the source with the given ID.
func (ix *Index) Source(id string) (Source, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sources[id]
	if !ok {
		return Source{}, false
	}
	return *s, true
}

// Sources returns every source, ordered by ID.
func (ix *Index) Sources() []Source {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]Source, 0, len(ix.sources))
	for _, s := range ix.sources {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Source) int { return cmpString(a.ID, b.ID) })
	return out
}

// SegmentInfo is a segment with its exact size.
type SegmentInfo struct {
	Segment
	Size uint64 `json:"size"`
}

// Segment returns the segment with the given ID and its size.
func (ix *Index) Segment(id string) (SegmentInfo, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.segs[id]
	if !ok {
		return SegmentInfo{}, false
	}
	return SegmentInfo{Segment: s.def, Size: s.bits.GetCardinality()}, true
}

// Segments returns every segment with its size, ordered by ID.
func (ix *Index) Segments() []SegmentInfo {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]SegmentInfo, 0, len(ix.segs))
	for _, s := range ix.segs {
		out = append(out, SegmentInfo{Segment: s.def, Size: s.bits.GetCardinality()})
	}
	slices.SortFunc(out, func(a, b SegmentInfo) int { return cmpString(a.ID, b.ID) })
	return out
}

// Count returns the exact number of profiles that rule matches now, without defining a
// segment. Memberships that lapsed within the last few seconds may still be counted until
// the sweeper removes them.
func (ix *Index) Count(rule string) (uint64, error) {
	return ix.CountAt(rule, time.Now())
}

// CountAt is Count with the clock given: windows are read as of now.
func (ix *Index) CountAt(rule string, now time.Time) (uint64, error) {
	e, err := ParseRule(rule)
	if err != nil {
		return 0, err
	}
	ix.mu.Lock() // compiling may allocate trait ordinals
	defer ix.mu.Unlock()
	n, err := ix.compile(e, "")
	if err != nil {
		return 0, err
	}
	bm, _ := ix.bitmap(n, unixSeconds(now))
	return bm.GetCardinality(), nil
}

// Overlap is the intersection of two segments.
type Overlap struct {
	A, B    string
	Both    uint64  // profiles in both
	Jaccard float64 // Both / profiles in either; 0 when both are empty
}

// Overlaps returns the pairwise intersections of the segments named by ids, in order. It
// reports ErrNotFound for an unknown ID.
func (ix *Index) Overlaps(ids []string) ([]Overlap, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	segs := make([]*segState, len(ids))
	for i, id := range ids {
		s, ok := ix.segs[id]
		if !ok {
			return nil, fmt.Errorf("segment %q: %w", id, ErrNotFound)
		}
		segs[i] = s
	}
	var out []Overlap
	for i := range segs {
		for j := i + 1; j < len(segs); j++ {
			both := segs[i].bits.AndCardinality(segs[j].bits)
			either := segs[i].bits.OrCardinality(segs[j].bits)
			o := Overlap{A: ids[i], B: ids[j], Both: both}
			if either > 0 {
				o.Jaccard = float64(both) / float64(either)
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// Profile is what the index knows of one profile, for explaining a match.
type Profile struct {
	Profile  uint32
	IDs      int
	Traits   []ProfileTrait
	Events   []ProfileEvent
	Segments []string
}

// ProfileEvent is one event trait of a profile and the days it was seen, oldest first.
type ProfileEvent struct {
	Name string   `json:"name"`
	Days []string `json:"days"` // YYYY-MM-DD
}

// ProfileTrait is one trait of a profile and when it lapses.
type ProfileTrait struct {
	Name  string    `json:"name"`
	Until time.Time `json:"until"`
}

// LookupProfile describes the profile linked to ID hash h at now.
func (ix *Index) LookupProfile(h uint64, now time.Time) (Profile, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.dict.lookup(h)
	pr := ix.profiles.get(p)
	if p == NoProfile || pr == nil {
		return Profile{}, false
	}
	out := Profile{Profile: p, IDs: len(pr.ids)}
	sec := unixSeconds(now)
	for _, m := range pr.traits {
		if m.Until > sec {
			out.Traits = append(out.Traits, ProfileTrait{
				Name: ix.traitNames[m.Trait], Until: time.Unix(int64(m.Until), 0).UTC()})
		}
	}
	for _, e := range pr.events {
		if n := len(out.Events); n == 0 || out.Events[n-1].Name != ix.traitNames[e.Trait] {
			out.Events = append(out.Events, ProfileEvent{Name: ix.traitNames[e.Trait]})
		}
		day := time.Unix(int64(e.Day)*86400, 0).UTC().Format(time.DateOnly)
		last := &out.Events[len(out.Events)-1]
		last.Days = append(last.Days, day)
	}
	for _, f := range pr.segs {
		if f.until > sec && ix.slots[f.slot] != nil {
			out.Segments = append(out.Segments, ix.slots[f.slot].def.ID)
		}
	}
	return out, true
}

// traitOrdinal returns the ordinal of trait name, allocating one if needed. Lock held.
func (ix *Index) traitOrdinal(name string) uint32 {
	if t, ok := ix.traitIDs[name]; ok {
		return t
	}
	t := uint32(len(ix.traitNames))
	ix.traitIDs[name] = t
	ix.traitNames = append(ix.traitNames, name)
	ix.traitStored = append(ix.traitStored, false)
	ix.traitBits = append(ix.traitBits, nil)
	ix.traitSegs = append(ix.traitSegs, nil)
	return t
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
