package segments_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

func uidID(v string) segments.ID { return segments.ID{Type: "uid", Value: v} }

func TestParseTSVLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want segments.Line
	}{
		{"one id one code", "uid:u1\tgold", segments.Line{IDs: []segments.ID{uidID("u1")},
			Add: []string{"gold"}}},
		{
			"several ids", "uid:u1|ifa:AB-1|eid:id5:x\tgold",
			segments.Line{
				IDs: []segments.ID{uidID("u1"), {Type: "ifa", Value: "AB-1"},
					{Type: "eid:id5", Value: "x"}},
				Add: []string{"gold"},
			},
		},
		{
			"add and remove", "uid:u1\tgold,-silver,bronze",
			segments.Line{IDs: []segments.ID{uidID("u1")}, Add: []string{"gold", "bronze"},
				Remove: []string{"silver"}},
		},
		{
			"remove only", "uid:u1\t-gold",
			segments.Line{IDs: []segments.ID{uidID("u1")}, Remove: []string{"gold"}},
		},
		{
			"spaces and empty codes", "uid:u1\t gold , ,silver,",
			segments.Line{IDs: []segments.ID{uidID("u1")}, Add: []string{"gold", "silver"}},
		},
		{"crlf", "uid:u1\tgold\r", segments.Line{IDs: []segments.ID{uidID("u1")},
			Add: []string{"gold"}}},
		{
			"code with trait bytes", "uid:u1\tgeo=london,page=/p",
			segments.Line{IDs: []segments.ID{uidID("u1")}, Add: []string{"geo=london", "page=/p"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segments.ParseTSVLine([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseTSVLine(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseTSVLine(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTSVLineErrors(t *testing.T) {
	manyIDs := strings.TrimSuffix(strings.Repeat("uid:x|", segments.MaxLineIDs+1), "|")
	manyCodes := strings.TrimSuffix(strings.Repeat("c,", segments.MaxLineCodes+1), ",")
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", "want ID<TAB>codes"},
		{"no tab", "uid:u1 gold", "want ID<TAB>codes"},
		{"three fields", "uid:u1\tgold\tx", "more than two tab-separated fields"},
		{"bad id", "mail:x\tgold", "want uid, buid, ifa"},
		{"empty id between bars", "uid:u1||uid:u2\tgold", "want type:value"},
		{"trailing bar", "uid:u1|\tgold", "want type:value"},
		{"zero ifa", "ifa:0000-0000\tgold", "all-zero ifa"},
		{"no codes", "uid:u1\t", "no codes"},
		{"only commas", "uid:u1\t, ,", "no codes"},
		{"bare minus", "uid:u1\t-", "code \"\""},
		{"code with space", "uid:u1\tgold bar", "code \"gold bar\""},
		{"code with quote", "uid:u1\tgo\"ld", "code"},
		{"too many ids", manyIDs + "\tgold", "more than 16 ids"},
		{"too many codes", "uid:u1\t" + manyCodes, "more than 256 codes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := segments.ParseTSVLine([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTSVLine(%q) error = %v, want one containing %q",
					tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseNDJSONLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want segments.Line
	}{
		{
			"design example",
			`{"ids":[{"type":"ifa","value":"AB-1"}],"add":["a"],"remove":["b"],"ttl":"720h"}`,
			segments.Line{IDs: []segments.ID{{Type: "ifa", Value: "AB-1"}}, Add: []string{"a"},
				Remove: []string{"b"}, TTL: 720 * time.Hour},
		},
		{
			"days ttl", `{"ids":[{"type":"uid","value":"u1"}],"add":["a"],"ttl":"30d"}`,
			segments.Line{IDs: []segments.ID{uidID("u1")}, Add: []string{"a"},
				TTL: 30 * 24 * time.Hour},
		},
		{
			"no ttl", `{"ids":[{"type":"uid","value":"u1"}],"remove":["a"]}`,
			segments.Line{IDs: []segments.ID{uidID("u1")}, Remove: []string{"a"}},
		},
		{
			"eid and spaces", ` { "ids" : [ {"type":"eid:id5","value":"x"} ] , "add":["a"] } ` +
				"\r",
			segments.Line{IDs: []segments.ID{{Type: "eid:id5", Value: "x"}},
				Add: []string{"a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segments.ParseNDJSONLine([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseNDJSONLine(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseNDJSONLine(%s)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseNDJSONLineErrors(t *testing.T) {
	const id = `"ids":[{"type":"uid","value":"u1"}]`
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", ``, "bad json"},
		{"not json", `uid:u1	gold`, "bad json"},
		{"array", `[1]`, "bad json"},
		{"truncated", `{` + id + `,"add":["a"]`, "bad json"},
		{"unknown field", `{` + id + `,"add":["a"],"remvoe":["b"]}`, "unknown field"},
		{"two values", `{` + id + `,"add":["a"]} {}`, "more than one value"},
		{"wrong type", `{` + id + `,"add":"a"}`, "bad json"},
		{"no ids", `{"add":["a"]}`, "no ids"},
		{"bad id type", `{"ids":[{"type":"mail","value":"x"}],"add":["a"]}`, "want uid"},
		{"empty id value", `{"ids":[{"type":"uid","value":""}],"add":["a"]}`, "empty id value"},
		{"zero ifa", `{"ids":[{"type":"ifa","value":"0000"}],"add":["a"]}`, "all-zero ifa"},
		{"no codes", `{` + id + `}`, "no codes"},
		{"bad code", `{` + id + `,"add":["a b"]}`, "code \"a b\""},
		{"bad ttl", `{` + id + `,"add":["a"],"ttl":"soon"}`, "ttl \"soon\""},
		{"negative ttl", `{` + id + `,"add":["a"],"ttl":"-1h"}`, "more than 0"},
		{"ttl too long", `{` + id + `,"add":["a"],"ttl":"401d"}`, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := segments.ParseNDJSONLine([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseNDJSONLine(%s) error = %v, want one containing %q",
					tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"720h", 720 * time.Hour},
		{"1s", time.Second},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"30d", 30 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"400d", segments.MaxTTL},
		{"9600h", segments.MaxTTL},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := segments.ParseTTL(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseTTL(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseTTLErrors(t *testing.T) {
	for _, in := range []string{
		"", "0", "0s", "0d", "-1d", "-5m", "d", "1.5d", "30 d", "30days", "401d", "9601h",
		"soon", "1w", "99999999999999999999d",
		// 202163959358895 days of nanoseconds wrap around an int64 to 65.536µs.
		"202163959358895d",
	} {
		t.Run(in, func(t *testing.T) {
			if got, err := segments.ParseTTL(in); err == nil {
				t.Errorf("ParseTTL(%q) = %v, want an error", in, got)
			}
		})
	}
}

func TestImportResultReject(t *testing.T) {
	var r segments.ImportResult
	for i := segments.MaxReportedErrors + 5; i >= 1; i-- {
		r.Reject(i, fmt.Errorf("bad %d", i))
	}
	r.Trim()
	if r.Rejected != segments.MaxReportedErrors+5 || len(r.Errors) != segments.MaxReportedErrors {
		t.Fatalf("rejected %d with %d errors kept", r.Rejected, len(r.Errors))
	}
	last := r.Errors[len(r.Errors)-1]
	if last.Line != segments.MaxReportedErrors || last.Error != "bad 100" {
		t.Errorf("last kept error = %+v", last)
	}
}

func TestSourceValidate(t *testing.T) {
	good := segments.Source{ID: "crm", Name: "CRM", Party: segments.FirstParty,
		TTL: time.Hour}
	if err := good.Validate(); err != nil {
		t.Fatalf("good source: %v", err)
	}
	bad := segments.Source{ID: "segment", Party: "fourth"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad source validated")
	}
	for _, want := range []string{"reserved", "name", "party", "ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestSourceJSON(t *testing.T) {
	src := segments.Source{ID: "crm", Name: "CRM", Party: segments.ThirdParty,
		TTL: 30 * 24 * time.Hour}
	b, err := src.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back segments.Source
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(back, src) {
		t.Errorf("round trip of %s = %+v, want %+v", b, back, src)
	}
	err = back.UnmarshalJSON([]byte(`{"id":"x","ttl":"forever"}`))
	if err == nil {
		t.Errorf("bad ttl decoded without error")
	}
}
