package segments

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

type nodeOp uint8

const (
	opTrait  nodeOp = iota // has the trait now
	opWindow               // has the trait on a day of the last days
	opCount                // has the trait on at least min days of the last days
	opSegment
	opAnd
	opOr
	opNot
)

// node is a compiled rule. Trait atoms hold ordinals, segment references point at the live
// segState, so a redefinition of a referenced segment takes effect without recompiling.
// A plain trait atom holds the event retention as its days: an event trait is "had now"
// while any of its days is retained.
type node struct {
	op    nodeOp
	trait uint32
	days  uint16
	min   uint16
	seg   *segState
	l, r  *node
}

// compile turns a parsed rule into a node tree. self is the ID of the segment being defined
// ("" for a count preview), used to reject cycles. Writer lock held.
func (ix *Index) compile(e Expr, self string) (*node, error) {
	switch e := e.(type) {
	case *TraitExpr:
		return &node{op: opTrait, trait: ix.traitOrdinal(e.Name), days: ix.retention}, nil
	case *WindowExpr:
		if e.Days > int(ix.retention) {
			return nil, windowError(e.Col, e.Days, ix.retention)
		}
		return &node{op: opWindow, trait: ix.traitOrdinal(e.Name), days: uint16(e.Days)}, nil
	case *CountExpr:
		if e.Days > int(ix.retention) {
			return nil, windowError(e.Col, e.Days, ix.retention)
		}
		return &node{op: opCount, trait: ix.traitOrdinal(e.Name), days: uint16(e.Days),
			min: uint16(e.Min)}, nil
	case *SegmentExpr:
		return ix.compileRef(e, self)
	case *AndExpr:
		return ix.compilePair(opAnd, e.L, e.R, self)
	case *OrExpr:
		return ix.compilePair(opOr, e.L, e.R, self)
	case *NotExpr:
		x, err := ix.compile(e.X, self)
		if err != nil {
			return nil, err
		}
		return &node{op: opNot, l: x}, nil
	}
	return nil, fmt.Errorf("unknown rule node %T", e)
}

func windowError(col, days int, retention uint16) error {
	return &RuleError{Col: col, Msg: fmt.Sprintf(
		"window of %d days is longer than the %d days of events segd retains", days, retention)}
}

func (ix *Index) compilePair(op nodeOp, l, r Expr, self string) (*node, error) {
	ln, err := ix.compile(l, self)
	if err != nil {
		return nil, err
	}
	rn, err := ix.compile(r, self)
	if err != nil {
		return nil, err
	}
	return &node{op: op, l: ln, r: rn}, nil
}

func (ix *Index) compileRef(e *SegmentExpr, self string) (*node, error) {
	s, ok := ix.segs[e.ID]
	if !ok {
		return nil, &RuleError{Col: e.Col, Msg: fmt.Sprintf("unknown segment %q", e.ID)}
	}
	if self != "" {
		if path := refPath(s, self); path != nil {
			cycle := append([]string{self}, path...)
			return nil, &RuleError{Col: e.Col, Msg: fmt.Sprintf("segment cycle %s",
				joinArrow(cycle))}
		}
	}
	return &node{op: opSegment, seg: s}, nil
}

// refPath returns the chain of segment IDs from s to the segment named target through
// segment references, or nil when s does not lead there.
func refPath(s *segState, target string) []string {
	if s.def.ID == target {
		return []string{s.def.ID}
	}
	for _, r := range s.refs {
		if p := refPath(r, target); p != nil {
			return append([]string{s.def.ID}, p...)
		}
	}
	return nil
}

func joinArrow(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += " -> "
		}
		out += id
	}
	return out
}

// walk calls fn for every node of the tree, following segment references.
func (n *node) walk(fn func(*node)) {
	fn(n)
	switch n.op {
	case opSegment:
		n.seg.root.walk(fn)
	case opAnd, opOr:
		n.l.walk(fn)
		n.r.walk(fn)
	case opNot:
		n.l.walk(fn)
	}
}

// traits returns the sorted trait ordinals the rule depends on, through references.
func (n *node) traits() []uint32 {
	var ts []uint32
	n.walk(func(x *node) {
		if x.op == opTrait || x.op == opWindow || x.op == opCount {
			ts = append(ts, x.trait)
		}
	})
	slices.Sort(ts)
	return slices.Compact(ts)
}

// refs returns the segments the rule references directly.
func (n *node) refs() []*segState {
	var out []*segState
	var visit func(*node)
	visit = func(x *node) {
		switch x.op {
		case opSegment:
			out = append(out, x.seg)
		case opAnd, opOr:
			visit(x.l)
			visit(x.r)
		case opNot:
			visit(x.l)
		}
	}
	visit(n)
	return out
}

// facts is what rule evaluation reads of one profile.
type facts struct {
	traits []Membership // sorted by Trait
	events []Event      // sorted by Trait, then Day
}

