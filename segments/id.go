package segments

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on the IDs that segd accepts. Longer values are not IDs but garbage, and refusing
// them keeps hashing allocation-free.
const (
	MaxIDValueLen   = 256 // bytes of an ID value
	MaxEIDSourceLen = 128 // bytes of the source of an extended ID
)

// ID types. Extended IDs have the type "eid:" followed by their source, such as
// "eid:liveramp.com".
const (
	TypeUID   = "uid"  // user.id
	TypeBUID  = "buid" // user.buyeruid
	TypeIFA   = "ifa"  // device.ifa
	eidPrefix = "eid:"
)

// ID is one raw pseudonymous identifier as it arrives, before hashing.
type ID struct {
	Type  string // "uid", "buid", "ifa" or "eid:<source>"
	Value string
}

// ParseID parses "type:value", where type is uid, buid, ifa or eid:<source>.
func ParseID(s string) (ID, error) {
	typ, value, ok := strings.Cut(s, ":")
	if !ok {
		return ID{}, fmt.Errorf("id %q: want type:value", truncate(s))
	}
	if typ == "eid" {
		src, v, ok := strings.Cut(value, ":")
		if !ok || src == "" {
			return ID{}, fmt.Errorf("id %q: want eid:<source>:value", truncate(s))
		}
		typ, value = eidPrefix+src, v
	}
	id := ID{Type: typ, Value: value}
	return id, id.Validate()
}

// Validate reports whether the ID can be used: a known type, a value within limits, and not
// an empty or all-zero advertising ID.
func (id ID) Validate() error {
	switch {
	case id.Type == TypeUID, id.Type == TypeBUID, id.Type == TypeIFA:
	case strings.HasPrefix(id.Type, eidPrefix):
		src := id.Type[len(eidPrefix):]
		if src == "" || len(src) > MaxEIDSourceLen {
			return fmt.Errorf("id type %q: bad eid source", truncate(id.Type))
		}
	default:
		return fmt.Errorf("id type %q: want uid, buid, ifa or eid:<source>", truncate(id.Type))
	}
	if id.Value == "" {
		return errors.New("empty id value")
	}
	if len(id.Value) > MaxIDValueLen {
		return fmt.Errorf("id value longer than %d bytes", MaxIDValueLen)
	}
	if id.Type == TypeIFA && ZeroIFA([]byte(id.Value)) {
		return errors.New("all-zero ifa is no id")
	}
	return nil
}

// ZeroIFA reports whether an advertising ID carries no identity: empty, or only zeros and
// dashes, as sent when the user limited tracking.
func ZeroIFA(v []byte) bool {
	for _, c := range v {
		if c != '0' && c != '-' {
			return false
		}
	}
	return true
}

// Hash returns the keyed hash of id.
func (h Hasher) Hash(id ID) uint64 {
	return h.HashID([]byte(id.Type), nil, []byte(id.Value))
}

// HashID returns the keyed hash of an ID given as its type, an optional extension of the
// type (the source of an extended ID, when typ is "eid:"), and its value. Advertising IDs
// are hashed case-insensitively. It does not allocate when the parts fit the limits above;
// it does not retain its arguments.
func (h Hasher) HashID(typ, typExt, value []byte) uint64 {
	var buf [8 + MaxEIDSourceLen + MaxIDValueLen]byte
	b := append(buf[:0], typ...)
	b = append(b, typExt...)
	b = append(b, 0)
	if string(typ) == TypeIFA {
		for _, c := range value {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
	} else {
		b = append(b, value...)
	}
	return h.Sum(b)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
