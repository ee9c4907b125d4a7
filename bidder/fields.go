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

// Key filters for the objects that segd reads: each lets through the names that the
// object's field function looks for.
var (
	topKeys       = keyFilter("user", "device", "regs", "tmax")
	userKeys      = keyFilter("id", "buyeruid", "data", "eids", "ext", "consent")
	userExtKeys   = keyFilter("eids", "consent")
	deviceKeys    = keyFilter("ifa", "lmt", "ext")
	deviceExtKeys = keyFilter("atts")
	regsKeys      = keyFilter("coppa", "gdpr", "us_privacy", "gpp", "gpp_sid", "ext")
	regsExtKeys   = keyFilter("gdpr", "us_privacy")
	dataItemKeys  = keyFilter("id")
	eidKeys       = keyFilter("source", "uids")
	uidKeys       = keyFilter("id")
)

// topField reads the members of the request object that segd needs.
func (s *scan) topField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "user":
		s.once(&s.seen, seenUser)
		return s.userValue(i, depth)
	case "device":
		s.once(&s.seen, seenDevice)
		return s.objectOrSkip(i, depth, s.deviceField, deviceKeys)
	case "regs":
		s.once(&s.seen, seenRegs)
		return s.objectOrSkip(i, depth, s.regsField, regsKeys)
	case "tmax":
		s.once(&s.seen, seenTmax)
		end, err := s.value(i, depth)
		if err == nil && isUint(s.body[i:end]) {
			s.tmax = span{i, end}
		}
		return end, err
	}
	return s.value(i, depth)
}

// isUint reports whether b is a decimal integer of at most nine digits.
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

// objectOrSkip reads the object at body[i] with field and keys, or skips a value of another
// type.
func (s *scan) objectOrSkip(i, depth int, field fieldFunc, keys uint64) (int, error) {
	if i < len(s.body) && s.body[i] == '{' {
		return s.object(i, depth, field, keys)
	}
	return s.value(i, depth)
}

// userValue reads user and notes where it is and whether it is empty or null.
func (s *scan) userValue(i, depth int) (int, error) {
	if i < len(s.body) && s.body[i] == '{' {
		end, err := s.object(i, depth, s.userField, userKeys)
		if err != nil {
			return 0, err
		}
		s.user = span{i, end}
		s.userEmpty = s.isEmptyObject(i)
		return end, nil
	}
	end, err := s.value(i, depth)
	if err != nil {
		return 0, err
	}
	if string(s.body[i:end]) == "null" {
		s.user = span{i, end}
	} else {
		s.ambiguous = true // user of the wrong type: leave the request alone
	}
	return end, nil
}

// userField reads the members of user that carry IDs or segments.
func (s *scan) userField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "id":
		s.once(&s.seen, seenUserID)
		return s.idValue(i, depth, kindUID)
	case "buyeruid":
		s.once(&s.seen, seenBuyerUID)
		return s.idValue(i, depth, kindBUID)
	case "data":
		s.once(&s.seen, seenData)
		return s.dataValue(i, depth)
	case "eids":
		s.once(&s.seen, seenEIDs)
		return s.eidsValue(i, depth)
	case "ext":
		s.once(&s.seen, seenUserExt)
		return s.objectOrSkip(i, depth, s.userExtField, userExtKeys)
	case "consent":
		return s.privString(i, depth, &s.priv.consent, seenConsent)
	}
	return s.value(i, depth)
}

// userExtField reads the extended IDs that OpenRTB 2.5 keeps in user.ext.
func (s *scan) userExtField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "eids":
		s.once(&s.seen, seenExtEIDs)
		return s.eidsValue(i, depth)
	case "consent":
		return s.privString(i, depth, &s.priv.extConsent, seenExtConsent)
	}
	return s.value(i, depth)
}

// deviceField reads device.ifa.
func (s *scan) deviceField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "ifa":
		s.once(&s.seen, seenIFA)
		return s.idValue(i, depth, kindIFA)
	case "lmt":
		s.once(&s.priv.seen, seenLMT)
		end, err := s.value(i, depth)
		if err == nil {
			s.priv.lmt = flagSet(s.body[i:end])
		}
		return end, err
	case "ext":
		s.once(&s.priv.seen, seenDeviceExt)
		return s.objectOrSkip(i, depth, s.deviceExtField, deviceExtKeys)
	}
	return s.value(i, depth)
}

// deviceExtField reads device.ext.atts, Apple's App Tracking Transparency status, failing
// closed: null counts as absent, and any value but a small integer as 0, not determined,
// so that a denial of the wrong type ("2") never reads as no status at all.
func (s *scan) deviceExtField(key []byte, i, depth int) (int, error) {
	if string(key) != "atts" {
		return s.value(i, depth)
	}
	s.once(&s.priv.seen, seenATTS)
	end, err := s.value(i, depth)
	if err == nil && string(s.body[i:end]) != "null" {
		s.priv.atts = max(smallInt(s.body[i:end]), 0)
	}
	return end, err
}