// eval reports whether a profile with facts f matches the rule at unix second t.
func (n *node) eval(f *facts, t uint32) bool {
	switch n.op {
	case opTrait:
		return hasTrait(f.traits, n.trait, t) || eventDays(f.events, n.trait, t, n.days) > 0
	case opWindow:
		return eventDays(f.events, n.trait, t, n.days) > 0
	case opCount:
		return eventDays(f.events, n.trait, t, n.days) >= int(n.min)
	case opSegment:
		return n.seg.root.eval(f, t)
	case opAnd:
		return n.l.eval(f, t) && n.r.eval(f, t)
	case opOr:
		return n.l.eval(f, t) || n.r.eval(f, t)
	case opNot:
		return !n.l.eval(f, t)
	}
	return false
}

// hasTrait reports whether tr, sorted by trait, holds trait alive at t.
func hasTrait(tr []Membership, trait, t uint32) bool {
	i, ok := findTrait(tr, trait)
	return ok && tr[i].Until > t
}

// Day returns the UTC day number of unix second t.
func Day(t uint32) uint16 { return uint16(t / 86400) }

// eventDays counts the days of trait in ev that fall in the window of the last days days
// at unix second t, today included.
func eventDays(ev []Event, trait, t uint32, days uint16) int {
	today := int(Day(t))
	first := today - int(days) + 1
	i, _ := slices.BinarySearchFunc(ev, Event{Trait: trait, Day: uint16(max(first, 0))}, cmpEvent)
	n := 0
	for ; i < len(ev) && ev[i].Trait == trait && int(ev[i].Day) <= today; i++ {
		n++
	}
	return n
}

func cmpEvent(a, b Event) int {
	if a.Trait != b.Trait {
		return int(int64(a.Trait) - int64(b.Trait))
	}
	return int(a.Day) - int(b.Day)
}

// window is a trait and the length of a window over its days, for finding the moments at
// which a rule's result may change as days slide out.
type window struct {
	trait uint32
	days  uint16
}

