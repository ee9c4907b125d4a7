package bidder

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testProv is the provider id the scanner recognises as segd's own in these tests.
const testProv = "segd"

// testFrag stands in for the user.data objects that the catalog renders.
const testFrag = `{"id":"segd","segment":[{"id":"s1"}]}`

// scanBody runs a fresh scanner over body.
func scanBody(body string) (*scan, error) {
	s := new(scan)
	s.reset([]byte(body), []byte(testProv))
	return s, s.run()
}

// foundIDs renders the IDs a scan found as type:value, with eid:<source>:value for
// extended IDs.
func foundIDs(s *scan) []string {
	var out []string
	for _, id := range s.ids {
		typ := string(typeFor(id.kind))
		if id.kind == kindEID {
			typ += string(s.bytes(id.src, id.srcEsc))
		}
		out = append(out, typ+":"+string(s.bytes(id.val, id.valEsc)))
	}
	return out
}

// scanCases are valid requests and what the scanner must find in them.
var scanCases = []struct {
	name      string
	body      string
	ids       []string
	coppa     bool
	ambiguous bool
}{
	{name: "user.id", body: `{"user":{"id":"u1"}}`, ids: []string{"uid:u1"}},
	{name: "user.buyeruid", body: `{"user":{"buyeruid":"b1"}}`, ids: []string{"buid:b1"}},
	{name: "device.ifa", body: `{"device":{"ua":"x","ifa":"ab-12"}}`, ids: []string{"ifa:ab-12"}},
	{
		name: "uppercase IFA kept as sent",
		body: `{"device":{"ifa":"AA000DFE74168477C70D291F574D344790E0BB11"}}`,
		ids:  []string{"ifa:AA000DFE74168477C70D291F574D344790E0BB11"},
	},
	{name: "all-zero IFA", body: `{"device":{"ifa":"00000000-0000-0000-0000-000000000000"}}`},
	{name: "empty IFA", body: `{"device":{"ifa":""}}`},
	{name: "IFA not a string", body: `{"device":{"ifa":12345}}`},
	{name: "empty user.id", body: `{"user":{"id":""}}`},
	{name: "user.id a number", body: `{"user":{"id":42}}`},
	{
		name: "eids with source first",
		body: `{"user":{"eids":[{"source":"a.com","uids":[{"id":"x1"},{"id":"x2","atype":1}]}]}}`,
		ids:  []string{"eid:a.com:x1", "eid:a.com:x2"},
	},
	{
		name: "eids with source last",
		body: `{"user":{"eids":[{"uids":[{"atype":3,"id":"y1"}],"source":"b.org"}]}}`,
		ids:  []string{"eid:b.org:y1"},
	},
	{
		name: "eid without source dropped",
		body: `{"user":{"eids":[{"uids":[{"id":"z"}]},{"source":"","uids":[{"id":"z"}]}]}}`,
	},
	{
		name: "eid source longer than an ID type allows dropped",
		body: `{"user":{"eids":[{"source":"` + strings.Repeat("s", 129) +
			`","uids":[{"id":"z"}]}]}}`,
	},
	{
		name: "2.5 user.ext.eids",
		body: `{"user":{"ext":{"consent":"x","eids":[{"source":"c.net","uids":[{"id":"e"}]}]}}}`,
		ids:  []string{"eid:c.net:e"},
	},
	{
		name: "every kind of ID",
		body: `{"device":{"ifa":"i"},"user":{"id":"u","buyeruid":"b",` +
			`"eids":[{"source":"s","uids":[{"id":"e"}]}]}}`,
		ids: []string{"ifa:i", "uid:u", "buid:b", "eid:s:e"},
	},
	{
		name: "escaped values",
		body: `{"user":{"id":"u\u00311","eids":[{"source":"a\/b","uids":[{"id":"q\"r"}]}]}}`,
		ids:  []string{"uid:u11", `eid:a/b:q"r`},
	},
	{
		name: "escaped keys",
		body: `{"\u0075ser":{"\u0069d":"u1"},"d\u0065vice":{"ifa":"i1"}}`,
		ids:  []string{"uid:u1", "ifa:i1"},
	},
	{
		name: "IDs only where OpenRTB puts them",
		body: `{"id":"req","imp":[{"id":"1"}],"site":{"id":"s"},"ext":{"user":{"id":"no"}}}`,
	},
	{name: "ID of 256 bytes", body: `{"user":{"id":"` + strings.Repeat("a", 256) + `"}}`,
		ids: []string{"uid:" + strings.Repeat("a", 256)}},
	{name: "ID of 257 bytes ignored", body: `{"user":{"id":"` + strings.Repeat("a", 257) + `"}}`},
	{name: "at most 32 IDs", body: manyEIDs(40), ids: manyEIDStrings(32)},
	{name: "coppa 1", body: `{"regs":{"coppa":1},"user":{"id":"u"}}`, ids: []string{"uid:u"},
		coppa: true},
	{name: "coppa 0", body: `{"regs":{"coppa":0},"user":{"id":"u"}}`, ids: []string{"uid:u"}},
	{name: "coppa null", body: `{"regs":{"coppa":null}}`},
	{name: "coppa string fails closed", body: `{"regs":{"coppa":"1"}}`, coppa: true},
	{name: "coppa string 0 fails closed", body: `{"regs":{"coppa":"0"}}`, coppa: true},
	{name: "coppa under regs.ext ignored", body: `{"regs":{"ext":{"coppa":1}}}`},
	{name: "regs not an object", body: `{"regs":[1]}`},
	{name: "empty object", body: `{}`},
	{name: "whitespace around", body: " \r\n\t{ } \n"},
	{name: "empty user", body: `{"user":{}}`},
	{name: "user null", body: `{"user":null}`},
	{name: "user.data null", body: `{"user":{"data":null,"id":"u"}}`, ids: []string{"uid:u"}},
	{name: "user an array", body: `{"user":[]}`, ambiguous: true},
	{name: "user a string", body: `{"user":"u1"}`, ambiguous: true},
	{name: "user.data an object", body: `{"user":{"data":{}}}`, ambiguous: true},
	{name: "duplicate user", body: `{"user":{"id":"a"},"user":{"id":"b"}}`,
		ids: []string{"uid:a", "uid:b"}, ambiguous: true},
	{name: "duplicate user.id", body: `{"user":{"id":"a","id":"b"}}`,
		ids: []string{"uid:a", "uid:b"}, ambiguous: true},
	{name: "duplicate escaped key", body: `{"user":{"id":"a","\u0069d":"b"}}`,
		ids: []string{"uid:a", "uid:b"}, ambiguous: true},
	{name: "duplicate ifa", body: `{"device":{"ifa":"a","ifa":"b"}}`,
		ids: []string{"ifa:a", "ifa:b"}, ambiguous: true},
	{name: "duplicate coppa", body: `{"regs":{"coppa":1,"coppa":0}}`, ambiguous: true},
	{name: "duplicate tmax", body: `{"tmax":1,"tmax":2}`, ambiguous: true},
	{name: "duplicate user.data", body: `{"user":{"data":[],"data":[]}}`, ambiguous: true},
	{name: "duplicate id in a user.data entry",
		body: `{"user":{"data":[{"id":"segd","id":"x"}]}}`, ambiguous: true},
	{name: "duplicate id, not a string, in a user.data entry",
		body: `{"user":{"data":[{"id":"segd","id":1}]}}`, ambiguous: true},
	{name: "id in separate user.data entries", body: `{"user":{"data":[{"id":"a"},{"id":"b"}]}}`},
	{name: "duplicate keys segd does not read", body: `{"id":"a","id":"b","imp":[],"imp":[]}`},
	{name: "deep but allowed", body: nested(63)},
	{name: "numbers", body: `{"a":[0,-0,1.5,-2e10,3E+2,4e-2,123456789012345678901234567890]}`},
	{name: "literals and escapes",
		body: `{"a":[true,false,null,"\b\f\n\r\t\\\/\"\u00e9\ud83d\ude00"]}`},
	{name: "unicode text", body: `{"site":{"name":"Zürich – 東京 😀"}}`},
	{name: "lone surrogate escape", body: `{"a":"\ud800"}`},
}

