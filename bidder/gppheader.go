package bidder

import "strings"

// GPP header limits that gppHeaderSafe enforces.
const (
	maxGPPSectionID = 1000 // section IDs in use are below 30
	maxFibBits      = 16   // bits of one Fibonacci-coded offset, its closing 1 included
)

// gppHeaderSafe reports whether the header of the GPP string s is well formed and small:
// type 3, section IDs coded in Fibonacci offsets of at most maxFibBits bits, each ID at
// most maxGPPSectionID, exactly one ID per section that follows. go-gpp's parser takes
// time exponential in an offset's length and loops for ever on a range that ends at
// 65535, so no string reaches it unchecked: an unsafe header is an undecodable string.
func gppHeaderSafe(s string) bool {
	header, rest, found := strings.Cut(s, "~")
	sections := 0
	if found {
		sections = strings.Count(rest, "~") + 1
	}
	r := bitReader{s: header}
	if t, ok := r.bits(6); !ok || t != 3 {
		return false
	}
	if _, ok := r.bits(6); !ok { // version
		return false
	}
	entries, ok := r.bits(12)
	if !ok || entries > sections {
		return false
	}
	ids, top := 0, 0
	for range entries {
		isRange, ok := r.bits(1)
		if !ok {
			return false
		}
		first, ok := r.fibonacci()
		if !ok {
			return false
		}
		start, end := top+first, top+first
		if isRange == 1 {
			span, ok := r.fibonacci()
			if !ok {
				return false
			}
			end = start + span
		}
		if end > maxGPPSectionID {
			return false
		}
		ids += end - start + 1
		top = max(top, end)
	}
	return ids == sections
}

// bitReader reads big-endian bit fields from a base64url string, six bits a character.
type bitReader struct {
	s   string
	pos int // in bits
}

// bits reads the next n bits (n at most 32), or reports false past the end or on a
// character that base64url does not use.
func (r *bitReader) bits(n int) (int, bool) {
	v := 0
	for range n {
		i := r.pos / 6
		if i >= len(r.s) {
			return 0, false
		}
		c := base64URLValue(r.s[i])
		if c < 0 {
			return 0, false
		}
		v = v<<1 | (c>>(5-r.pos%6))&1
		r.pos++
	}
	return v, true
}

// fibonacci reads one Fibonacci-coded integer: a 1 bit at position i adds fib(i+2), and
// two 1 bits in a row end it. It reports false for a code longer than maxFibBits.
func (r *bitReader) fibonacci() (int, bool) {
	v, prev, a, b := 0, 0, 1, 2 // a and b: the weights of this bit and the next
	for range maxFibBits {
		bit, ok := r.bits(1)
		if !ok {
			return 0, false
		}
		if bit == 1 && prev == 1 {
			return v, true
		}
		if bit == 1 {
			v += a
		}
		prev, a, b = bit, b, a+b
	}
	return 0, false
}

func base64URLValue(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
