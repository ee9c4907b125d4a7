package bidder

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/segd/segd/segments"
)

// Bits of scan.seen, one per field that segd reads, to spot duplicate keys.
const (
	seenUser = 1 << iota
	seenDevice
	seenRegs
	seenTmax
	seenUserID
	seenBuyerUID
	seenData
	seenEIDs
	seenUserExt
	seenExtEIDs
	seenIFA
	seenCOPPA
)

// once records that a field was seen, and marks the request ambiguous the second time:
// with duplicate keys, parsers disagree on which value counts.
func (s *scan) once(seen *uint32, bit uint32) {
	if *seen&bit != 0 {
		s.ambiguous = true
	}
	*seen |= bit
}

func (s *scan) topField(key []byte, depth int) error {
	switch string(key) {
	case "user":
		s.once(&s.seen, seenUser)
		return s.userValue(depth)
	case "device":
		s.once(&s.seen, seenDevice)
		return s.objectOrSkip(depth, s.deviceField)
	case "regs":
		s.once(&s.seen, seenRegs)
		return s.objectOrSkip(depth, s.regsField)
	case "tmax":
		s.once(&s.seen, seenTmax)
		start := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if isUint(s.body[start:s.pos]) {
			s.tmax = span{start, s.pos}
		}
		return nil
	}
	return s.value(depth)
}

