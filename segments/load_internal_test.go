package segments

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// memStore persists Changes in memory the way the store does in Badger, so that an index
// can be rebuilt with a Loader and compared with the live one.
type memStore struct {
	next     uint32
	traits   map[uint32]string
	profiles map[uint32]ProfileRecord
	sources  map[string]Source
	segs     map[string]Segment
}

func newMemStore() *memStore {
	return &memStore{
		traits:   map[uint32]string{},
		profiles: map[uint32]ProfileRecord{},
		sources:  map[string]Source{},
		segs:     map[string]Segment{},
	}
}

// commit persists t's changes, then commits t.
func (m *memStore) commit(t *Txn) {
	c := t.Changes()
	for _, rec := range c.Profiles {
		rec.IDs, rec.Traits = slices.Clone(rec.IDs), slices.Clone(rec.Traits)
		m.profiles[rec.Profile] = rec
	}
	for _, p := range c.Deleted {
		delete(m.profiles, p)
	}
	for _, tr := range c.Traits {
		m.traits[tr.Ordinal] = tr.Name
	}
	for _, s := range c.PutSources {
		m.sources[s.ID] = s
	}
	for _, g := range c.PutSegments {
		m.segs[g.ID] = g
	}
	for _, id := range c.DeletedSegments {
		delete(m.segs, id)
	}
	m.next = c.NextProfile
	t.Commit()
}

