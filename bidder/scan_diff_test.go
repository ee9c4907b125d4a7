package bidder

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// isSpecialRef is the definition that markSpecial implements: the bytes that stop a run
// of plain string text.
func isSpecialRef(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }

// markSpecialRef is markSpecial one byte at a time.
func markSpecialRef(dst []uint64, src []byte) {
	for j := range dst {
		dst[j] = 0
		for k := range 64 {
			if isSpecialRef(src[j*64+k]) {
				dst[j] |= 1 << k
			}
		}
	}
}

// checkMarks compares every implementation of markSpecial with markSpecialRef on src,
// whose length must be a multiple of 64.
func checkMarks(t *testing.T, src []byte) {
	t.Helper()
	want := make([]uint64, len(src)/64)
	markSpecialRef(want, src)
	for name, mark := range markSpecialFuncs {
		got := make([]uint64, len(want))
		for j := range got {
			got[j] = 0x5555 // must be overwritten
		}
		mark(got, src)
		if !slices.Equal(got, want) {
			t.Fatalf("%s(%q)\n got %x\nwant %x", name, src, got, want)
		}
	}
}

func TestMarkSpecial(t *testing.T) {
	if len(markSpecialFuncs) == 0 {
		t.Fatal("no implementation of markSpecial")
	}
	t.Logf("implementations: %v", slices.Sorted(maps.Keys(markSpecialFuncs)))

	// Every byte value at every position of a block, among plain text and among specials.
	for _, fill := range []byte{'a', '"', 0x80} {
		block := bytes.Repeat([]byte{fill}, 128)
		for pos := range 128 {
			for c := range 256 {
				block[pos] = byte(c)
				checkMarks(t, block)
			}
			block[pos] = fill
		}
	}

	// Random blocks, drawn mostly from the bytes near the edges of each class.
	edges := []byte{0, 0x1f, ' ', '!', '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xc3, 0xff}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		src := make([]byte, 64*(1+r.IntN(5)))
		for k := range src {
			if r.IntN(3) == 0 {
				src[k] = byte(r.IntN(256))
			} else {
				src[k] = edges[r.IntN(len(edges))]
			}
		}
		checkMarks(t, src)
	}

	// No blocks at all.
	for _, mark := range markSpecialFuncs {
		mark(nil, nil)
	}
}

// endOfStringRef is endOfString one byte at a time, written from RFC 8259 without marks.
func endOfStringRef(b []byte, i int) (int, bool, error) {
	esc := false
	for j := i + 1; j < len(b); {
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, nil
		case c == '\\':
			if j+1 >= len(b) {
				return 0, false, errSyntax
			}
			esc = true
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
				continue
			case 'u':
				if j+6 > len(b) || !isHex4(b[j+2:j+6]) {
					return 0, false, errSyntax
				}
				j += 6
				continue
			}
			return 0, false, errSyntax
		case c < 0x20:
			return 0, false, errSyntax
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, false, errUTF8
			}
			j += n
		}
	}
	return 0, false, errSyntax
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// stringPieces go inside the strings of TestStringEnd: valid and invalid escapes, control
// characters, and valid, truncated and invalid UTF-8.
var stringPieces = []string{
	`"`, `\`, `\\`, `\"`, `\/`, `\n`, `\u00e9`, `\uD83D\uDE00`, `\u12`, `\x`, `\`,
	"\x00", "\x1f", "\t", "\x7f", " ",
	"é", "€", "😀", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xff", "\xc0\xaf", "\xed\xa0\x80",
}

// checkString scans the string whose quote is body[i] every way the scanner can, with s,
// and compares each with endOfStringRef.
func checkString(t *testing.T, s *scan, body []byte, i int) {
	t.Helper()
	wantEnd, wantEsc, wantErr := endOfStringRef(body, i)

	s.reset(body, nil)
	sp, esc, err := s.str(i)
	if err != wantErr || err == nil && (sp.end+1 != wantEnd || esc != wantEsc) {
		t.Fatalf("str(%q, %d) = %v, %v, %v; want end %d, %v, %v",
			body, i, sp, esc, err, wantEnd, wantEsc, wantErr)
	}

	s.reset(body, nil)
	end, err := s.value(i, 1)
	if err != wantErr || err == nil && end != wantEnd {
		t.Fatalf("value(%q, %d) = %d, %v; want %d, %v", body, i, end, err, wantEnd, wantErr)
	}
}

