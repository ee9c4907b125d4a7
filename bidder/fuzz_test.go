package bidder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzScan checks the scanner and the splice against encoding/json: the scanner accepts
// exactly the valid JSON objects, up to its limits on depth and UTF-8, and splicing segd's
// user.data into one changes nothing else.
func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.body))
	}
	for _, tc := range invalidCases {
		if len(tc.body) < 1<<10 {
			f.Add([]byte(tc.body))
		}
	}
	for _, tc := range spliceCases {
		f.Add([]byte(tc.body))
	}
	for _, pattern := range []string{"testdata/*.json", "../../shared/openrtb-samples/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			addSeedFile(f, name)
		}
	}

	s := new(scan)
	f.Fuzz(func(t *testing.T, in []byte) {
		s.reset(in, []byte(testProv))
		if err := s.run(); err != nil {
			// The scanner may refuse valid JSON only for what segd chooses not to take.
			excused := err == errNotObject || err == errDepth || !utf8.Valid(in)
			if json.Valid(in) && !excused {
				t.Fatalf("scanner refused valid JSON %q: %v", in, err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("scanner accepted invalid JSON %q", in)
		}
		if s.ambiguous {
			return // never spliced: duplicate keys leave the meaning open
		}
		out := s.appendEnriched(nil, []byte(testFrag), 7)
		checkSplice(t, s, in, out)
	})
}

// addSeedFile adds a file, and the request inside a prebid-server fixture, to the corpus.
func addSeedFile(f *testing.F, name string) {
	data, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	var fx struct {
		MockBidRequest json.RawMessage `json:"mockBidRequest"`
	}
	if json.Unmarshal(data, &fx) == nil && len(fx.MockBidRequest) > 0 {
		f.Add([]byte(fx.MockBidRequest))
	}
}

// checkSplice checks that out is in with testFrag's object last in user.data, segd's old
// entries gone, others kept in order, and tmax 7 where in had an integer tmax.
func checkSplice(t *testing.T, s *scan, in, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("splice made invalid JSON:\nin  %q\nout %q", in, out)
	}
	want, got := decodeNumbers(t, in), decodeNumbers(t, out)
	if s.tmax.ok() {
		want["tmax"] = json.Number("7")
	}

	user, _ := want["user"].(map[string]any) // nil when absent or null
	var kept []any
	if data, ok := user["data"].([]any); ok {
		for _, item := range data {
			if m, ok := item.(map[string]any); !ok || m["id"] != testProv {
				kept = append(kept, item)
			}
		}
	}
	delete(user, "data")
	if user == nil {
		want["user"] = map[string]any{}
	}

	gotUser, ok := got["user"].(map[string]any)
	if !ok {
		t.Fatalf("spliced user is not an object:\nin  %q\nout %q", in, out)
	}
	data, _ := gotUser["data"].([]any)
	delete(gotUser, "data")
	if wantData := append(kept, decodeNumbers(t, []byte(testFrag))); !reflect.DeepEqual(
		data, wantData) {
		t.Errorf("user.data = %v, want %v\nin  %q\nout %q", data, wantData, in, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splice changed more than user.data:\nin  %q\nout %q", in, out)
	}
}

// decodeNumbers decodes a JSON object, keeping numbers as written so that none overflows.
func decodeNumbers(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}