// windows returns every trait window the rule reads, through references.
func (n *node) windows() []window {
	var out []window
	n.walk(func(x *node) {
		if x.op == opTrait || x.op == opWindow || x.op == opCount {
			w := window{trait: x.trait, days: x.days}
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	})
	return out
}

// changes appends to dst the moments after now at which a rule over wins and deps may
// change its result for a profile with facts f: memberships lapsing and event days
// sliding out of windows.
func changes(dst []uint32, f *facts, deps []uint32, wins []window, now uint32) []uint32 {
	for _, t := range deps { // rules read few traits, profiles may hold many
		if i, ok := findTrait(f.traits, t); ok {
			if m := f.traits[i]; m.Until > now && m.Until != never {
				dst = append(dst, m.Until)
			}
		}
	}
	for _, w := range wins {
		i, _ := slices.BinarySearchFunc(f.events, Event{Trait: w.trait}, cmpEvent)
		for ; i < len(f.events) && f.events[i].Trait == w.trait; i++ {
			if c := (uint32(f.events[i].Day) + uint32(w.days)) * 86400; c > now {
				dst = append(dst, c)
			}
		}
	}
	return dst
}

// membership evaluates the rule for one profile at now. When it matches, until is the first
// second at which it stops matching as memberships lapse and days slide out, or never.
func (n *node) membership(f *facts, deps []uint32, wins []window, now uint32) (bool, uint32) {
	if n.op == opTrait && len(f.events) == 0 {
		// The most common rule, one onboarded trait: it holds until the membership lapses.
		i, ok := findTrait(f.traits, n.trait)
		if !ok || f.traits[i].Until <= now {
			return false, 0
		}
		return true, f.traits[i].Until
	}
	if !n.eval(f, now) {
		return false, 0
	}
	var buf [16]uint32
	cands := changes(buf[:0], f, deps, wins, now)
	slices.Sort(cands)
	for _, c := range slices.Compact(cands) {
		if !n.eval(f, c) {
			return true, c
		}
	}
	return true, never
}

const never = ^uint32(0)

func containsSorted(s []uint32, v uint32) bool {
	_, ok := slices.BinarySearch(s, v)
	return ok
}

// bitmap evaluates the rule over every profile at unix second now. The result may be
// shared with the index when owned is false; the caller must then neither modify nor keep
// it. Lock held.
func (ix *Index) bitmap(n *node, now uint32) (bm *roaring.Bitmap, owned bool) {
	switch n.op {
	case opTrait:
		if b := ix.traitBits[n.trait]; b != nil {
			return b, false
		}
		return roaring.New(), true
	case opWindow:
		return roaring.FastOr(ix.dayBitmaps(n.trait, n.days, now)...), true
	case opCount:
		return atLeast(ix.dayBitmaps(n.trait, n.days, now), int(n.min)), true
	case opSegment:
		return n.seg.bits, false
	case opNot:
		x, _ := ix.bitmap(n.l, now)
		return roaring.AndNot(ix.live, x), true
	}
	if n.op == opAnd {
		return ix.andBitmap(n, now), true
	}
	l, _ := ix.bitmap(n.l, now)
	r, _ := ix.bitmap(n.r, now)
	return roaring.Or(l, r), true
}

// andBitmap evaluates a chain of and: the terms without windows first, then the window
// terms over only the profiles still in, so that a count over 90 day bitmaps reads the
// few profiles that the other conditions leave rather than the whole population.
func (ix *Index) andBitmap(n *node, now uint32) *roaring.Bitmap {
	var terms []*node
	flattenAnd(n, &terms)
	var acc *roaring.Bitmap
	for _, t := range terms {
		if t.op == opWindow || t.op == opCount {
			continue
		}
		b, _ := ix.bitmap(t, now)
		if acc == nil {
			acc = b.Clone()
		} else {
			acc.And(b)
		}
	}
	type windowTerm struct {
		n    *node
		days []*roaring.Bitmap
		size uint64
	}
	var wins []windowTerm
	for _, t := range terms {
		if t.op == opWindow || t.op == opCount {
			w := windowTerm{n: t, days: ix.dayBitmaps(t.trait, t.days, now)}
			for _, d := range w.days {
				w.size += d.GetCardinality()
			}
			wins = append(wins, w)
		}
	}
	slices.SortFunc(wins, func(a, b windowTerm) int { return cmp.Compare(a.size, b.size) })
	for _, w := range wins {
		t, days := w.n, w.days
		if acc != nil && acc.GetCardinality()*perProfileCost < w.size {
			acc = ix.filterProfiles(acc, t, now)
			continue
		}
		if acc != nil {
			for i, d := range days {
				days[i] = roaring.And(d, acc)
			}
		}
		var b *roaring.Bitmap
		if t.op == opWindow {
			b = roaring.FastOr(days...)
		} else {
			b = atLeast(days, int(t.min))
		}
		if acc == nil {
			acc = b
		} else {
			acc.And(b)
		}
	}
	return acc
}

// perProfileCost is roughly how many bitmap entries cost as much to intersect as one
// profile costs to evaluate from its own facts.
const perProfileCost = 8

// filterProfiles returns the profiles of in whose own facts match n at now. Many profiles
// are split by ordinal between the cores; each part only reads the index.
func (ix *Index) filterProfiles(in *roaring.Bitmap, n *node, now uint32) *roaring.Bitmap {
	workers := max(1, min(runtime.GOMAXPROCS(0), int(in.GetCardinality()/uint64(coreShare))))
	if workers == 1 {
		return ix.filterRange(in, n, now, 0, 1<<32)
	}
	lo, hi := uint64(in.Minimum()), uint64(in.Maximum())+1
	parts := make([]*roaring.Bitmap, workers)
	var wg sync.WaitGroup
	for w := range workers {
		from, to := lo+(hi-lo)*uint64(w)/uint64(workers), lo+(hi-lo)*uint64(w+1)/uint64(workers)
		wg.Go(func() { parts[w] = ix.filterRange(in, n, now, from, to) })
	}
	wg.Wait()
	return roaring.FastOr(parts...)
}

// filterRange is filterProfiles for the profiles of in with ordinals in [from, to).
func (ix *Index) filterRange(in *roaring.Bitmap, n *node, now uint32, from, to uint64) *roaring.Bitmap {
	out := roaring.New()
	it := in.Iterator()
	it.AdvanceIfNeeded(uint32(from))
	for it.HasNext() {
		p := it.Next()
		if uint64(p) >= to {
			break
		}
		if pr := ix.profiles.get(p); pr != nil && n.eval(pr.facts(), now) {
			out.Add(p)
		}
	}
	return out
}

func flattenAnd(n *node, out *[]*node) {
	if n.op != opAnd {
		*out = append(*out, n)
		return
	}
	flattenAnd(n.l, out)
	flattenAnd(n.r, out)
}

// dayBitmaps returns the day bitmaps of trait in the window of days days at now.
func (ix *Index) dayBitmaps(trait uint32, days uint16, now uint32) []*roaring.Bitmap {
	today := int(Day(now))
	var out []*roaring.Bitmap
	for d := max(today-int(days)+1, 0); d <= today; d++ {
		if b := ix.dayBits[dayKey(trait, uint16(d))]; b != nil {
			out = append(out, b)
		}
	}
	return out
}

// atLeast returns the profiles set in at least k of the bitmaps: level i of the ladder
// holds the profiles seen on at least i+1 of the days read so far.
func atLeast(days []*roaring.Bitmap, k int) *roaring.Bitmap {
	if k <= 0 || len(days) < k {
		return roaring.New()
	}
	ladder := make([]*roaring.Bitmap, k)
	for i := range ladder {
		ladder[i] = roaring.New()
	}
	for _, d := range days {
		for i := k - 1; i > 0; i-- {
			ladder[i].Or(roaring.And(ladder[i-1], d))
		}
		ladder[0].Or(d)
	}
	return ladder[k-1]
}

func dayKey(trait uint32, day uint16) uint64 { return uint64(trait)<<16 | uint64(day) }