func isUint(b []byte) bool {
	if len(b) == 0 || len(b) > 9 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// objectOrSkip reads an object with field, or skips a value of another type.
func (s *scan) objectOrSkip(depth int, field fieldFunc) error {
	if s.pos < len(s.body) && s.body[s.pos] == '{' {
		return s.object(depth, field)
	}
	return s.value(depth)
}

func (s *scan) userValue(depth int) error {
	start := s.pos
	if s.pos < len(s.body) && s.body[s.pos] == '{' {
		if err := s.object(depth, s.userField); err != nil {
			return err
		}
		s.user = span{start, s.pos}
		s.userEmpty = s.isEmptyObject(start)
		return nil
	}
	if err := s.value(depth); err != nil {
		return err
	}
	if string(s.body[start:s.pos]) == "null" {
		s.user = span{start, s.pos}
		return nil
	}
	s.ambiguous = true // user of the wrong type: leave the request alone
	return nil
}

func (s *scan) userField(key []byte, depth int) error {
	switch string(key) {
	case "id":
		s.once(&s.seen, seenUserID)
		return s.idValue(depth, kindUID)
	case "buyeruid":
		s.once(&s.seen, seenBuyerUID)
		return s.idValue(depth, kindBUID)
	case "data":
		s.once(&s.seen, seenData)
		return s.dataValue(depth)
	case "eids":
		s.once(&s.seen, seenEIDs)
		return s.eidsValue(depth)
	case "ext":
		s.once(&s.seen, seenUserExt)
		return s.objectOrSkip(depth, s.userExtField)
	}
	return s.value(depth)
}

func (s *scan) userExtField(key []byte, depth int) error {
	if string(key) == "eids" {
		s.once(&s.seen, seenExtEIDs)
		return s.eidsValue(depth)
	}
	return s.value(depth)
}

func (s *scan) deviceField(key []byte, depth int) error {
	if string(key) == "ifa" {
		s.once(&s.seen, seenIFA)
		return s.idValue(depth, kindIFA)
	}
	return s.value(depth)
}

func (s *scan) regsField(key []byte, depth int) error {
	if string(key) == "coppa" {
		s.once(&s.seen, seenCOPPA)
		start := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		s.coppa = coppaSet(s.body[start:s.pos])
		return nil
	}
	return s.value(depth)
}

// coppaSet reads regs.coppa failing closed: anything but 0 or null means the request is
// subject to COPPA.
func coppaSet(v []byte) bool {
	switch string(v) {
	case "0", "null", "0.0", "-0":
		return false
	}
	return true
}

// dataValue records user.data and, for an array, each element and whether segd wrote it.
func (s *scan) dataValue(depth int) error {
	start := s.pos
	if s.pos >= len(s.body) || s.body[s.pos] != '[' {
		if err := s.value(depth); err != nil {
			return err
		}
		if string(s.body[start:s.pos]) != "null" {
			s.ambiguous = true // user.data of the wrong type
		}
		s.data = span{start, s.pos}
		return nil
	}
	s.items = s.items[:0]
	if err := s.array(depth, s.dataItem); err != nil {
		return err
	}
	s.data = span{start, s.pos}
	return nil
}

func (s *scan) dataItem(depth int) error {
	start := s.pos
	s.itemOurs, s.itemID = false, false
	if err := s.objectOrSkip(depth, s.dataItemField); err != nil {
		return err
	}
	s.items = append(s.items, dataItem{span: span{start, s.pos}, ours: s.itemOurs})
	return nil
}

// dataItemField reads the id of a user.data element. An element with two ids is
// ambiguous: segd would drop it or keep it depending on which id counts.
func (s *scan) dataItemField(key []byte, depth int) error {
	if string(key) != "id" {
		return s.value(depth)
	}
	if s.itemID {
		s.ambiguous = true
	}
	s.itemID = true
	if s.pos >= len(s.body) || s.body[s.pos] != '"' {
		return s.value(depth)
	}
	sp, esc, err := s.str()
	if err != nil {
		return err
	}
	v := s.body[sp.start:sp.end]
	if esc {
		v = s.unescape(sp)
	}
	if string(v) == string(s.prov) {
		s.itemOurs = true
	}
	return nil
}

func (s *scan) eidsValue(depth int) error {
	if s.pos < len(s.body) && s.body[s.pos] == '[' {
		return s.array(depth, s.eidValue)
	}
	return s.value(depth)
}

// eidValue reads one extended-ID object. Its source may follow its uids, so the IDs are
// collected first and given the source when the object ends; without a source, or with
// one longer than an ID type allows, they are dropped.
func (s *scan) eidValue(depth int) error {
	first := len(s.ids)
	s.eidSrc = noSpan
	if err := s.objectOrSkip(depth, s.eidField); err != nil {
		return err
	}
	n := s.eidSrc.end - s.eidSrc.start
	if !s.eidSrc.ok() || n == 0 || n > segments.MaxEIDSourceLen {
		s.ids = s.ids[:first]
		return nil
	}
	for i := first; i < len(s.ids); i++ {
		s.ids[i].src, s.ids[i].srcEsc = s.eidSrc, s.eidSrcEsc
	}
	return nil
}

func (s *scan) eidField(key []byte, depth int) error {
	switch string(key) {
	case "source":
		if s.pos < len(s.body) && s.body[s.pos] == '"' {
			sp, esc, err := s.str()
			if err != nil {
				return err
			}
			s.eidSrc, s.eidSrcEsc = sp, esc
			if esc {
				s.eidSrc = s.unescapeSpan(sp)
			}
			return nil
		}
	case "uids":
		if s.pos < len(s.body) && s.body[s.pos] == '[' {
			return s.array(depth, s.uidValue)
		}
	}
	return s.value(depth)
}

func (s *scan) uidValue(depth int) error {
	return s.objectOrSkip(depth, s.uidField)
}

func (s *scan) uidField(key []byte, depth int) error {
	if string(key) == "id" {
		return s.idValue(depth, kindEID)
	}
	return s.value(depth)
}

// idValue reads an ID string; other types are skipped, as are empty strings and IDs past
// maxIDs.
func (s *scan) idValue(depth int, kind idKind) error {
	if s.pos >= len(s.body) || s.body[s.pos] != '"' {
		return s.value(depth)
	}
	sp, esc, err := s.str()
	if err != nil {
		return err
	}
	if sp.start == sp.end || len(s.ids) >= maxIDs {
		return nil
	}
	id := foundID{kind: kind, val: sp, src: noSpan}
	if esc {
		id.val, id.valEsc = s.unescapeSpan(sp), true
	}
	v := s.bytes(id.val, id.valEsc)
	if len(v) == 0 || len(v) > segments.MaxIDValueLen || kind == kindIFA && segments.ZeroIFA(v) {
		return nil
	}
	s.ids = append(s.ids, id)
	return nil
}

// bytes returns the bytes of a span of the body, or of the scratch buffer when esc.
func (s *scan) bytes(sp span, esc bool) []byte {
	if esc {
		return s.scratch[sp.start:sp.end]
	}
	return s.body[sp.start:sp.end]
}

// unescapeSpan decodes the string contents at sp into the scratch buffer and returns the
// span of the result there.
func (s *scan) unescapeSpan(sp span) span {
	start := len(s.scratch)
	s.scratch = appendUnescaped(s.scratch, s.body[sp.start:sp.end])
	return span{start, len(s.scratch)}
}

// unescape decodes the string contents at sp and returns them; the slice is valid until
// the scratch buffer next grows.
func (s *scan) unescape(sp span) []byte {
	u := s.unescapeSpan(sp)
	return s.scratch[u.start:u.end]
}

func (s *scan) unescapeKey(sp span) []byte { return s.unescape(sp) }

// appendUnescaped appends the decoded form of the contents of a valid JSON string.
// Invalid surrogates become U+FFFD, as encoding/json decodes them.
func appendUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch src[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeU(src[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default: // '"', '\\', '/'
			dst = append(dst, src[i+1])
		}
		i += 2
	}
	return dst
}

// decodeU decodes a \uXXXX escape, or a surrogate pair of two, at the start of b.
func decodeU(b []byte) (rune, int) {
	r := hex4(b[2:6])
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if pair := utf16.DecodeRune(r, hex4(b[8:12])); pair != utf8.RuneError {
			return pair, 12
		}
	}
	return utf8.RuneError, 6
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}
