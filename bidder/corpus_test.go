package bidder_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
)

// samplesDir holds bid requests from public repositories; see its SOURCES.md.
const samplesDir = "../../shared/openrtb-samples"

type sample struct {
	name    string
	body    []byte
	invalid bool
}

// loadSamples reads the sample requests, taking a prebid-server fixture's request from its
// "mockBidRequest" key. It skips the test when the folder is missing.
func loadSamples(t *testing.T) []sample {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	if err == nil && len(files) == 0 {
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no samples in %s", samplesDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if strings.HasPrefix(name, "pbsgo-fixture_") {
			var fx struct {
				MockBidRequest json.RawMessage `json:"mockBidRequest"`
			}
			if err := json.Unmarshal(data, &fx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			data = fx.MockBidRequest
		}
		invalid := strings.Contains(name, "invalid")
		out = append(out, sample{name: name, body: data, invalid: invalid})
	}
	return out
}

// sampleID returns one ID of a request that segd reads, preferring the IFA, then the
// buyer UID, then the user ID, so that the corpus exercises each.
func sampleID(t *testing.T, body []byte) (segments.ID, bool) {
	var req openrtb2.BidRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("sample does not decode as a bid request: %v", err)
	}
	var ids []segments.ID
	if req.Device != nil {
		// Stored lower case: the request's upper-case IFA must match regardless.
		ifa := strings.ToLower(req.Device.IFA)
		ids = append(ids, segments.ID{Type: segments.TypeIFA, Value: ifa})
	}
	if req.User != nil {
		ids = append(ids, segments.ID{Type: segments.TypeBUID, Value: req.User.BuyerUID},
			segments.ID{Type: segments.TypeUID, Value: req.User.ID})
	}
	for _, id := range ids {
		if id.Validate() == nil {
			return id, true
		}
	}
	return segments.ID{}, false
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	return m
}

// takeUserData removes user.data from a decoded request and returns it.
func takeUserData(req map[string]any) []any {
	user, _ := req["user"].(map[string]any)
	data, _ := user["data"].([]any)
	delete(user, "data")
	return data
}

func TestSampleCorpus(t *testing.T) {
	samples := loadSamples(t)
	ix := newIndex(t)
	hasID := make(map[string]bool)
	for _, s := range samples {
		if s.invalid {
			continue
		}
		if id, ok := sampleID(t, s.body); ok {
			addProfile(ix, id) // one profile per ID, so that each sample matches by its own
			hasID[s.name] = true
		}
	}
	ix.MarkReady()
	base := startServer(t, bidder.Config{}, ix)

	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			status, _, out := call(t, http.MethodPost, base+"/openrtb2/enrich", s.body)
			if s.invalid {
				rejected := status >= 400 && status < 500
				unchanged := status == http.StatusOK && bytes.Equal(out, s.body)
				if !rejected && !unchanged {
					t.Errorf("status %d, body %s: want 4xx or the request unchanged", status, out)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, out)
			}
			checkEnriched(t, s.body, out, hasID[s.name])
		})
	}
}

// checkEnriched checks that out is the sample in, with segd's user.data added when
// enriched, and nothing else changed, and that it still decodes as an OpenRTB bid request.
func checkEnriched(t *testing.T, in, out []byte, enriched bool) {
	if !json.Valid(out) {
		t.Fatalf("response is not valid JSON: %s", out)
	}
	var br openrtb2.BidRequest
	if err := json.Unmarshal(out, &br); err != nil {
		t.Fatalf("response does not decode as openrtb2.BidRequest: %v", err)
	}
	if !enriched {
		if !bytes.Equal(out, in) {
			t.Errorf("a request without IDs came back changed: %s", out)
		}
		return
	}
	req, resp := decodeMap(t, in), decodeMap(t, out)
	_, hadUser := req["user"]
	before, after := takeUserData(req), takeUserData(resp)
	if !hadUser {
		if user, _ := resp["user"].(map[string]any); len(user) != 0 {
			t.Errorf("added user holds more than data: %v", user)
		}
		delete(resp, "user")
	}
	if !reflect.DeepEqual(req, resp) {
		t.Errorf("enrichment changed more than user.data:\nin  %s\nout %s", in, out)
	}
	if len(after) != len(before)+2 ||
		len(before) > 0 && !reflect.DeepEqual(after[:len(before)], before) {
		t.Errorf("user.data %v does not keep %v and add segd's two objects", after, before)
	}

	var got []string
	for _, d := range br.User.Data {
		if d.ID == "segd" {
			for _, sg := range d.Segment {
				got = append(got, sg.ID)
			}
		}
	}
	if strings.Join(got, ",") != "V1,L1" {
		t.Errorf("segd's segments = %v, want V1, L1", got)
	}
}
