package bidder

import (
	"encoding/binary"
	"math/bits"
)

// States of skip's machine: what the next token must be.
const (
	wantValue = iota
	wantKey
	wantColon
	wantNext // ',' or the closer of the open container
)

// value validates and moves past the JSON value at s.pos, at nesting depth depth. It is
// the scanner's inner loop for everything segd does not read, so it runs as one iterative
// machine over the bytes, with a bit stack of open containers instead of recursion.
func (s *scan) value(depth int) error {
	b, i := s.body, s.pos
	var objs [2]uint64 // bit n set: container n is an object
	open, st := 0, wantValue
	for {
		for i < len(b) && b[i] <= ' ' {
			if c := b[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return errSyntax
			}
			i++
		}
		if i >= len(b) {
			return errSyntax
		}
		c := b[i]
		switch st {
		case wantKey:
			if c != '"' {
				return errSyntax
			}
			end := shortString(b, i)
			if end < 0 {
				var err error
				if end, _, err = endOfString(b, i); err != nil {
					return err
				}
			}
			i, st = end, wantColon
			continue
		case wantColon:
			if c != ':' {
				return errSyntax
			}
			i, st = i+1, wantValue
			continue
		case wantNext:
			inObj := objs[(open-1)>>6]&(1<<((open-1)&63)) != 0
			switch {
			case c == ',':
				i, st = i+1, wantValue
				if inObj {
					st = wantKey
				}
				continue
			case c == '}' && inObj, c == ']' && !inObj:
				i++
				open--
			default:
				return errSyntax
			}
		default: // wantValue
			switch c {
			case '{', '[':
				if depth+open > maxDepth {
					return errDepth
				}
				if c == '{' {
					objs[open>>6] |= 1 << (open & 63)
				} else {
					objs[open>>6] &^= 1 << (open & 63)
				}
				open++
				i++
				st = wantValue
				if c == '{' {
					st = wantKey
				}
				if j := skipSpace(b, i); j < len(b) && (b[j] == '}' && c == '{' || b[j] == ']' && c == '[') {
					i = j + 1
					open--
					break
				}
				continue
			case '"':
				end := shortString(b, i)
				if end < 0 {
					var err error
					if end, _, err = endOfString(b, i); err != nil {
						return err
					}
				}
				i = end
			case 't':
				if i = literalEnd(b, i, "true"); i < 0 {
					return errSyntax
				}
			case 'f':
				if i = literalEnd(b, i, "false"); i < 0 {
					return errSyntax
				}
			case 'n':
				if i = literalEnd(b, i, "null"); i < 0 {
					return errSyntax
				}
			default:
				if i = numberEnd(b, i); i < 0 {
					return errSyntax
				}
			}
		}
		if open == 0 {
			s.pos = i
			return nil
		}
		st = wantNext
	}
}

// shortString returns the index after the string whose quote is b[i] when the string ends
// within the next eight bytes with nothing to check on the way, or -1. It is small enough
// to inline, and most keys and many values of a bid request are that short.
func shortString(b []byte, i int) int {
	if i+9 > len(b) {
		return -1
	}
	m := specialMask(binary.LittleEndian.Uint64(b[i+1:]))
	if m == 0 {
		return -1
	}
	k := i + 1 + bits.TrailingZeros64(m)>>3
	if b[k] != '"' {
		return -1
	}
	return k + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// literalEnd returns the index after lit at b[i:], or -1.
func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// numberEnd returns the index after the JSON number at b[i:], or -1.
func numberEnd(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}