// regsField reads regs.coppa.
func (s *scan) regsField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "coppa":
		s.once(&s.seen, seenCOPPA)
		end, err := s.value(i, depth)
		if err == nil {
			s.coppa = coppaSet(s.body[i:end])
		}
		return end, err
	case "gdpr":
		return s.gdprValue(i, depth, &s.priv.gdpr, seenGDPR)
	case "us_privacy":
		return s.privString(i, depth, &s.priv.usp, seenUSP)
	case "gpp":
		return s.privString(i, depth, &s.priv.gpp, seenGPP)
	case "gpp_sid":
		s.once(&s.priv.seen, seenGPPSID)
		return s.gppSIDValue(i, depth)
	case "ext":
		s.once(&s.priv.seen, seenRegsExt)
		return s.objectOrSkip(i, depth, s.regsExtField, regsExtKeys)
	}
	return s.value(i, depth)
}

// regsExtField reads OpenRTB 2.5's regs.ext.gdpr and regs.ext.us_privacy.
func (s *scan) regsExtField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "gdpr":
		return s.gdprValue(i, depth, &s.priv.extGDPR, seenExtGDPR)
	case "us_privacy":
		return s.privString(i, depth, &s.priv.extUSP, seenExtUSP)
	}
	return s.value(i, depth)
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
func (s *scan) dataValue(i, depth int) (int, error) {
	if i >= len(s.body) || s.body[i] != '[' {
		end, err := s.value(i, depth)
		if err != nil {
			return 0, err
		}
		if string(s.body[i:end]) != "null" {
			s.ambiguous = true // user.data of the wrong type
		}
		s.data = span{i, end}
		return end, nil
	}
	s.items = s.items[:0]
	end, err := s.array(i, depth, s.dataItem)
	if err != nil {
		return 0, err
	}
	s.data = span{i, end}
	return end, nil
}

// dataItem records one element of user.data.
func (s *scan) dataItem(i, depth int) (int, error) {
	s.itemOurs, s.itemID = false, false
	end, err := s.objectOrSkip(i, depth, s.dataItemField, dataItemKeys)
	if err != nil {
		return 0, err
	}
	s.items = append(s.items, dataItem{span: span{i, end}, ours: s.itemOurs})
	return end, nil
}

// dataItemField reads the id of a user.data element. An element with two ids is
// ambiguous: segd would drop it or keep it depending on which id counts.
func (s *scan) dataItemField(key []byte, i, depth int) (int, error) {
	if string(key) != "id" {
		return s.value(i, depth)
	}
	if s.itemID {
		s.ambiguous = true
	}
	s.itemID = true
	if i >= len(s.body) || s.body[i] != '"' {
		return s.value(i, depth)
	}
	sp, esc, err := s.str(i)
	if err != nil {
		return 0, err
	}
	v := s.body[sp.start:sp.end]
	if esc {
		v = s.unescape(sp)
	}
	if string(v) == string(s.prov) {
		s.itemOurs = true
	}
	return sp.end + 1, nil
}

// eidsValue reads an array of extended-ID objects.
func (s *scan) eidsValue(i, depth int) (int, error) {
	if i < len(s.body) && s.body[i] == '[' {
		return s.array(i, depth, s.eidValue)
	}
	return s.value(i, depth)
}

// eidValue reads one extended-ID object. Its source may follow its uids, so the IDs are
// collected first and given the source when the object ends; without a source, or with
// one longer than an ID type allows, they are dropped.
func (s *scan) eidValue(i, depth int) (int, error) {
	first := len(s.ids)
	s.eidSrc = noSpan
	end, err := s.objectOrSkip(i, depth, s.eidField, eidKeys)
	if err != nil {
		return 0, err
	}
	n := s.eidSrc.end - s.eidSrc.start
	if !s.eidSrc.ok() || n == 0 || n > segments.MaxEIDSourceLen {
		s.ids = s.ids[:first]
		return end, nil
	}
	for k := first; k < len(s.ids); k++ {
		s.ids[k].src, s.ids[k].srcEsc = s.eidSrc, s.eidSrcEsc
	}
	return end, nil
}

// eidField reads the source and the uids of an extended-ID object.
func (s *scan) eidField(key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "source":
		if i < len(s.body) && s.body[i] == '"' {
			sp, esc, err := s.str(i)
			if err != nil {
				return 0, err
			}
			s.eidSrc, s.eidSrcEsc = sp, esc
			if esc {
				s.eidSrc = s.unescapeSpan(sp)
			}
			return sp.end + 1, nil
		}
	case "uids":
		if i < len(s.body) && s.body[i] == '[' {
			return s.array(i, depth, s.uidValue)
		}
	}
	return s.value(i, depth)
}