// manyEIDs returns a request with n extended IDs of one source.
func manyEIDs(n int) string {
	var b strings.Builder
	b.WriteString(`{"user":{"eids":[{"source":"s","uids":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"e` + strconv.Itoa(i) + `"}`)
	}
	b.WriteString(`]}]}}`)
	return b.String()
}

func manyEIDStrings(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "eid:s:e"+strconv.Itoa(i))
	}
	return out
}

// nested returns a request whose "a" holds arrays nested n deep, so the whole body nests
// n+1 levels.
func nested(n int) string {
	return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.body)) {
				t.Fatalf("test body is not valid JSON: %s", tc.body)
			}
			s, err := scanBody(tc.body)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if got := foundIDs(s); !slices.Equal(got, tc.ids) {
				t.Errorf("ids = %q, want %q", got, tc.ids)
			}
			if s.coppa != tc.coppa {
				t.Errorf("coppa = %v, want %v", s.coppa, tc.coppa)
			}
			if s.ambiguous != tc.ambiguous {
				t.Errorf("ambiguous = %v, want %v", s.ambiguous, tc.ambiguous)
			}
		})
	}
}

func TestScanReuse(t *testing.T) {
	s := new(scan)
	for _, body := range []string{
		`{"user":{"id":"\u0061","data":[{"id":"segd"}]},"tmax":9,"regs":{"coppa":1}}`,
		`{"user":{"buyeruid":"b"}}`,
	} {
		s.reset([]byte(body), []byte(testProv))
		if err := s.run(); err != nil {
			t.Fatalf("scan %s: %v", body, err)
		}
	}
	if got := foundIDs(s); !slices.Equal(got, []string{"buid:b"}) {
		t.Errorf("ids after reuse = %q", got)
	}
	if s.coppa || s.tmax.ok() || s.data.ok() || len(s.items) != 0 {
		t.Errorf("state of the previous request survived reset: %+v", s)
	}
}

