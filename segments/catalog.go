package segments

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Catalog is an immutable snapshot of the defined segments as the request path needs them:
// whether each slot is served and its pre-rendered user.data fragment. The Index publishes a
// new Catalog whenever segments change. Safe for concurrent use.
type Catalog struct {
	segs   []catSeg   // by slot
	groups []catGroup // one per taxonomy, by group ordinal
}

type catSeg struct {
	id, export  string
	live        bool
	group       uint16
	needs       Needs
	from, until uint32 // campaign window in unix seconds; until 0 means open
	frag        []byte // {"id":"<export id>"}
}

// Needs are the conditions a segment's sources put on its use, as bits.
type Needs uint8

const (
	// NeedsConsent: a source of the segment is consent-only.
	NeedsConsent Needs = 1 << iota
	// NeedsNoUSOptOut: a source of the segment may not be used under a US opt-out.
	NeedsNoUSOptOut
)

// Describe returns the ID, export ID and needs of the segment in slot, for explaining.
func (c *Catalog) Describe(slot uint32) (id, exportID string, needs Needs) {
	s := &c.segs[slot]
	return s.id, s.export, s.needs
}

// Permit keeps, in place, the slots whose needs the request meets: has is the set of
// conditions it satisfies. It returns the kept slots; removed reports how many went.
func (c *Catalog) Permit(slots []uint32, has Needs) (kept []uint32, removed int) {
	kept = slots[:0]
	for _, s := range slots {
		if c.segs[s].needs&^has == 0 {
			kept = append(kept, s)
		}
	}
	return kept, len(slots) - len(kept)
}

// buildCatalog renders the catalog from the current segments and sources. Lock held.
func (ix *Index) buildCatalog() *Catalog {
	c := newCatalog(ix.provider, ix.slots)
	for i, s := range ix.slots {
		if s != nil {
			c.segs[i].needs = ix.needs(s)
		}
	}
	return c
}

// needs derives a segment's needs from the sources of the traits its rule reads. A
// source that is not defined (any more) puts no condition.
func (ix *Index) needs(s *segState) Needs {
	var n Needs
	for _, t := range s.deps {
		src, _, _ := strings.Cut(ix.traitNames[t], ":")
		so, ok := ix.sources[src]
		if !ok {
			continue
		}
		if so.Uses.ConsentOnly {
			n |= NeedsConsent
		}
		if !so.usableUnderOptOut() {
			n |= NeedsNoUSOptOut
		}
	}
	return n
}

// catGroup holds the bytes around one user.data object: everything before its first
// segment and everything after its last.
type catGroup struct {
	open, close []byte
}

// Provider names the user.data provider that segd writes as.
type Provider struct {
	ID   string
	Name string
}

func newCatalog(prov Provider, slots []*segState) *Catalog {
	var taxes []int
	for _, s := range slots {
		if s != nil {
			taxes = append(taxes, s.def.Segtax)
		}
	}
	slices.Sort(taxes)
	taxes = slices.Compact(taxes)

	c := &Catalog{segs: make([]catSeg, len(slots)), groups: make([]catGroup, len(taxes))}
	for i, tax := range taxes {
		c.groups[i] = renderGroup(prov, tax)
	}
	for i, s := range slots {
		if s == nil {
			continue
		}
		g, _ := slices.BinarySearch(taxes, s.def.Segtax)
		c.segs[i] = catSeg{
			id:     s.def.ID,
			export: s.def.ExportID,
			live:   true,
			group: uint16(g),
			from:  unixSeconds(s.def.ActiveFrom),
			frag:  append(append([]byte(`{"id":`), jsonString(s.def.ExportID)...), '}'),
		}
		if !s.def.ActiveUntil.IsZero() {
			c.segs[i].until = unixSeconds(s.def.ActiveUntil)
		}
	}
	return c
}

func renderGroup(prov Provider, segtax int) catGroup {
	open := []byte(`{"id":`)
	open = append(open, jsonString(prov.ID)...)
	if prov.Name != "" {
		open = append(open, `,"name":`...)
		open = append(open, jsonString(prov.Name)...)
	}
	open = append(open, `,"segment":[`...)
	cl := []byte(`]}`)
	if segtax != 0 {
		cl = strconv.AppendInt([]byte(`],"ext":{"segtax":`), int64(segtax), 10)
		cl = append(cl, "}}"...)
	}
	return catGroup{open: open, close: cl}
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// served reports whether slot is a live segment inside its campaign window at now.
func (c *Catalog) served(slot, now uint32) bool {
	if int(slot) >= len(c.segs) {
		return false
	}
	s := &c.segs[slot]
	return s.live && now >= s.from && (s.until == 0 || now < s.until)
}

// AppendUserData appends to dst the user.data objects for the segment slots, comma-joined
// and without enclosing brackets, one object per taxonomy. slots is reordered in place and
// may hold duplicates; slots that are not served must already be filtered out. It returns
// the extended dst and the number of objects appended.
func (c *Catalog) AppendUserData(dst []byte, slots []uint32) ([]byte, int) {
	sortSlots(slots, c)
	objects := 0
	prevGroup := -1
	prevSlot := never
	for _, slot := range slots {
		if slot == prevSlot {
			continue
		}
		s := &c.segs[slot]
		if int(s.group) != prevGroup {
			if prevGroup >= 0 {
				dst = append(dst, c.groups[prevGroup].close...)
				dst = append(dst, ',')
			}
			dst = append(dst, c.groups[s.group].open...)
			prevGroup = int(s.group)
			objects++
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, s.frag...)
		prevSlot = slot
	}
	if prevGroup >= 0 {
		dst = append(dst, c.groups[prevGroup].close...)
	}
	return dst, objects
}

// sortSlots orders slots by group, then slot, with an insertion sort: the lists are short
// and this allocates nothing.
func sortSlots(slots []uint32, c *Catalog) {
	less := func(a, b uint32) bool {
		ga, gb := c.segs[a].group, c.segs[b].group
		return ga < gb || ga == gb && a < b
	}
	for i := 1; i < len(slots); i++ {
		for j := i; j > 0 && less(slots[j], slots[j-1]); j-- {
			slots[j], slots[j-1] = slots[j-1], slots[j]
		}
	}
}
