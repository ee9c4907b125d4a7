package bidder

import (
	"strings"
	"testing"
)

// gppHeader encodes a GPP header from a string of bits, padded with zeros to whole
// base64url characters.
func gppHeader(bits string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for len(bits)%6 != 0 {
		bits += "0"
	}
	var b strings.Builder
	for i := 0; i < len(bits); i += 6 {
		v := 0
		for _, c := range bits[i : i+6] {
			v = v<<1 | int(c-'0')
		}
		b.WriteByte(alphabet[v])
	}
	return b.String()
}

func TestGPPHeaderSafe(t *testing.T) {
	// Type 3, version 1, then the entries: "0"+offset is one ID, "1"+offset+span a range.
	head := "000011" + "000001"
	for _, tc := range []struct {
		name string
		s    string
		want bool
	}{
		{"US national, as a CMP writes it", gppUSNat(1, 2), true},
		{"one ID, 7", gppHeader(head+"000000000001"+"0"+"01011") + "~x", true},
		{"a range of IDs 2 to 3", gppHeader(head+"000000000001"+"1"+"011"+"11") + "~x~y", true},
		{"a range and sections that disagree", gppHeader(head+"000000000001"+"1"+"011"+"11") + "~x", false},
		{"more entries than sections", gppHeader(head+"000000000010"+"0"+"11"+"0"+"11") + "~x", false},
		{"no sections", gppHeader(head + "000000000000"), true},
		{"type 2", gppHeader("000010"+"000001"+"000000000000") + "~x", false},
		{"an offset of 40 bits", gppHeader(head+"000000000001"+"0"+strings.Repeat("0", 38)+"11") + "~x", false},
		{"ID 987", gppHeader(head+"000000000001"+"0"+"0000000000000011") + "~x", true},
		{"a range past the ID limit", gppHeader(head+"000000000001"+"1"+"0000000000000011"+
			"0000000000000011") + "~x", false},
		{"cut short", gppHeader(head+"0000000000") + "~x", false},
		{"not base64url", "D+BA~x", false},
		{"empty", "", false},
		{"hangs go-gpp", "D-CgAAAAAAAAARfAAfAAYgAAAAAAAAA", false},
	} {
		if got := gppHeaderSafe(tc.s); got != tc.want {
			t.Errorf("%s: gppHeaderSafe(%q) = %v, want %v", tc.name, tc.s, got, tc.want)
		}
	}
}
