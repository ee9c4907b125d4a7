package segments

import "sync/atomic"

// profile is the immutable state of one profile. The writer replaces it whole (copy on
// write); readers load it through profileTable without locks.
//
// Memory is the cost of this shape: a membership of a one-trait segment is held twice,
// with its expiry, in traits and in segs (8 bytes each), and the record has four slice
// headers. Forward entries derived from the traits at lookup, and one packed allocation
// per profile, would take it to well under half; not done yet, since every writer of
// profiles would change with it.
type profile struct {
	ids    []uint64     // ID hashes linked to the profile
	traits []Membership // sorted by Trait
	events []Event      // sorted by Trait, then Day
	segs   []fwd        // forward list: the segments the profile is in, sorted by slot
	// next is when the profile may next change by time alone (see scheduleNext). Only the
	// writer reads or writes it, so it may change after the profile is published.
	next uint32
}

func (pr *profile) facts() *facts {
	if pr == nil {
		return &facts{}
	}
	return &facts{traits: pr.traits, events: pr.events}
}

// fwd is one entry of a forward list: a segment slot and the second at which the
// membership lapses unless renewed.
type fwd struct {
	slot  uint32
	until uint32
}

const (
	chunkBits = 14
	chunkSize = 1 << chunkBits
)

type profileChunk [chunkSize]atomic.Pointer[profile]

// profileTable is an array of profile pointers indexed by ordinal, grown in chunks so that
// growing never copies profiles. Reads are lock-free; one writer at a time.
type profileTable struct {
	dir atomic.Pointer[[]*profileChunk]
}

func (t *profileTable) get(p uint32) *profile {
	dir := t.dir.Load()
	if dir == nil {
		return nil
	}
	c := int(p >> chunkBits)
	if c >= len(*dir) {
		return nil
	}
	return (*dir)[c][p&(chunkSize-1)].Load()
}

// set stores pr as profile p, or clears it when pr is nil. Writer only.
func (t *profileTable) set(p uint32, pr *profile) {
	c := int(p >> chunkBits)
	dir := t.dir.Load()
	if dir == nil || c >= len(*dir) {
		if pr == nil {
			return
		}
		var grown []*profileChunk
		if dir != nil {
			grown = append(grown, *dir...)
		}
		for len(grown) <= c {
			grown = append(grown, new(profileChunk))
		}
		t.dir.Store(&grown)
		dir = &grown
	}
	(*dir)[c][p&(chunkSize-1)].Store(pr)
}
