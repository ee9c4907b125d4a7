package bidder

import (
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
// fields its policy and lookup need. It is reused across requests; reset clears it. It is
// not safe for concurrent use.
type scan struct {
	scanned

	// marks holds the mark window: bit j%64 of marks[j/64] is set when body[markBase+j]
	// stops a run of plain string text (see markSpecial). Only the first markLen bits are
	// valid, so reset need not clear it.
	marks [markWords]uint64
}

// scanned is the part of a scan that reset replaces.
type scanned struct {
	body    []byte
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
	priv      privacy

	markBase int // the body offset of the mark window, a multiple of 64
	markLen  int // how many bytes of the body the mark window covers
}

// reset prepares s to scan body, keeping its buffers. Both body and prov must stay
// unchanged until the next reset; s keeps pointing into them.
func (s *scan) reset(body, prov []byte) {
	s.scanned = scanned{
		body:    body,
		prov:    prov,
		scratch: s.scratch[:0],
		items:   s.items[:0],
		ids:     s.ids[:0],
		user:    noSpan,
		data:    noSpan,
		tmax:    noSpan,
		priv:    privacy{gdpr: -1, extGDPR: -1, atts: -1},
	}
}

// run scans the whole body: a JSON object and nothing else but whitespace.
func (s *scan) run() error {
	b := s.body
	start := skipSpace(b, 0)
	if start >= len(b) || b[start] != '{' {
		return errNotObject
	}
	end, err := s.object(start, 1, s.topField, topKeys)
	if err != nil {
		return err
	}
	s.objEnd = end - 1
	s.objEmpty = s.isEmptyObject(start)
	if skipSpace(b, end) != len(b) {
		return errTrailing
	}
	return nil
}

// isEmptyObject reports whether the object whose '{' is body[start] has no members.
func (s *scan) isEmptyObject(start int) bool {
	i := skipSpace(s.body, start+1)
	return i < len(s.body) && s.body[i] == '}'
}

// fieldFunc handles the value of one object member: key is the member's name, unescaped
// when it had escapes and then valid until the scratch buffer next grows, and body[i] is
// the first byte of the value. It returns the index after the value.
type fieldFunc func(key []byte, i, depth int) (int, error)

// object validates the object whose '{' is body[i], at nesting depth depth, and returns
// the index after its '}'. It calls field for the value of each member whose name keys
// (see keyFilter) lets through, and skips the others' values.
func (s *scan) object(i, depth int, field fieldFunc, keys uint64) (int, error) {
	return s.walk(skipper{s: s, i: i, depth: depth, keys: keys}, field)
}

// member reads the object member whose name opens at body[i], passes its value, at
// nesting depth depth, to field, and returns the index after the value. A positive end
// says that the name is plain text, already checked, whose closing quote is body[end-1].
func (s *scan) member(i, end, depth int, field fieldFunc) (int, error) {
	b := s.body
	key, esc := span{i + 1, end - 1}, false
	if end <= 0 {
		var err error
		if key, esc, err = s.str(i); err != nil {
			return 0, err
		}
	}
	if i = skipSpace(b, key.end+1); i >= len(b) || b[i] != ':' {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	k := b[key.start:key.end]
	if esc {
		k = s.unescape(key)
	}
	return field(k, i, depth)
}

// array validates the array whose '[' is body[i], at nesting depth depth, calls elem for
// each element, which starts at body[j] and which elem must move past, and returns the
// index after its ']'.
func (s *scan) array(i, depth int, elem func(j, depth int) (int, error)) (int, error) {
	if depth > maxDepth {
		return 0, errDepth
	}
	b := s.body
	if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = elem(i, depth+1); err != nil {
			return 0, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// str validates the string whose opening quote is body[i] and returns the span of its
// contents, without quotes, so that its closing quote is at the span's end, and whether
// it holds escapes.
func (s *scan) str(i int) (span, bool, error) {
	if end := s.plainString(i); end >= 0 {
		return span{i + 1, end - 1}, false, nil
	}
	end, esc, err := s.endOfString(i)
	if err != nil {
		return noSpan, false, err
	}
	return span{i + 1, end - 1}, esc, nil
}

// plainString returns the index after the string whose opening quote is body[i] when
// the mark window covers it and its first marked byte is the closing quote, that is when
// it holds only ASCII text without escapes; otherwise it returns -1 and the caller must
// use endOfString. It settles most strings of a bid request.
func (s *scan) plainString(i int) int {
	off := i + 1 - s.markBase
	if uint(off) >= uint(s.markLen) {
		return -1
	}
	m := s.marks[off>>6&(markWords-1)] >> (off & 63)
	for m == 0 {
		if off = off | 63 + 1; off >= s.markLen {
			return -1
		}
		m = s.marks[off>>6&(markWords-1)]
	}
	k := s.markBase + off + bits.TrailingZeros64(m)
	if k >= len(s.body) || s.body[k] != '"' {
		return -1
	}
	return k + 1
}

// endOfString validates the string whose opening quote is body[i] and returns the index
// after its closing quote and whether it holds escapes. It moves from one marked byte to
// the next, so runs of plain text cost a few instructions per 64 bytes.
func (s *scan) endOfString(i int) (int, bool, error) {
	b := s.body
	esc := false
	for i++; ; {
		if i = s.nextMark(i); i >= len(b) {
			return 0, false, errSyntax
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
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, false, errUTF8
			}
			i += n
		}
	}
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

// hexVal returns the value of the hexadecimal digit c, or -1.
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