// uidValue reads one element of an extended ID's uids.
func (s *scan) uidValue(i, depth int) (int, error) {
	return s.objectOrSkip(i, depth, s.uidField, uidKeys)
}

// uidField reads the id of a uids element.
func (s *scan) uidField(key []byte, i, depth int) (int, error) {
	if string(key) == "id" {
		return s.idValue(i, depth, kindEID)
	}
	return s.value(i, depth)
}

// idValue reads an ID string; other types are skipped, as are empty strings and IDs past
// maxIDs.
func (s *scan) idValue(i, depth int, kind idKind) (int, error) {
	if i >= len(s.body) || s.body[i] != '"' {
		return s.value(i, depth)
	}
	sp, esc, err := s.str(i)
	if err != nil {
		return 0, err
	}
	if sp.start == sp.end || len(s.ids) >= maxIDs {
		return sp.end + 1, nil
	}
	id := foundID{kind: kind, val: sp, src: noSpan}
	if esc {
		id.val, id.valEsc = s.unescapeSpan(sp), true
	}
	v := s.bytes(id.val, id.valEsc)
	if len(v) == 0 || len(v) > segments.MaxIDValueLen || kind == kindIFA && segments.ZeroIFA(v) {
		return sp.end + 1, nil
	}
	s.ids = append(s.ids, id)
	return sp.end + 1, nil
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

// hex4 returns the value of the four hexadecimal digits at the start of b.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}

// privacy holds the privacy fields of a request as the scan found them.
type privacy struct {
	seen                uint32 // seen* bits of the privacy fields
	gdpr, extGDPR       int8   // -1 absent; regs.gdpr and 2.5's regs.ext.gdpr
	consent, extConsent strField
	usp, extUSP         strField
	gpp                 strField
	gppSID              [maxGPPSIDs]int
	gppSIDs             int  // entries used in gppSID
	gppSIDBad           bool // gpp_sid is not a list of section numbers
	lmt                 bool
	atts                int // -1 absent
}

// maxGPPSIDs bounds the sections read from regs.gpp_sid; a longer list is malformed.
const maxGPPSIDs = 16

// strField is a string value: its span in the body, or in the scratch buffer when esc.
type strField struct {
	sp  span
	esc bool
	set bool
}

// Bits of privacy.seen.
const (
	seenConsent = 1 << iota
	seenExtConsent
	seenLMT
	seenDeviceExt
	seenATTS
	seenGDPR
	seenExtGDPR
	seenUSP
	seenExtUSP
	seenGPP
	seenGPPSID
	seenRegsExt
)

// privString reads a string privacy field; another type leaves it unset.
func (s *scan) privString(i, depth int, f *strField, bit uint32) (int, error) {
	s.once(&s.priv.seen, bit)
	if i >= len(s.body) || s.body[i] != '"' {
		return s.value(i, depth)
	}
	sp, esc, err := s.str(i)
	if err != nil {
		return 0, err
	}
	*f = strField{sp: sp, set: true}
	if esc {
		f.sp, f.esc = s.unescapeSpan(sp), true
	}
	return sp.end + 1, nil
}

// gdprValue reads a gdpr flag: 0 and 1 as such, null as absent, anything else as 1,
// failing closed.
func (s *scan) gdprValue(i, depth int, dst *int8, bit uint32) (int, error) {
	s.once(&s.priv.seen, bit)
	end, err := s.value(i, depth)
	if err != nil {
		return 0, err
	}
	switch string(s.body[i:end]) {
	case "null":
	case "0":
		*dst = 0
	default:
		*dst = 1
	}
	return end, nil
}

// gppSIDValue reads regs.gpp_sid, an array of small section numbers.
func (s *scan) gppSIDValue(i, depth int) (int, error) {
	if i >= len(s.body) || s.body[i] != '[' {
		end, err := s.value(i, depth)
		if err == nil && string(s.body[i:end]) != "null" {
			s.priv.gppSIDBad = true
		}
		return end, err
	}
	return s.array(i, depth, func(i, depth int) (int, error) {
		end, err := s.value(i, depth)
		if err != nil {
			return 0, err
		}
		n := smallInt(s.body[i:end])
		if n < 0 || s.priv.gppSIDs == maxGPPSIDs {
			s.priv.gppSIDBad = true
			return end, nil
		}
		s.priv.gppSID[s.priv.gppSIDs] = n
		s.priv.gppSIDs++
		return end, nil
	})
}

// smallInt parses a non-negative integer of at most four digits, or returns -1.
func smallInt(b []byte) int {
	if len(b) == 0 || len(b) > 4 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// flagSet reads a 0/1 flag failing closed: anything but 0, null or absent counts as set.
func flagSet(v []byte) bool { return coppaSet(v) }
