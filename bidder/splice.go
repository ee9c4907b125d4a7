package bidder

import "strconv"

// userEdit is the one place where segd changes user or user.data.
type userEdit uint8

const (
	editNone       userEdit = iota
	editDataArray           // rewrite user.data, keeping others' entries
	editInsertData          // add "data" to the user object
	editUserNull            // replace "user":null with an object
	editInsertUser          // add "user" to the request
)

// userEdit decides how to add segd's user.data objects to the scanned request.
func (s *scan) userEdit() (userEdit, span) {
	switch {
	case !s.user.ok():
		return editInsertUser, span{s.objEnd, s.objEnd}
	case s.body[s.user.start] == 'n':
		return editUserNull, s.user
	case s.data.ok():
		return editDataArray, s.data
	default:
		return editInsertData, span{s.user.start + 1, s.user.start + 1}
	}
}

// appendEnriched appends the request with frag, segd's user.data objects comma-joined,
// spliced in, and, when tmax >= 0 and the request had a tmax, that tmax. Every other byte
// is copied as it was.
func (s *scan) appendEnriched(dst, frag []byte, tmax int) []byte {
	kind, at := s.userEdit()
	tm := noSpan
	if tmax >= 0 && s.tmax.ok() {
		tm = s.tmax
	}
	pos := 0
	if tm.ok() && tm.start < at.start {
		dst = append(dst, s.body[:tm.start]...)
		dst = strconv.AppendInt(dst, int64(tmax), 10)
		pos = tm.end
	}
	dst = append(dst, s.body[pos:at.start]...)
	dst = s.appendUserEdit(dst, kind, frag)
	pos = at.end
	if tm.ok() && tm.start >= at.end {
		dst = append(dst, s.body[pos:tm.start]...)
		dst = strconv.AppendInt(dst, int64(tmax), 10)
		pos = tm.end
	}
	return append(dst, s.body[pos:]...)
}

func (s *scan) appendUserEdit(dst []byte, kind userEdit, frag []byte) []byte {
	switch kind {
	case editInsertUser:
		if !s.objEmpty {
			dst = append(dst, ',')
		}
		dst = append(dst, `"user":{"data":[`...)
		dst = append(dst, frag...)
		return append(dst, "]}"...)
	case editUserNull:
		dst = append(dst, `{"data":[`...)
		dst = append(dst, frag...)
		return append(dst, "]}"...)
	case editInsertData:
		dst = append(dst, `"data":[`...)
		dst = append(dst, frag...)
		dst = append(dst, ']')
		if !s.userEmpty {
			dst = append(dst, ',')
		}
		return dst
	}
	dst = append(dst, '[')
	for _, it := range s.items {
		if !it.ours {
			dst = append(dst, s.body[it.start:it.end]...)
			dst = append(dst, ',')
		}
	}
	dst = append(dst, frag...)
	return append(dst, ']')
}

// appendTmax appends the request with only its tmax replaced.
func (s *scan) appendTmax(dst []byte, tmax int) []byte {
	if !s.tmax.ok() {
		return append(dst, s.body...)
	}
	dst = append(dst, s.body[:s.tmax.start]...)
	dst = strconv.AppendInt(dst, int64(tmax), 10)
	return append(dst, s.body[s.tmax.end:]...)
}
