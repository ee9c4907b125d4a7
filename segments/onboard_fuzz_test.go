package segments_test

import (
	"testing"

	"github.com/segd/segd/segments"
)

// checkLine asserts what every accepted onboarding line must satisfy, whatever its format.
func checkLine(t *testing.T, in []byte, l segments.Line) {
	t.Helper()
	if len(l.IDs) == 0 || len(l.IDs) > segments.MaxLineIDs {
		t.Fatalf("%q: accepted with %d IDs", in, len(l.IDs))
	}
	n := len(l.Add) + len(l.Remove)
	if n == 0 || n > segments.MaxLineCodes {
		t.Fatalf("%q: accepted with %d codes", in, n)
	}
	for _, id := range l.IDs {
		if err := id.Validate(); err != nil {
			t.Fatalf("%q: accepted ID %+v: %v", in, id, err)
		}
	}
	for _, codes := range [][]string{l.Add, l.Remove} {
		for _, c := range codes {
			if !segments.ValidTraitName("src:" + c) {
				t.Fatalf("%q: accepted code %q", in, c)
			}
		}
	}
	if l.TTL < 0 || l.TTL > segments.MaxTTL {
		t.Fatalf("%q: accepted TTL %v", in, l.TTL)
	}
}

func FuzzParseTSVLine(f *testing.F) {
	for _, s := range []string{
		"uid:u1\tgold,-silver",
		"uid:u1|ifa:AB-CD|eid:id5.io:x\t gold , ,silver\r",
		"ifa:0000-0000\tgold",
		"uid:u1\tgold\textra",
		"eid::x\t-",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := segments.ParseTSVLine(in)
		if err == nil {
			checkLine(t, in, l)
		}
	})
}

func FuzzParseNDJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"ids":[{"type":"ifa","value":"AB-1"}],"add":["a"],"remove":["b"],"ttl":"720h"}`,
		`{"ids":[{"type":"eid:id5.io","value":"x"}],"add":["a"],"ttl":"30d"}`,
		`{"ids":[],"add":["a"]}`,
		`{"ids":[{"type":"uid","value":"u"}],"add":["a"]} {}`,
		`{"ids":[{"type":"uid","value":"u"}],"add":["a"],"ttl":"202163959358895d"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := segments.ParseNDJSONLine(in)
		if err == nil {
			checkLine(t, in, l)
		}
	})
}
