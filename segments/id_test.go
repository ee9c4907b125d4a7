package segments_test

import (
	"strings"
	"testing"

	"github.com/segd/segd/segments"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want segments.ID
	}{
		{"uid", "uid:abc", segments.ID{Type: "uid", Value: "abc"}},
		{"buid", "buid:B-1", segments.ID{Type: "buid", Value: "B-1"}},
		{
			"ifa", "ifa:6D92078A-8246-4BA4-AE5B-76104861E7DC",
			segments.ID{Type: "ifa", Value: "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
		},
		{"eid", "eid:liveramp.com:XY1", segments.ID{Type: "eid:liveramp.com", Value: "XY1"}},
		{"colon in value", "uid:a:b", segments.ID{Type: "uid", Value: "a:b"}},
		{"eid colon in value", "eid:id5:a:b", segments.ID{Type: "eid:id5", Value: "a:b"}},
		{"ifa partly zero", "ifa:0000-0001", segments.ID{Type: "ifa", Value: "0000-0001"}},
		{
			"longest value", "uid:" + strings.Repeat("v", segments.MaxIDValueLen),
			segments.ID{Type: "uid", Value: strings.Repeat("v", segments.MaxIDValueLen)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segments.ParseID(tt.in)
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseIDErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", "want type:value"},
		{"no colon", "abc", "want type:value"},
		{"unknown type", "email:a@b", "want uid, buid, ifa or eid:<source>"},
		{"type in capitals", "UID:abc", "want uid, buid, ifa"},
		{"empty value", "uid:", "empty id value"},
		{"eid without source", "eid::x", "want eid:<source>:value"},
		{"eid without value part", "eid:src", "want eid:<source>:value"},
		{"eid empty value", "eid:src:", "empty id value"},
		{
			"eid source too long", "eid:" + strings.Repeat("s", 129) + ":x",
			"bad eid source",
		},
		{"value too long", "uid:" + strings.Repeat("v", 257), "longer than 256 bytes"},
		{"zero ifa", "ifa:00000000-0000-0000-0000-000000000000", "all-zero ifa"},
		{"zero ifa without dashes", "ifa:0000", "all-zero ifa"},
		{"empty ifa", "ifa:", "empty id value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := segments.ParseID(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseID(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseIDTruncatesLongInputInErrors(t *testing.T) {
	_, err := segments.ParseID(strings.Repeat("x", 1000))
	if err == nil || len(err.Error()) > 100 {
		t.Errorf("error for a long input = %q, want a short one", err)
	}
}

func TestZeroIFA(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", true},
		{"zero uuid", "00000000-0000-0000-0000-000000000000", true},
		{"zeros", "0000", true},
		{"dashes", "--", true},
		{"real", "6D92078A-8246-4BA4-AE5B-76104861E7DC", false},
		{"one digit", "00000000-0000-0000-0000-000000000001", false},
		{"letter o", "o000", false},
		{"space", "0000 ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := segments.ZeroIFA([]byte(tt.in)); got != tt.want {
				t.Errorf("ZeroIFA(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	h := segments.NewHasher([]byte("secret"))
	hash := func(typ, value string) uint64 {
		return h.Hash(segments.ID{Type: typ, Value: value})
	}

	if hash("uid", "abc") != segments.NewHasher([]byte("secret")).Hash(
		segments.ID{Type: "uid", Value: "abc"}) {
		t.Error("the same secret and ID gave two hashes")
	}
	if hash("uid", "abc") == segments.NewHasher([]byte("other")).Hash(
		segments.ID{Type: "uid", Value: "abc"}) {
		t.Error("two secrets gave the same hash")
	}

	const ifa = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	if hash("ifa", ifa) != hash("ifa", strings.ToLower(ifa)) {
		t.Error("ifa hash depends on case")
	}
	if hash("uid", "ABC") == hash("uid", "abc") {
		t.Error("uid hash ignores case")
	}

	distinct := map[uint64]string{}
	for _, id := range []segments.ID{
		{Type: "uid", Value: "abc"},
		{Type: "buid", Value: "abc"},
		{Type: "ifa", Value: "abc"},
		{Type: "eid:a.com", Value: "abc"},
		{Type: "eid:b.com", Value: "abc"},
		{Type: "eid:a.co", Value: "mabc"},
		{Type: "uid", Value: "ab"},
		{Type: "uid", Value: ""},
	} {
		s := h.Hash(id)
		if s == 0 {
			t.Errorf("Hash(%+v) = 0, which is reserved", id)
		}
		if other, dup := distinct[s]; dup {
			t.Errorf("Hash(%+v) equals the hash of %s", id, other)
		}
		distinct[s] = id.Type + ":" + id.Value
	}
}
