package bidder

import (
	"encoding/binary"
	"math/bits"
)

// value validates the JSON value that starts at body[i], at nesting depth depth, and
// returns the index after it. It is the scanner's path for everything segd does not read.
func (s *scan) value(i, depth int) (int, error) {
	return s.walk(skipper{s: s, i: i, depth: depth}, nil)
}

// walk drives skip's machine from k until the value ends and returns the index after it.
// It settles the cases that skip stops for: strings that need a full check, and the
// members of the outer object that k.keys lets through, whose values go to field.
func (s *scan) walk(k skipper, field fieldFunc) (int, error) {
	k.depth = max(k.depth, 1) // so that objs never holds more than 64 levels
	for {
		switch skip(&k) {
		case stopDone:
			return k.i, nil
		case stopString:
			end, _, err := s.endOfString(k.i)
			if err != nil {
				return 0, err
			}
			k.i = end
		case stopKey:
			end, err := s.member(k.i, k.end, k.depth+1, field)
			if err != nil {
				return 0, err
			}
			k.i, k.at = end, atNext
		case stopDepth:
			return 0, errDepth
		default:
			return 0, errSyntax
		}
	}
}

// skipper is the state of skip's machine while it is stopped.
type skipper struct {
	s     *scan  // the scan whose body and mark window the machine reads
	i     int    // where the machine stopped
	depth int    // nesting depth of the value being skipped, at least 1
	open  int    // containers open inside it
	objs  uint64 // a stack of bits, innermost in bit 0: 1 for an object, 0 for an array
	at    uint8  // at* state to resume in

	// keys is the key filter (see keyFilter) of the members of the outer object that
	// skip must stop at, rather than skip; zero stops at none.
	keys uint64
	end  int // at stopKey, the index after the name when it is plain text, or 0
}

// States of skip's machine: what must come next.
const (
	atValue = iota // a value
	atNext         // ',' or the closer of the innermost open container
	atKey          // a member name
	atColon        // the ':' after a member name
)

// Reasons for skip to stop.
const (
	stopDone   = iota // the value ended at k.i
	stopString        // body[k.i] opens a string that needs endOfString
	stopKey           // body[k.i] opens the name of a member that k.keys lets through
	stopSyntax        // the body is not JSON at k.i
	stopDepth         // the value nests deeper than maxDepth
)

