package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestOptoutEndToEnd deletes a person through the admin API, then sends their data again
// through every admin ingest path, restarts, and checks that their bid requests come back
// unchanged while everyone else's are still enriched.
func TestOptoutEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a := startTestApp(t, dir)
	c := newClient(t, a)
	onboard(t, c)
	enrichAll(t, c)

	// uid:web-u-100 shares a profile with buid:dsp-b-100 (crm.tsv, line 1).
	del := "/v1/profiles?type=uid&id=web-u-100"
	wantDeleted(t, c, del, 1, 2)
	wantDeleted(t, c, del, 0, 1)
	c.must("GET", c.admin+"/v1/profiles?type=buid&id=dsp-b-100", nil, 404)
	for _, bad := range []string{"?type=email&id=x", "?type=uid", "?type=eid:&id=x"} {
		c.must("DELETE", c.admin+"/v1/profiles"+bad, nil, 400)
	}
	optedOut := map[string]bool{"site": true, "existing-data": true}
	enrichOptedOut(t, c, optedOut)

	checkImport(t, c, "crm", "tsv", "../../testdata/onboard/crm.tsv", 3, []int{1, 6, 8})
	checkImport(t, c, "partner", "ndjson", "../../testdata/onboard/partner.ndjson", 1,
		[]int{1, 3, 4, 5, 6})
	out := c.must("POST", c.admin+"/v1/events", []byte(
		`{"ids":[{"type":"buid","value":"dsp-b-100"}],"source":"crm","traits":{"k":"v"}}`+"\n"+
			`{"ids":[{"type":"uid","value":"web-u-100"}],"source":"crm"}`+"\n"), 200)
	if !strings.Contains(string(out), `"accepted": 0`) ||
		strings.Count(string(out), `"error": "id opted out"`) != 2 {
		t.Errorf("events for opted-out IDs: %s", out)
	}
	enrichOptedOut(t, c, optedOut)
	a.close()

	a = startTestApp(t, dir)
	defer a.close()
	c = newClient(t, a)
	enrichOptedOut(t, c, optedOut)
	c.must("GET", c.admin+"/v1/profiles?type=uid&id=web-u-100", nil, 404)
}

func wantDeleted(t *testing.T, c testClient, path string, profiles, ids int) {
	t.Helper()
	var got struct {
		Profiles int `json:"deleted_profiles"`
		IDs      int `json:"suppressed_ids"`
	}
	out := c.must("DELETE", c.admin+path, nil, 200)
	if err := json.Unmarshal(out, &got); err != nil || got.Profiles != profiles ||
		got.IDs != ids {
		t.Errorf("DELETE %s: %s, want %d profiles and %d ids", path, out, profiles, ids)
	}
}

// enrichOptedOut checks that the requests named in optedOut come back byte for byte, and
// that the others that carried segments still do.
func enrichOptedOut(t *testing.T, c testClient, optedOut map[string]bool) {
	t.Helper()
	for name, want := range wantSegments {
		req := readFile(t, filepath.Join("../../testdata/requests", name+".json"))
		out := c.must("POST", c.bid+"/openrtb2/enrich", req, 200)
		switch {
		case optedOut[name] || want == nil:
			if !bytes.Equal(out, req) {
				t.Errorf("%s: changed, want unchanged:\n%s", name, out)
			}
		case len(segdExportIDs(t, out)) == 0:
			t.Errorf("%s: no segments, want some", name)
		}
	}
}
