package segments

import "sync/atomic"

// NoProfile is the profile ordinal that means "none".
const NoProfile = ^uint32(0)

// dict maps ID hashes to profile ordinals. One writer at a time (the Index's writer lock)
// inserts and updates; any number of readers look up concurrently without locks. A slot's
// profile is stored before its key, so a reader that sees a key sees its profile. When the
// table fills up, the writer builds a larger one and publishes it with a pointer swap;
// readers still holding the old table see a consistent, slightly older state.
type dict struct {
	tab atomic.Pointer[dictTable]
	n   int // live keys; writer only
}

type dictTable struct {
	slots []dictSlot
	mask  uint64
}

type dictSlot struct {
	key     atomic.Uint64 // 0: empty
	profile atomic.Uint32
}

func newDict(capacity int) *dict {
	d := &dict{}
	d.tab.Store(newDictTable(capacity))
	return d
}

func newDictTable(capacity int) *dictTable {
	size := 1024
	for size*3/4 < capacity {
		size *= 2
	}
	return &dictTable{slots: make([]dictSlot, size), mask: uint64(size - 1)}
}

// lookup returns the profile of hash h, or NoProfile. Safe for concurrent use.
func (d *dict) lookup(h uint64) uint32 {
	t := d.tab.Load()
	for i := mix(h) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case h:
			return s.profile.Load()
		case 0:
			return NoProfile
		}
	}
}

// set maps h to p, or unlinks h when p is NoProfile. Writer only. An unlinked key keeps its
// slot as a tombstone so that probe chains stay intact.
func (d *dict) set(h uint64, p uint32) {
	t := d.tab.Load()
	if (d.n+1)*4 > len(t.slots)*3 {
		t = d.grow(t)
	}
	if d.put(t, h, p) {
		d.n++
	}
}

// put stores h -> p in t and reports whether h is a new key.
func (d *dict) put(t *dictTable, h uint64, p uint32) bool {
	for i := mix(h) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case h:
			s.profile.Store(p)
			return false
		case 0:
			s.profile.Store(p)
			s.key.Store(h)
			return true
		}
	}
}

func (d *dict) grow(old *dictTable) *dictTable {
	live := 0
	for i := range old.slots {
		if old.slots[i].key.Load() != 0 && old.slots[i].profile.Load() != NoProfile {
			live++
		}
	}
	// Room for half as many again: a table without tombstones doubles. Asking for twice
	// the live keys would quadruple it, since a table is only filled to three quarters.
	t := newDictTable(live + live/2 + 1)
	for i := range old.slots {
		s := &old.slots[i]
		if k := s.key.Load(); k != 0 && s.profile.Load() != NoProfile {
			d.put(t, k, s.profile.Load())
		}
	}
	d.n = live
	d.tab.Store(t)
	return t
}

// size returns the number of slots in use, tombstones included.
func (d *dict) size() int { return d.n }

// mix spreads the bits of an already uniform hash so that the table index does not depend
// on its low bits alone; SipHash output is uniform, so a multiply is enough.
func mix(h uint64) uint64 { return h * 0x9e3779b97f4a7c15 >> 7 }
