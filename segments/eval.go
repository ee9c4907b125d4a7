package segments

import (
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

type nodeOp uint8

const (
	opTrait nodeOp = iota
	opSegment
	opAnd
	opOr
	opNot
)

// node is a compiled rule. Trait atoms hold ordinals, segment references point at the live
// segState, so a redefinition of a referenced segment takes effect without recompiling.
type node struct {
	op    nodeOp
	trait uint32
	seg   *segState
	l, r  *node
}

// compile turns a parsed rule into a node tree. self is the ID of the segment being defined
// ("" for a count preview), used to reject cycles. Writer lock held.
func (ix *Index) compile(e Expr, self string) (*node, error) {
	switch e := e.(type) {
	case *TraitExpr:
		return &node{op: opTrait, trait: ix.traitOrdinal(e.Name)}, nil
	case *WindowExpr, *CountExpr:
		return nil, &RuleError{Col: e.Pos(),
			Msg: "recency and frequency windows need event data, which segd does not collect yet"}
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
		if x.op == opTrait {
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

// eval reports whether a profile with traits tr matches the rule at unix second t.
func (n *node) eval(tr []Membership, t uint32) bool {
	switch n.op {
	case opTrait:
		return hasTrait(tr, n.trait, t)
	case opSegment:
		return n.seg.root.eval(tr, t)
	case opAnd:
		return n.l.eval(tr, t) && n.r.eval(tr, t)
	case opOr:
		return n.l.eval(tr, t) || n.r.eval(tr, t)
	case opNot:
		return !n.l.eval(tr, t)
	}
	return false
}

// hasTrait reports whether tr, sorted by trait, holds trait alive at t.
func hasTrait(tr []Membership, trait, t uint32) bool {
	i, ok := slices.BinarySearchFunc(tr, trait, func(m Membership, x uint32) int {
		return int(int64(m.Trait) - int64(x))
	})
	return ok && tr[i].Until > t
}

// membership evaluates the rule for one profile at now. When it matches, until is the first
// second at which it stops matching as the profile's memberships expire, or never.
func (n *node) membership(tr []Membership, deps []uint32, now uint32) (in bool, until uint32) {
	if !n.eval(tr, now) {
		return false, 0
	}
	var buf [16]uint32
	cands := buf[:0]
	for _, m := range tr {
		if m.Until > now && m.Until != never && containsSorted(deps, m.Trait) {
			cands = append(cands, m.Until)
		}
	}
	slices.Sort(cands)
	for _, c := range slices.Compact(cands) {
		if !n.eval(tr, c) {
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

// bitmap evaluates the rule over every profile. The result may be shared with the index
// when owned is false; the caller must then neither modify nor keep it. Lock held.
func (ix *Index) bitmap(n *node) (bm *roaring.Bitmap, owned bool) {
	switch n.op {
	case opTrait:
		if b := ix.traitBits[n.trait]; b != nil {
			return b, false
		}
		return roaring.New(), true
	case opSegment:
		return n.seg.bits, false
	case opNot:
		x, _ := ix.bitmap(n.l)
		return roaring.AndNot(ix.live, x), true
	}
	l, _ := ix.bitmap(n.l)
	r, _ := ix.bitmap(n.r)
	if n.op == opAnd {
		return roaring.And(l, r), true
	}
	return roaring.Or(l, r), true
}