// skip runs the machine from k's state until the value ends or a case needs walk's help,
// and returns why it stopped. Each state is a label and each transition a jump; each state
// looks for the byte it expects first and only then for whitespace. It calls no function
// that is not inlined and keeps few values alive, so that the compiler can hold its state
// in registers.
func skip(k *skipper) int {
	b, i, open, objs := k.s.body, k.i, k.open, k.objs
	var c byte // the byte at hand; in str, ':' for a member name and '"' for a value
	var off int
	var m uint64
	blk, word := -1, uint64(0) // the marks of the 64-byte block blk of the body
	switch k.at {
	case atNext:
		goto next
	case atKey:
		goto key
	case atColon:
		goto colon
	}

value:
	if uint(i) >= uint(len(b)) {
		goto syntax
	}
	switch c = b[i]; c {
	case '"':
		goto str
	case '{', '[':
		if k.depth+open > maxDepth {
			k.i, k.open, k.objs = i, open, objs
			return stopDepth
		}
		objs <<= 1
		if c == '{' {
			objs |= 1
		}
		open++
		if i++; uint(i) < uint(len(b)) && b[i] <= ' ' {
			i = skipSpace(b, i)
		}
		if uint(i) < uint(len(b)) && b[i] == c+2 { // '{'+2 is '}' and '['+2 is ']'
			i++
			open--
			objs >>= 1
			goto next
		}
		if c == '{' {
			goto key
		}
		goto value
	case 't':
		if len(b)-i < 4 || binary.LittleEndian.Uint32(b[i:]) != litTrue {
			goto syntax
		}
		i += 4
	case 'f':
		if len(b)-i < 5 || binary.LittleEndian.Uint32(b[i+1:]) != litAlse {
			goto syntax
		}
		i += 5
	case 'n':
		if len(b)-i < 4 || binary.LittleEndian.Uint32(b[i:]) != litNull {
			goto syntax
		}
		i += 4
	case ' ', '\t', '\n', '\r':
		i = skipSpace(b, i+1)
		goto value
	default:
		goto number
	}

next:
	if open == 0 {
		k.i, k.open, k.objs = i, open, objs
		return stopDone
	}
	if uint(i) >= uint(len(b)) {
		goto syntax
	}
	c = b[i]
	if c == ',' {
		if i++; uint(i) < uint(len(b)) && b[i] == ' ' {
			i++ // as in pretty-printed arrays
		}
		if objs&1 != 0 {
			goto key
		}
		goto value
	}
	if c == ']'|byte(objs&1)<<5 { // ']'|0x20 is '}'
		i++
		open--
		objs >>= 1
		goto next
	}
	if c <= ' ' && spaceBits>>c&1 != 0 {
		i = skipSpace(b, i+1)
		goto next
	}
	goto syntax

key:
	if uint(i) < uint(len(b)) && b[i] == '"' {
		c = ':'
		goto str
	}
	if uint(i) < uint(len(b)) && b[i] <= ' ' && spaceBits>>b[i]&1 != 0 {
		i = skipSpace(b, i+1)
		goto key
	}
	goto syntax

str: // body[i] opens a string; settle it here if it is plain text within the window
	off = i + 1
	if off>>6 != blk {
		if uint(off-k.s.markBase) >= uint(k.s.markLen) {
			goto slowString
		}
		blk, word = off>>6, k.s.marks[(off-k.s.markBase)>>6&(markWords-1)]
	}
	m = word >> (off & 63)
	for m == 0 {
		off = off | 63 + 1
		if uint(off-k.s.markBase) >= uint(k.s.markLen) {
			goto slowString
		}
		blk, word = off>>6, k.s.marks[(off-k.s.markBase)>>6&(markWords-1)]
		m = word
	}
	off += bits.TrailingZeros64(m)
	if uint(off) >= uint(len(b)) || b[off] != '"' {
		goto slowString
	}
	if c == '"' {
		i = off + 1
		goto next
	}
	if open == 1 && k.keys&keyBit(b[i+1], off-i-1) != 0 {
		k.i, k.end, k.open, k.objs = i, off+1, open, objs
		return stopKey
	}
	i = off + 1

colon:
	if uint(i) < uint(len(b)) && b[i] == ':' {
		if i++; uint(i) < uint(len(b)) && b[i] == ' ' {
			i++ // as in pretty-printed objects
		}
		goto value
	}
	if uint(i) < uint(len(b)) && b[i] <= ' ' && spaceBits>>b[i]&1 != 0 {
		i = skipSpace(b, i+1)
		goto colon
	}
	goto syntax

number: // b[i] starts a number, or is not JSON
	if c == '-' {
		i++
	}
	if uint(i) >= uint(len(b)) || b[i] < '0' || b[i] > '9' {
		goto syntax
	}
	if b[i] == '0' {
		i++
	} else {
		for i++; uint(i) < uint(len(b)) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if uint(i) < uint(len(b)) && b[i] == '.' {
		if i++; uint(i) >= uint(len(b)) || b[i] < '0' || b[i] > '9' {
			goto syntax
		}
		for i++; uint(i) < uint(len(b)) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if uint(i) < uint(len(b)) && b[i]|0x20 == 'e' {
		if i++; uint(i) < uint(len(b)) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if uint(i) >= uint(len(b)) || b[i] < '0' || b[i] > '9' {
			goto syntax
		}
		for i++; uint(i) < uint(len(b)) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	goto next

slowString:
	k.i, k.open, k.objs, k.at = i, open, objs, atNext
	if c == ':' {
		if open == 1 && k.keys != 0 {
			k.end = 0
			return stopKey // its name may have escapes, so let member read it
		}
		k.at = atColon
	}
	return stopString

syntax:
	k.i, k.open, k.objs = i, open, objs
	return stopSyntax
}

// The literals, as little-endian words: "true", "null", and "alse" after the 'f'.
const (
	litTrue = 't' | 'r'<<8 | 'u'<<16 | 'e'<<24
	litNull = 'n' | 'u'<<8 | 'l'<<16 | 'l'<<24
	litAlse = 'a' | 'l'<<8 | 's'<<16 | 'e'<<24
)

// skipSpace returns the index of the first byte at or after i that is not whitespace.
func skipSpace(b []byte, i int) int {
	for uint(i) < uint(len(b)) && b[i] <= ' ' && spaceBits>>b[i]&1 != 0 {
		i++
	}
	return i
}

// spaceBits has bit c set for each whitespace byte c.
const spaceBits uint64 = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

// keyFilter returns the key filter that lets through members with the given names: a bit
// per name, picked by keyBit. Other names may get through too, so whoever handles the
// members must still compare the names, but none of these is held back.
func keyFilter(names ...string) uint64 {
	var f uint64
	for _, name := range names {
		f |= keyBit(name[0], len(name))
	}
	return f
}

// keyBit returns the bit of a key filter for a member name that starts with the byte
// first and is n bytes long. It must be cheap: skip computes it for every name.
func keyBit(first byte, n int) uint64 { return 1 << ((uint(first) + 3*uint(n)) & 63) }
