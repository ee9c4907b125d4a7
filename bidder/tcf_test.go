package bidder

import (
	"encoding/base64"
	"time"
)

// bitWriter appends big-endian bit fields, as TCF strings are laid out.
type bitWriter struct {
	buf  []byte
	bits int
}

func (w *bitWriter) put(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.bits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 1 << uint(7-w.bits%8)
		}
		w.bits++
	}
}

// tcfString builds a TCF v2 core string that consents to the given purposes (1-24) and
// vendors, as a CMP would write it.
func tcfString(purposes, vendors []int) string {
	w := &bitWriter{}
	deciseconds := uint64(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli() / 100)
	w.put(2, 6)            // version
	w.put(deciseconds, 36) // created
	w.put(deciseconds, 36) // last updated
	w.put(7, 12)           // CMP ID
	w.put(1, 12)           // CMP version
	w.put(1, 6)            // consent screen
	w.put(4<<6|13, 12)     // language "EN"
	w.put(150, 12)         // vendor list version
	w.put(4, 6)            // TCF policy version
	w.put(0, 1)            // service specific
	w.put(0, 1)            // non-standard texts
	w.put(0, 12)           // special feature opt-ins
	var p uint64
	for _, id := range purposes {
		p |= 1 << uint(24-id)
	}
	w.put(p, 24) // purposes consent
	w.put(0, 24) // purposes legitimate interest
	w.put(0, 1)  // purpose one treatment
	w.put(4<<6|4, 12)
	maxVendor := 1
	for _, v := range vendors {
		maxVendor = max(maxVendor, v)
	}
	w.put(uint64(maxVendor), 16)
	w.put(0, 1) // bit field
	for id := 1; id <= maxVendor; id++ {
		bit := uint64(0)
		for _, v := range vendors {
			if v == id {
				bit = 1
			}
		}
		w.put(bit, 1)
	}
	w.put(0, 16) // legitimate interest: max vendor 0
	w.put(0, 1)
	w.put(0, 12) // no publisher restrictions
	return base64.RawURLEncoding.EncodeToString(w.buf)
}
