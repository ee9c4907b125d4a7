package bidder

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting; real bid requests stay under 10 levels.
const maxDepth = 64

// maxIDs bounds how many IDs one request contributes; more are ignored.
const maxIDs = 32

// Syntax errors. They are preallocated: the request path builds no error values.
var (
	errNotObject = errors.New("body is not a JSON object")
	errSyntax    = errors.New("body is not valid JSON")
	errDepth     = errors.New("body nests JSON deeper than 64 levels")
	errUTF8      = errors.New("body has a string that is not valid UTF-8")
	errTrailing  = errors.New("body has data after the JSON object")
)

// span is a byte range [start, end) of the body; start < 0 means absent.
type span struct{ start, end int }

var noSpan = span{-1, -1}

func (s span) ok() bool { return s.start >= 0 }

// idKind is where an ID was found.
type idKind uint8

const (
	kindUID idKind = iota
	kindBUID
	kindIFA
	kindEID
)

// foundID is an ID found in the request. Spans index the body, or the scratch buffer when
// the string held escapes.
type foundID struct {
	kind           idKind
	src, val       span
	srcEsc, valEsc bool
}

// dataItem is one element of user.data and whether segd wrote it.
type dataItem struct {
	span
	ours bool
}

// scan holds what one pass over a bid request found: the positions segd edits and the
// fields its policy and lookup need. It is reused across requests; reset clears it.
type scan struct {
	body    []byte
	pos     int
	scratch []byte // unescaped strings
	prov    []byte // segd's provider id, to recognise its own user.data entries

	objEnd    int // index of the top-level '}'
	objEmpty  bool
	user      span
	userEmpty bool
	data      span
	items     []dataItem
	tmax      span
	coppa     bool
	ambiguous bool   // a field segd reads appeared twice or has the wrong type
	seen      uint32 // seen* bits
	itemOurs  bool   // the user.data element being read has segd's provider id
	itemID    bool   // the user.data element being read has an id
	ids       []foundID
	eidSrc    span // source of the eid object being read
	eidSrcEsc bool
}

func (s *scan) reset(body, prov []byte) {
	*s = scan{
		body:    body,
		prov:    prov,
		scratch: s.scratch[:0],
		items:   s.items[:0],
		ids:     s.ids[:0],
		user:    noSpan,
		data:    noSpan,
		tmax:    noSpan,
	}
}

// run scans the whole body: a JSON object and nothing else but whitespace.
func (s *scan) run() error {
	s.skipWS()
	if s.pos >= len(s.body) || s.body[s.pos] != '{' {
		return errNotObject
	}
	start := s.pos
	if err := s.object(1, s.topField); err != nil {
		return err
	}
	s.objEnd = s.pos - 1
	s.objEmpty = s.isEmptyObject(start)
	s.skipWS()
	if s.pos != len(s.body) {
		return errTrailing
	}
	return nil
}

func (s *scan) isEmptyObject(start int) bool {
	for i := start + 1; i < len(s.body); i++ {
		switch s.body[i] {
		case ' ', '\t', '\n', '\r':
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

func (s *scan) skipWS() {
	for s.pos < len(s.body) {
		c := s.body[s.pos]
		if c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		s.pos++
	}
}

// fieldFunc handles the value of one object member; key is the raw key (unescaped when
// it had escapes). It must consume the value.
type fieldFunc func(key []byte, depth int) error

// object parses an object at s.pos, calling field for each member's value.
func (s *scan) object(depth int, field fieldFunc) error {
	if depth > maxDepth {
		return errDepth
	}
	s.pos++ // '{'
	s.skipWS()
	if s.pos < len(s.body) && s.body[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		if s.pos >= len(s.body) || s.body[s.pos] != '"' {
			return errSyntax
		}
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		k := s.body[key.start:key.end]
		if esc {
			k = s.unescapeKey(key)
		}
		s.skipWS()
		if s.pos >= len(s.body) || s.body[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		s.skipWS()
		if field == nil {
			err = s.value(depth + 1)
		} else {
			err = field(k, depth+1)
		}
		if err != nil {
			return err
		}
		s.skipWS()
		if s.pos >= len(s.body) {
			return errSyntax
		}
		switch s.body[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// array parses an array at s.pos, calling elem for each element, or skipping it when
// elem is nil.
func (s *scan) array(depth int, elem func(depth int) error) error {
	if depth > maxDepth {
		return errDepth
	}
	s.pos++ // '['
	s.skipWS()
	if s.pos < len(s.body) && s.body[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		var err error
		if elem == nil {
			err = s.value(depth + 1)
		} else {
			err = elem(depth + 1)
		}
		if err != nil {
			return err
		}
		s.skipWS()
		if s.pos >= len(s.body) {
			return errSyntax
		}
		switch s.body[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case ']':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// str validates a string at s.pos, moves past it, and returns the span of its contents,
// without quotes, and whether it holds escapes.
func (s *scan) str() (span, bool, error) {
	end, esc, err := endOfString(s.body, s.pos)
	if err != nil {
		return noSpan, false, err
	}
	start := s.pos + 1
	s.pos = end
	return span{start, end - 1}, esc, nil
}

// endOfString validates the string whose opening quote is b[i] and returns the index after
// its closing quote and whether it holds escapes. Eight bytes at a time are passed over
// while none of them needs a look.
func endOfString(b []byte, i int) (int, bool, error) {
	esc := false
	for i++; i < len(b); {
		for i+8 <= len(b) {
			if m := specialMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			n, ok := escapeLen(b, i)
			if !ok {
				return 0, false, errSyntax
			}
			esc = true
			i += n
		case c < 0x20:
			return 0, false, errSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, false, errUTF8
			}
			i += n
		}
	}
	return 0, false, errSyntax
}

// specialMask flags the bytes of w (little-endian) that need a closer look inside a
// string: a quote, a backslash, a control character or a non-ASCII byte. Bytes above a
// flagged one may be flagged falsely, but the lowest flag is always exact, so the first
// special byte is at TrailingZeros64(mask)/8.
func specialMask(w uint64) uint64 {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (lsb * '"')
	slash := w ^ (lsb * '\\')
	ctl := (w - lsb*0x20) &^ w
	return ((quote-lsb)&^quote | (slash-lsb)&^slash | ctl | w) & msb
}

// escapeLen returns the length of the escape sequence at b[i] ('\\').
func escapeLen(b []byte, i int) (int, bool) {
	if i+1 >= len(b) {
		return 0, false
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if i+6 > len(b) {
			return 0, false
		}
		for _, h := range b[i+2 : i+6] {
			if hexVal(h) < 0 {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