// load rebuilds an index from m at now.
func (m *memStore) load(t *testing.T, h Hasher, now time.Time) *Index {
	t.Helper()
	ix := New(h, Provider{ID: "segd"})
	l := ix.NewLoader(now)
	l.NextProfile(m.next)
	for ord, name := range m.traits {
		if err := l.Trait(ord, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range m.segs {
		l.Segment(g)
	}
	for _, rec := range m.profiles {
		if err := l.Profile(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Finish(); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestLoaderRebuildsLiveIndex drives an index through random imports, removals, merges,
// segment definitions, deletions and sweeps, persisting every Txn, and checks after each
// round that an index loaded from what was persisted equals the live one: bitmaps, forward
// lists and links. The loader splits even these few profiles between cores.
func TestLoaderRebuildsLiveIndex(t *testing.T) {
	defer func(n uint32) { coreShare = n }(coreShare)
	coreShare = 4
	for seed := range uint64(16) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := &rebuildRun{
				rng: rand.New(rand.NewPCG(seed, 99)),
				h:   NewHasher([]byte("load test")),
				now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
				mem: newMemStore(),
			}
			r.ix = New(r.h, Provider{ID: "segd"})
			for round := range 12 {
				for range 6 {
					r.step(t)
				}
				r.now = r.now.Add(time.Duration(r.rng.IntN(3))*time.Hour + time.Minute)
				tx := r.ix.Begin(r.now)
				tx.Expire()
				r.mem.commit(tx)

				loaded := r.mem.load(t, r.h, r.now)
				if err := compareIndexes(r.ix, loaded, r.ids()); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

type rebuildRun struct {
	rng  *rand.Rand
	h    Hasher
	now  time.Time
	ix   *Index
	mem  *memStore
	segN int
}

var rebuildTraits = []string{"crm:a", "crm:b", "web:x", "web:y", "app:z"}

func (r *rebuildRun) ids() []uint64 {
	var out []uint64
	for i := range 80 {
		out = append(out, r.h.Hash(ID{Type: TypeUID, Value: fmt.Sprint(i)}))
	}
	return out
}

// step applies one random Txn.
func (r *rebuildRun) step(t *testing.T) {
	t.Helper()
	tx := r.ix.Begin(r.now)
	switch k := r.rng.IntN(10); {
	case k < 6:
		r.lines(tx)
	case k < 9:
		id := fmt.Sprintf("s%d", r.rng.IntN(r.segN+1))
		if id == fmt.Sprintf("s%d", r.segN) {
			r.segN++
		}
		err := tx.PutSegment(Segment{ID: id, Name: id, Rule: r.rule(3)})
		var re *RuleError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("define %s: %v", id, err)
		}
	default:
		err := tx.DeleteSegment(fmt.Sprintf("s%d", r.rng.IntN(r.segN+1)))
		if err != nil && !errors.Is(err, ErrInUse) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete: %v", err)
		}
	}
	r.mem.commit(tx)
}

// lines imports a few random lines of one ID or, now and then, of two, which may merge two
// profiles.
func (r *rebuildRun) lines(tx *Txn) {
	all := r.ids()
	for range 1 + r.rng.IntN(12) {
		ids := make([]uint64, 1+r.rng.IntN(8)/7)
		for i := range ids {
			ids[i] = all[r.rng.IntN(len(all))]
		}
		p := tx.Resolve(ids)
		for _, tr := range rebuildTraits {
			switch r.rng.IntN(5) {
			case 0, 1:
				ttl := time.Duration(1+r.rng.IntN(4)) * time.Hour
				tx.Add(p, tr, unixSeconds(r.now.Add(ttl)))
			case 2:
				tx.Remove(p, tr)
			}
		}
	}
}

// rule returns a random rule over the traits and, now and then, a segment that may not
// exist or may form a cycle: the Txn refuses those.
func (r *rebuildRun) rule(depth int) string {
	if depth == 0 || r.rng.IntN(3) == 0 {
		if r.segN > 0 && r.rng.IntN(4) == 0 {
			return fmt.Sprintf("segment:s%d", r.rng.IntN(r.segN))
		}
		return rebuildTraits[r.rng.IntN(len(rebuildTraits))]
	}
	switch r.rng.IntN(3) {
	case 0:
		return "(" + r.rule(depth-1) + " and " + r.rule(depth-1) + ")"
	case 1:
		return "(" + r.rule(depth-1) + " or " + r.rule(depth-1) + ")"
	}
	return "not " + r.rule(depth-1)
}

// compareIndexes reports the first difference between a live index and a loaded one.
func compareIndexes(live, loaded *Index, ids []uint64) error {
	if live.nextProfile != loaded.nextProfile {
		return fmt.Errorf("next profile %d, loaded %d", live.nextProfile, loaded.nextProfile)
	}
	if !live.live.Equals(loaded.live) {
		return fmt.Errorf("profiles %v, loaded %v", live.live.ToArray(), loaded.live.ToArray())
	}
	if err := compareSegments(live, loaded); err != nil {
		return err
	}
	if err := compareTraits(live, loaded); err != nil {
		return err
	}
	for _, h := range ids {
		if a, b := live.dict.lookup(h), loaded.dict.lookup(h); a != b {
			return fmt.Errorf("ID %#x links to %d, loaded to %d", h, a, b)
		}
	}
	it := live.live.Iterator()
	for it.HasNext() {
		p := it.Next()
		a, b := describeProfile(live, p), describeProfile(loaded, p)
		if a != b {
			return fmt.Errorf("profile %d:\n  live   %s\n  loaded %s", p, a, b)
		}
	}
	return nil
}

func compareSegments(live, loaded *Index) error {
	if len(live.segs) != len(loaded.segs) {
		return fmt.Errorf("%d segments, loaded %d", len(live.segs), len(loaded.segs))
	}
	for id, s := range live.segs {
		o, ok := loaded.segs[id]
		switch {
		case !ok:
			return fmt.Errorf("segment %s not loaded", id)
		case s.def != o.def:
			return fmt.Errorf("segment %s: %+v, loaded %+v", id, s.def, o.def)
		case !s.bits.Equals(o.bits):
			return fmt.Errorf("segment %s (%s): members %v, loaded %v", id, s.def.Rule,
				s.bits.ToArray(), o.bits.ToArray())
		}
	}
	return nil
}

func compareTraits(live, loaded *Index) error {
	for name, ord := range live.traitIDs {
		a := live.traitBits[ord]
		if a == nil || a.IsEmpty() {
			continue
		}
		o, ok := loaded.traitIDs[name]
		if !ok || loaded.traitBits[o] == nil || !a.Equals(loaded.traitBits[o]) {
			return fmt.Errorf("trait %s: holders %v, loaded differ", name, a.ToArray())
		}
	}
	for name, ord := range loaded.traitIDs {
		b := loaded.traitBits[ord]
		if b == nil || b.IsEmpty() {
			continue
		}
		if o, ok := live.traitIDs[name]; !ok || live.traitBits[o] == nil {
			return fmt.Errorf("trait %s: loaded holders %v, none live", name, b.ToArray())
		}
	}
	return nil
}

// describeProfile renders profile p with its IDs, traits and forward list by name, so that
// two indexes with different trait ordinals or segment slots compare equal.
func describeProfile(ix *Index, p uint32) string {
	pr := ix.profiles.get(p)
	if pr == nil {
		return "<nil>"
	}
	ids := slices.Clone(pr.ids)
	slices.Sort(ids)
	var traits, segs []string
	for _, m := range pr.traits {
		traits = append(traits, fmt.Sprintf("%s@%d", ix.traitNames[m.Trait], m.Until))
	}
	for _, f := range pr.segs {
		segs = append(segs, fmt.Sprintf("%s@%d", ix.slots[f.slot].def.ID, f.until))
	}
	slices.Sort(traits)
	slices.Sort(segs)
	return fmt.Sprintf("ids %x traits %v segments %v", ids, traits, segs)
}