// TestStringEnd checks strings of every length up to 80 with each of stringPieces at
// every position, starting at offsets that put the 64-byte block boundaries of the mark
// window everywhere inside them.
func TestStringEnd(t *testing.T) {
	prefixes := []int{0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 47, 48}
	for p := 55; p < 70; p++ {
		prefixes = append(prefixes, p)
	}
	s := new(scan)
	for _, prefix := range prefixes {
		for n := range 81 {
			text := strings.Repeat("a", n)
			for _, tail := range []string{`"`, `",1`, ``} {
				body := []byte(strings.Repeat(" ", prefix) + `"` + text + tail)
				checkString(t, s, body, prefix)
			}
			for pos := 0; pos <= n; pos++ {
				for _, piece := range stringPieces {
					body := []byte(strings.Repeat(" ", prefix) + `"` + text[:pos] + piece +
						text[pos:] + `"`)
					checkString(t, s, body, prefix)
				}
			}
		}
	}
}

// TestStringEndWindow checks strings that end beyond the mark window, and bodies much
// longer than it.
func TestStringEndWindow(t *testing.T) {
	s := new(scan)
	for _, start := range []int{markWords*64 - 100, markWords*64 - 1, 3 * markWords * 64} {
		for _, n := range []int{0, 1, 63, 64, 65, 200, 3 * markWords * 64} {
			text := []byte(strings.Repeat("b", n))
			for _, at := range []int{-1, 0, n / 2, n - 1} {
				body := append(bytes.Repeat([]byte{' '}, start), '"')
				body = append(body, text...)
				if at >= 0 && at < n {
					body[start+1+at] = '\\' // "\\b", or "\\"" that leaves the string open
				}
				body = append(body, '"')
				checkString(t, s, body, start)
			}
		}
	}
}

// TestSkipStrings checks run on objects holding arrays of random strings against a parser
// of that shape built on endOfStringRef.
func TestSkipStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := new(scan)
	for range 20000 {
		var b strings.Builder
		b.WriteString(`{"k":[`)
		for e := range r.IntN(6) {
			if e > 0 {
				b.WriteString(", "[:1+r.IntN(2)])
			}
			b.WriteByte('"')
			for range r.IntN(5) {
				if r.IntN(2) == 0 {
					b.WriteString(strings.Repeat("x", r.IntN(70)))
				} else {
					b.WriteString(stringPieces[r.IntN(len(stringPieces))])
				}
			}
			b.WriteByte('"')
		}
		b.WriteString(`]}`)
		body := []byte(b.String())
		s.reset(body, nil)
		err := s.run()
		if want := validStrings(body); (err == nil) != want {
			t.Fatalf("run(%q) = %v, want valid %v", body, err, want)
		}
	}
}

// validStrings reports whether body, as TestSkipStrings builds it, is JSON: an array of
// strings that endOfStringRef accepts, separated by a comma and an optional space.
func validStrings(body []byte) bool {
	i := len(`{"k":[`)
	for first := true; ; first = false {
		if i < len(body) && body[i] == ']' && first {
			break
		}
		if !first {
			if i >= len(body) || body[i] != ',' {
				break
			}
			if i++; i < len(body) && body[i] == ' ' {
				i++
			}
		}
		if i >= len(body) || body[i] != '"' {
			return false
		}
		end, _, err := endOfStringRef(body, i)
		if err != nil {
			return false
		}
		i = end
	}
	return string(body[i:]) == "]}"
}

// FuzzMarkSpecial checks every implementation of markSpecial against markSpecialRef on
// the input, padded to whole blocks with plain text.
func FuzzMarkSpecial(f *testing.F) {
	f.Add([]byte(`{"a":"b\"c\\d\u00e9"}`))
	f.Add([]byte("\x00\x1f\x20\x21\x22\x5b\x5c\x5d\x7f\x80\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.Repeat([]byte{'a'}, (len(in)+63)/64*64)
		copy(src, in)
		checkMarks(t, src)
	})
}
