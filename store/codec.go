package store

import (
	"encoding/binary"
	"errors"

	"github.com/segd/segd/segments"
)

// Key layout. Every key starts with a one-byte family and a slash.
//
//	m/fingerprint   8 bytes: fingerprint of the ID secret
//	m/next          4 bytes: the first unallocated profile ordinal
//	m/schema        4 bytes: layout version
//	s/<source id>   source JSON
//	g/<segment id>  segment JSON
//	t/<ordinal>     trait name; ordinal is 4 bytes big-endian
//	p/<profile>     profile record; profile is 4 bytes big-endian
//	x/<hash>        empty: the ID hash, 8 bytes big-endian, is suppressed (opted out)
var (
	keyFingerprint = []byte("m/fingerprint")
	keyNext        = []byte("m/next")
	keySchema      = []byte("m/schema")
	prefixSource   = []byte("s/")
	prefixSegment  = []byte("g/")
	prefixTrait    = []byte("t/")
	prefixProfile  = []byte("p/")
	prefixSuppress = []byte("x/")
)

const schemaVersion = 1

func ordinalKey(prefix []byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), prefix...), n)
}

func hashKey(prefix []byte, h uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), h)
}

func nameKey(prefix []byte, name string) []byte {
	return append(append([]byte(nil), prefix...), name...)
}

// A profile record is: uvarint count of IDs, 8 bytes per ID hash, uvarint count of
// memberships, then per membership the uvarint trait ordinal and 4 bytes of expiry, then,
// when the profile has events, a uvarint count of events and per event the uvarint trait
// ordinal and 2 bytes of day. Integers are little-endian.
func appendProfile(dst []byte, rec segments.ProfileRecord) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(rec.IDs)))
	for _, h := range rec.IDs {
		dst = binary.LittleEndian.AppendUint64(dst, h)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rec.Traits)))
	for _, m := range rec.Traits {
		dst = binary.AppendUvarint(dst, uint64(m.Trait))
		dst = binary.LittleEndian.AppendUint32(dst, m.Until)
	}
	if len(rec.Events) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(rec.Events)))
		for _, e := range rec.Events {
			dst = binary.AppendUvarint(dst, uint64(e.Trait))
			dst = binary.LittleEndian.AppendUint16(dst, e.Day)
		}
	}
	return dst
}

var errCorrupt = errors.New("corrupt profile record")

func decodeProfile(p uint32, b []byte) (segments.ProfileRecord, error) {
	rec := segments.ProfileRecord{Profile: p}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return rec, errCorrupt
	}
	b = b[k:]
	if uint64(len(b)) < 8*n {
		return rec, errCorrupt
	}
	rec.IDs = make([]uint64, n)
	for i := range rec.IDs {
		rec.IDs[i] = binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	n, k = binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return rec, errCorrupt
	}
	b = b[k:]
	rec.Traits = make([]segments.Membership, n)
	for i := range rec.Traits {
		t, k := binary.Uvarint(b)
		if k <= 0 || len(b) < k+4 || t > 1<<32-1 {
			return rec, errCorrupt
		}
		rec.Traits[i] = segments.Membership{
			Trait: uint32(t),
			Until: binary.LittleEndian.Uint32(b[k:]),
		}
		b = b[k+4:]
	}
	if len(b) == 0 {
		return rec, nil
	}
	return decodeEvents(rec, b)
}

func decodeEvents(rec segments.ProfileRecord, b []byte) (segments.ProfileRecord, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)) {
		return rec, errCorrupt
	}
	b = b[k:]
	rec.Events = make([]segments.Event, n)
	for i := range rec.Events {
		t, k := binary.Uvarint(b)
		if k <= 0 || len(b) < k+2 || t > 1<<32-1 {
			return rec, errCorrupt
		}
		rec.Events[i] = segments.Event{Trait: uint32(t), Day: binary.LittleEndian.Uint16(b[k:])}
		b = b[k+2:]
	}
	if len(b) != 0 {
		return rec, errCorrupt
	}
	return rec, nil
}