var invalidCases = []struct {
	name string
	body string
	err  error
}{
	{"empty body", "", errNotObject},
	{"only whitespace", " \n", errNotObject},
	{"array", `[{"user":{}}]`, errNotObject},
	{"string", `"{}"`, errNotObject},
	{"null", `null`, errNotObject},
	{"number", `1`, errNotObject},
	{"byte order mark", "\xef\xbb\xbf{}", errNotObject},
	{"truncated object", `{"user":{"id":"u1"}`, errSyntax},
	{"truncated string", `{"user":{"id":"u1`, errSyntax},
	{"truncated after key", `{"id"`, errSyntax},
	{"truncated literal", `{"a":tru`, errSyntax},
	{"truncated escape", `{"a":"\u00`, errSyntax},
	{"only an opening brace", `{`, errSyntax},
	{"trailing garbage", `{"a":1} x`, errTrailing},
	{"two objects", `{}{}`, errTrailing},
	{"trailing comma in object", `{"a":1,}`, errSyntax},
	{"trailing comma in array", `{"a":[1,]}`, errSyntax},
	{"missing colon", `{"a" 1}`, errSyntax},
	{"missing comma", `{"a":1 "b":2}`, errSyntax},
	{"unquoted key", `{a:1}`, errSyntax},
	{"single quotes", `{'a':1}`, errSyntax},
	{"leading zero", `{"a":01}`, errSyntax},
	{"plus sign", `{"a":+1}`, errSyntax},
	{"bare minus", `{"a":-}`, errSyntax},
	{"leading dot", `{"a":.5}`, errSyntax},
	{"trailing dot", `{"a":1.}`, errSyntax},
	{"empty exponent", `{"a":1e}`, errSyntax},
	{"signed empty exponent", `{"a":1e+}`, errSyntax},
	{"hex number", `{"a":0x10}`, errSyntax},
	{"NaN", `{"a":NaN}`, errSyntax},
	{"tmax not a number", `{"tmax":1_000}`, errSyntax},
	{"newline in string", "{\"a\":\"x\ny\"}", errSyntax},
	{"tab in string", "{\"a\":\"x\ty\"}", errSyntax},
	{"NUL in key", "{\"a\x00\":1}", errSyntax},
	{"unknown escape", `{"a":"\x41"}`, errSyntax},
	{"short unicode escape", `{"a":"\u12"}`, errSyntax},
	{"bad hex in escape", `{"a":"\u12G4"}`, errSyntax},
	{"invalid UTF-8 byte", "{\"a\":\"\xff\"}", errUTF8},
	{"invalid UTF-8 in key", "{\"\xc3\x28\":1}", errUTF8},
	{"invalid UTF-8 in user.id", "{\"user\":{\"id\":\"\xe2\x82\"}}", errUTF8},
	{"UTF-8 encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", errUTF8},
	{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", errUTF8},
	{"depth 65", nested(64), errDepth},
	{"depth 65 in user", `{"user":{"ext":` + strings.Repeat(`{"a":`, 63) + `1` +
		strings.Repeat(`}`, 63) + `}}`, errDepth},
	{"very deep", strings.Repeat(`{"a":`, 100000), errDepth},
}

func TestScanInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scanBody(tc.body)
			if !errors.Is(err, tc.err) {
				t.Errorf("scan error = %v, want %v", err, tc.err)
			}
		})
	}
}

