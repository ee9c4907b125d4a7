package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const testSecret = "e2e-test-secret-0123456789"

// startTestApp runs segd on a data folder with both listeners on loopback ports chosen by
// the kernel, and more flags if given, and stops it when the test ends unless the test
// stops it first.
func startTestApp(t testing.TB, dir string, flags ...string) *app {
	t.Helper()
	cfg, err := loadConfig(append([]string{"--data-dir", dir, "--bid-addr", "127.0.0.1:0",
		"--admin-addr", "127.0.0.1:0", "--id-secret", testSecret}, flags...), noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := startApp(context.Background(), cfg, zap.NewNop(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func noEnv(string) string { return "" }

type testClient struct {
	t     testing.TB
	bid   string
	admin string
}

func newClient(t testing.TB, a *app) testClient {
	return testClient{t: t, bid: "http://" + a.lis.bidAddr, admin: "http://" + a.lis.adminAddr}
}

// do sends a request and returns the status and body.
func (c testClient) do(method, url string, body []byte) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

func (c testClient) must(method, url string, body []byte, want int) []byte {
	c.t.Helper()
	status, out := c.do(method, url, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, url, status, want, out)
	}
	return out
}

// putSources defines first-party sources with the given IDs, for 30 days.
func (c testClient) putSources(ids ...string) {
	c.t.Helper()
	for _, id := range ids {
		c.must("PUT", c.admin+"/v1/sources/"+id,
			[]byte(`{"name":"`+id+`","party":"first","ttl":"720h"}`), 200)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onboard defines the test sources and segments and imports the onboarding files.
func onboard(t *testing.T, c testClient) {
	c.must("PUT", c.admin+"/v1/sources/crm",
		[]byte(`{"name":"CRM","party":"first","ttl":"720h"}`), 200)
	c.must("PUT", c.admin+"/v1/sources/partner",
		[]byte(`{"name":"Partner","party":"third","ttl":"30d"}`), 200)
	segs := map[string]string{
		"loyal":            `{"name":"Loyal","rule":"crm:gold","export_id":"L1"}`,
		"travellers":       `{"name":"Travel","rule":"partner:travel","export_id":"647","segtax":4}`,
		"autos":            `{"name":"Autos","rule":"partner:auto and not crm:gold","export_id":"243","segtax":4}`,
		"loyal-travellers": `{"name":"Both","rule":"segment:loyal and segment:travellers","export_id":"LT"}`,
	}
	for _, id := range []string{"loyal", "travellers", "autos", "loyal-travellers"} {
		c.must("PUT", c.admin+"/v1/segments/"+id, []byte(segs[id]), 200)
	}

	checkImport(t, c, "crm", "tsv", "../../testdata/onboard/crm.tsv", 4, []int{6, 8})
	checkImport(t, c, "partner", "ndjson", "../../testdata/onboard/partner.ndjson", 2,
		[]int{3, 4, 5, 6})
}

func checkImport(t *testing.T, c testClient, source, format, file string, accepted int,
	rejectedLines []int) {
	t.Helper()
	out := c.must("POST", c.admin+"/v1/import?source="+source+"&format="+format,
		readFile(t, file), 200)
	var res struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Errors   []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range res.Errors {
		lines = append(lines, e.Line)
		if e.Error == "" {
			t.Errorf("%s line %d: empty error", file, e.Line)
		}
	}
	if res.Accepted != accepted || res.Rejected != len(rejectedLines) ||
		!equalInts(lines, rejectedLines) {
		t.Fatalf("%s: accepted %d rejected %d at %v, want %d, %d at %v\n%s", file,
			res.Accepted, res.Rejected, lines, accepted, len(rejectedLines), rejectedLines, out)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wantSegments are the export IDs each test request must carry after enrichment; nil means
// the request must come back byte for byte.
var wantSegments = map[string][]string{
	"site":          {"L1", "LT", "647"},
	"app-ifa":       {"243"},
	"eids-26":       {"L1"},
	"ext-eids-25":   {"L1"},
	"existing-data": {"L1", "LT", "647"},
	"no-user":       {"243"},
	"coppa":         nil,
	"unknown-user":  nil,
}

// enrichAll enriches every test request and checks it against its golden file.
func enrichAll(t *testing.T, c testClient) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for name, want := range wantSegments {
		req := readFile(t, filepath.Join("../../testdata/requests", name+".json"))
		out := c.must("POST", c.bid+"/openrtb2/enrich", req, 200)
		got[name] = out
		if want == nil {
			if !bytes.Equal(out, req) {
				t.Errorf("%s: changed, want unchanged:\n%s", name, out)
			}
			continue
		}
		if ids := segdExportIDs(t, out); strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("%s: segments %v, want %v", name, ids, want)
		}
		checkGolden(t, name, out)
	}
	return got
}

// segdExportIDs returns the segment IDs of segd's user.data objects, in order.
func segdExportIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var r struct {
		User struct {
			Data []struct {
				ID      string `json:"id"`
				Segment []struct {
					ID string `json:"id"`
				} `json:"segment"`
			} `json:"data"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("enriched body is not JSON: %v\n%s", err, body)
	}
	var ids []string
	for _, d := range r.User.Data {
		if d.ID != "segd" {
			continue
		}
		for _, s := range d.Segment {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("../../testdata/golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := readFile(t, path); !bytes.Equal(got, want) {
		t.Errorf("%s: differs from %s:\ngot  %s\nwant %s", name, path, got, want)
	}
}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a := startTestApp(t, dir)
	c := newClient(t, a)
	onboard(t, c)
	before := enrichAll(t, c)

	again := c.must("POST", c.bid+"/openrtb2/enrich", before["existing-data"], 200)
	if !bytes.Equal(again, before["existing-data"]) {
		t.Errorf("enriching twice changed the request:\n%s\n%s", before["existing-data"], again)
	}
	segs := c.must("POST", c.bid+"/openrtb2/segments",
		readFile(t, "../../testdata/requests/app-ifa.json"), 200)
	want := `[{"id":"segd","name":"segd","segment":[{"id":"243"}],"ext":{"segtax":4}}]`
	if string(segs) != want {
		t.Errorf("segments endpoint: %s, want %s", segs, want)
	}
	checkAdminErrors(t, c)
	checkMetrics(t, c)
	sizes := segmentSizes(t, c)
	a.close()

	a = startTestApp(t, dir)
	defer a.close()
	c = newClient(t, a)
	after := enrichAll(t, c)
	for name := range before {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s: differs after restart:\n%s\n%s", name, before[name], after[name])
		}
	}
	if got := segmentSizes(t, c); !equalMaps(got, sizes) {
		t.Errorf("segment sizes after restart %v, want %v", got, sizes)
	}
}

func segmentSizes(t *testing.T, c testClient) map[string]uint64 {
	t.Helper()
	var r struct {
		Segments []struct {
			ID   string `json:"id"`
			Size uint64 `json:"size"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(c.must("GET", c.admin+"/v1/segments", nil, 200), &r); err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, s := range r.Segments {
		m[s.ID] = s.Size
	}
	return m
}

func equalMaps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkAdminErrors asserts that bad definitions get clear 4xx answers.
func checkAdminErrors(t *testing.T, c testClient) {
	t.Helper()
	status, out := c.do("PUT", c.admin+"/v1/segments/bad",
		[]byte(`{"name":"Bad","rule":"crm:gold and (partner:travel"}`))
	var e struct {
		Error  string `json:"error"`
		Column int    `json:"column"`
	}
	if err := json.Unmarshal(out, &e); err != nil || status != 400 || e.Column != 29 {
		t.Errorf("bad rule: status %d, column %d, want 400 at 29: %s", status, e.Column, out)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/v1/segments/cyc", `{"name":"C","rule":"segment:cyc"}`, 400},
		{"PUT", "/v1/segments/x", `{"name":"X","rule":"segment:nope"}`, 400},
		{"PUT", "/v1/sources/x", `{"name":"X","party":"fourth","ttl":"1h"}`, 400},
		{"PUT", "/v1/sources/x", `{"name":"X","party":"first","ttl":"1h","extra":1}`, 400},
		{"DELETE", "/v1/segments/loyal", "", 409},
		{"GET", "/v1/segments/nope", "", 404},
		{"POST", "/v1/import?source=nope&format=tsv", "uid:a\tb\n", 404},
		{"POST", "/v1/import?source=crm&format=csv", "", 400},
	} {
		if status, out := c.do(tc.method, c.admin+tc.path, []byte(tc.body)); status != tc.want {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, status, tc.want, out)
		}
	}
}

// checkMetrics asserts that the requests of the test were counted.
func checkMetrics(t *testing.T, c testClient) {
	t.Helper()
	out := string(c.must("GET", c.admin+"/metrics", nil, 200))
	for _, want := range []string{
		`segd_requests_total{endpoint="enrich",outcome="enriched"} 7`,
		`segd_requests_total{endpoint="enrich",outcome="privacy"} 1`,
		`segd_requests_total{endpoint="enrich",outcome="no_match"} 1`,
		`segd_index_segments 4`,
		`segd_ready 1`,
		`segd_import_lines_total{result="accepted"} 6`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, gauge := range []string{"segd_go_heap_live_bytes", "segd_go_memory_bytes"} {
		if !regexp.MustCompile(`(?m)^` + gauge + ` [0-9]+$`).MatchString(out) {
			t.Errorf("metrics lack %s", gauge)
		}
	}
	c.must("GET", c.admin+"/readyz", nil, 200)
	c.must("GET", c.bid+"/healthz", nil, 200)
}
