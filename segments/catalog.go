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
	segs    []catSeg   // by slot
	groups  []catGroup // one per taxonomy, by group ordinal
	callers [][]uint64 // by caller: a bit set of the slots the caller may have
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

// NoCaller is the caller number of a request that names no caller: no caller filter applies.
const NoCaller = -1

// Permit keeps, in place, the slots whose needs the request meets and that caller may have:
// has is the set of conditions the request satisfies, and caller the caller's number in the
// order given to SetCallers, or NoCaller. It returns the kept slots; removed reports how
// many went.
func (c *Catalog) Permit(slots []uint32, has Needs, caller int) (kept []uint32, removed int) {
	var mask []uint64
	if caller >= 0 && caller < len(c.callers) {
		mask = c.callers[caller]
	}
	kept = slots[:0]
	for _, s := range slots {
		if c.segs[s].needs&^has != 0 {
			continue
		}
		if mask != nil && mask[s/64]&(1<<(s%64)) == 0 {
			continue
		}
		kept = append(kept, s)
	}
	return kept, len(slots) - len(kept)
}

// CallerAllows reports whether caller (see Permit) may have the segment in slot.
func (c *Catalog) CallerAllows(slot uint32, caller int) bool {
	if caller < 0 || caller >= len(c.callers) {
		return true
	}
	return c.callers[caller][slot/64]&(1<<(slot%64)) != 0
}

// buildCatalog renders the catalog from the current segments, sources and callers. Lock
// held.
func (ix *Index) buildCatalog() *Catalog {
	c := newCatalog(ix.provider, ix.slots)
	srcs := make([][]*Source, len(ix.slots))
	for i, s := range ix.slots {
		if s != nil {
			srcs[i] = ix.sourcesOf(s)
			c.segs[i].needs = needsOf(srcs[i])
		}
	}
	c.callers = make([][]uint64, len(ix.callers))
	for k := range ix.callers {
		cl := &ix.callers[k]
		mask := make([]uint64, (len(ix.slots)+63)/64)
		for i, s := range ix.slots {
			if s != nil && cl.allows(s.def, srcs[i]) {
				mask[i/64] |= 1 << (i % 64)
			}
		}
		c.callers[k] = mask
	}
	return c
}

// allows reports whether the caller may have segment g, whose rule reads srcs.
func (cl *Caller) allows(g Segment, srcs []*Source) bool {
	if len(cl.Segments) > 0 && !slices.Contains(cl.Segments, g.ID) {
		return false
	}
	if len(cl.Segtax) > 0 && !slices.Contains(cl.Segtax, g.Segtax) {
		return false
	}
	for _, so := range srcs {
		if slices.Contains(so.Uses.NotForCallers, cl.Name) {
			return false
		}
	}
	return true
}

// sourcesOf returns the defined sources of the traits that s's rule reads, directly or
// through the segments it references. A source that is not defined (any more) is left
// out, and so puts no condition.
func (ix *Index) sourcesOf(s *segState) []*Source {
	var out []*Source
	seen := map[*segState]bool{}
	var walk func(*segState)
	walk = func(s *segState) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, t := range s.deps {
			src, _, _ := strings.Cut(ix.traitNames[t], ":")
			if so, ok := ix.sources[src]; ok && !slices.Contains(out, so) {
				out = append(out, so)
			}
		}
		for _, r := range s.refs {
			walk(r)
		}
	}
	walk(s)
	return out
}

// needsOf derives a segment's needs from the sources its rule reads.
func needsOf(srcs []*Source) Needs {
	var n Needs
	for _, so := range srcs {
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
			group:  uint16(g),
			from:   unixSeconds(s.def.ActiveFrom),
			frag:   append(append([]byte(`{"id":`), jsonString(s.def.ExportID)...), '}'),
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