var spliceCases = []struct {
	name string
	body string
	tmax int // -1 leaves tmax alone
	want string
}{
	{"no user", `{"id":"r"}`, -1, `{"id":"r","user":{"data":[F]}}`},
	{"no user, pretty", "{\n  \"id\": \"r\"\n}\n", -1,
		"{\n  \"id\": \"r\"\n,\"user\":{\"data\":[F]}}\n"},
	{"empty object", `{}`, -1, `{"user":{"data":[F]}}`},
	{"empty object with space", `{ }`, -1, `{ "user":{"data":[F]}}`},
	{"user null", `{"user":null,"id":"r"}`, -1, `{"user":{"data":[F]},"id":"r"}`},
	{"empty user", `{"user":{}}`, -1, `{"user":{"data":[F]}}`},
	{"empty user with space", `{"user":{ }}`, -1, `{"user":{"data":[F] }}`},
	{"user without data", `{"user":{"id":"u"}}`, -1, `{"user":{"data":[F],"id":"u"}}`},
	{"user.data null", `{"user":{"id":"u","data":null}}`, -1, `{"user":{"id":"u","data":[F]}}`},
	{"empty user.data", `{"user":{"data":[ ]}}`, -1, `{"user":{"data":[F]}}`},
	{
		"others' entries kept byte for byte",
		`{"user":{"data":[ {"id":"x", "segment":[{"id":"1"}]} , {"name":"n"} ,7 ]}}`, -1,
		`{"user":{"data":[{"id":"x", "segment":[{"id":"1"}]},{"name":"n"},7,F]}}`,
	},
	{
		"segd's entry replaced",
		`{"user":{"data":[{"id":"a"},{"id":"segd","segment":[{"id":"old"}]},{"id":"b"}]}}`, -1,
		`{"user":{"data":[{"id":"a"},{"id":"b"},F]}}`,
	},
	{
		"segd's entries with escapes replaced",
		`{"user":{"data":[{"name":"n","id":"s\u0065gd"},{"\u0069d":"segd"}]}}`, -1,
		`{"user":{"data":[F]}}`,
	},
	{
		"id of segd nested deeper is not segd's entry",
		`{"user":{"data":[{"ext":{"id":"segd"}},{"id":"segdx"}]}}`, -1,
		`{"user":{"data":[{"ext":{"id":"segd"}},{"id":"segdx"},F]}}`,
	},
	{"escaped user key", `{"\u0075ser":{"id":"u"}}`, -1, `{"\u0075ser":{"data":[F],"id":"u"}}`},
	{"tmax before user", `{"tmax":500,"user":{}}`, 321, `{"tmax":321,"user":{"data":[F]}}`},
	{"tmax after user", `{"user":{},"tmax": 500 }`, 7, `{"user":{"data":[F]},"tmax": 7 }`},
	{"tmax with user inserted", `{"tmax":500}`, 12, `{"tmax":12,"user":{"data":[F]}}`},
	{"tmax left alone", `{"tmax":500}`, -1, `{"tmax":500,"user":{"data":[F]}}`},
	{"tmax a string", `{"tmax":"500"}`, 9, `{"tmax":"500","user":{"data":[F]}}`},
	{"tmax a fraction", `{"tmax":50.5}`, 9, `{"tmax":50.5,"user":{"data":[F]}}`},
	{"tmax too long", `{"tmax":1234567890}`, 9, `{"tmax":1234567890,"user":{"data":[F]}}`},
	{"nested tmax left alone", `{"imp":[{"tmax":5}]}`, 9,
		`{"imp":[{"tmax":5}],"user":{"data":[F]}}`},
}

func TestSplice(t *testing.T) {
	for _, tc := range spliceCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scanBody(tc.body)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			got := string(s.appendEnriched([]byte("prefix:"), []byte(testFrag), tc.tmax))
			want := "prefix:" + strings.ReplaceAll(tc.want, "F", testFrag)
			if got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if !json.Valid([]byte(got[len("prefix:"):])) {
				t.Fatal("output is not valid JSON")
			}
			again, err := scanBody(got[len("prefix:"):])
			if err != nil {
				t.Fatalf("scan output: %v", err)
			}
			if twice := string(again.appendEnriched(nil, []byte(testFrag), tc.tmax)); twice !=
				got[len("prefix:"):] {
				t.Errorf("enriching twice changed the output:\n%s", twice)
			}
		})
	}
}

func TestAppendTmax(t *testing.T) {
	tests := []struct {
		name, body string
		tmax       int
		want       string
	}{
		{"replaced", `{"id":"r", "tmax" : 1000 ,"imp":[]}`, 985,
			`{"id":"r", "tmax" : 985 ,"imp":[]}`},
		{"absent", `{"id":"r"}`, 5, `{"id":"r"}`},
		{"not an integer", `{"tmax":1e3}`, 5, `{"tmax":1e3}`},
		{"negative", `{"tmax":-2}`, 5, `{"tmax":-2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scanBody(tc.body)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if got := string(s.appendTmax(nil, tc.tmax)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
