package bidder_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
)

const testSecret = "test-secret-0123456789"

// segdData is what segd writes into user.data for the profile of newIndex: the
// proprietary segment first (segtax 0 sorts first), then the IAB one.
const segdData = `{"id":"segd","name":"segd","segment":[{"id":"V1"}]},` +
	`{"id":"segd","name":"segd","segment":[{"id":"L1"}],"ext":{"segtax":4}}`

// newIndex returns an index, not yet ready, with two segments of the trait crm:gold:
// "loyal" (exported as L1 in segtax 4) and "vip" (proprietary V1). When ids are given, it
// holds one profile linked to them with that trait.
func newIndex(tb testing.TB, ids ...segments.ID) *segments.Index {
	tb.Helper()
	ix := segments.New(segments.NewHasher([]byte(testSecret)),
		segments.Provider{ID: "segd", Name: "segd"})
	txn := ix.Begin(time.Now())
	defer txn.Rollback()
	err := txn.PutSource(segments.Source{
		ID: "crm", Name: "CRM", Party: segments.FirstParty, TTL: 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	for _, g := range []segments.Segment{
		{ID: "loyal", Name: "Loyal", Rule: "crm:gold", ExportID: "L1", Segtax: 4},
		{ID: "vip", Name: "VIP", Rule: "crm:gold", ExportID: "V1"},
	} {
		if err := txn.PutSegment(g); err != nil {
			tb.Fatal(err)
		}
	}
	txn.Commit()
	if len(ids) > 0 {
		addProfile(ix, ids...)
	}
	return ix
}

// addProfile links ids to one profile with the trait crm:gold for a day.
func addProfile(ix *segments.Index, ids ...segments.ID) {
	now := time.Now()
	hashes := make([]uint64, len(ids))
	for i, id := range ids {
		hashes[i] = ix.Hasher().Hash(id)
	}
	txn := ix.Begin(now)
	p := txn.Resolve(hashes)
	txn.Add(p, "crm:gold", uint32(now.Add(24*time.Hour).Unix()))
	txn.Commit()
}

// readyIndex is newIndex, marked ready.
func readyIndex(tb testing.TB, ids ...segments.ID) *segments.Index {
	ix := newIndex(tb, ids...)
	ix.MarkReady()
	return ix
}

// testIDs are the IDs of the profile that most tests enrich from.
var testIDs = []segments.ID{
	{Type: segments.TypeUID, Value: "u1"},
	{Type: segments.TypeIFA, Value: "ab-cd-ef"},
	{Type: "eid:id5-sync.com", Value: "E5"},
}

// startServer serves the bid listener on a loopback port until the test ends and returns
// its base URL. It returns once the listener answers.
func startServer(tb testing.TB, cfg bidder.Config, ix *segments.Index) string {
	tb.Helper()
	srv, err := bidder.NewServer(cfg, ix, &bidder.Metrics{}, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	if status, _, body := call(tb, http.MethodGet, base+"/healthz", nil); status != 200 {
		tb.Fatalf("healthz: %d %s", status, body)
	}
	return base
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends one request and returns the status, headers and body of the answer.
func call(tb testing.TB, method, url string, body []byte) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// post sends body to path and requires status 200.
func post(tb testing.TB, url, body string) string {
	tb.Helper()
	status, _, out := call(tb, http.MethodPost, url, []byte(body))
	if status != http.StatusOK {
		tb.Fatalf("POST %s: status %d: %s", url, status, out)
	}
	return string(out)
}

// $D in a wanted body stands for segdData.
func expand(want string) string { return strings.ReplaceAll(want, "$D", segdData) }

var enrichCases = []struct {
	name string
	body string
	want string // "" for unchanged
}{
	{
		name: "user.id",
		body: `{"id":"r","user":{"id":"u1"}}`,
		want: `{"id":"r","user":{"data":[$D],"id":"u1"}}`,
	},
	{
		name: "uppercase device.ifa and no user",
		body: `{"id":"r","device":{"ifa":"AB-CD-EF"}}`,
		want: `{"id":"r","device":{"ifa":"AB-CD-EF"},"user":{"data":[$D]}}`,
	},
	{
		name: "eid with source after uids",
		body: `{"user":{"eids":[{"uids":[{"id":"E5"}],"source":"id5-sync.com"}]}}`,
		want: `{"user":{"data":[$D],"eids":[{"uids":[{"id":"E5"}],"source":"id5-sync.com"}]}}`,
	},
	{
		name: "2.5 user.ext.eids",
		body: `{"user":{"ext":{"eids":[{"source":"id5-sync.com","uids":[{"id":"E5"}]}]}}}`,
		want: `{"user":{"data":[$D],` +
			`"ext":{"eids":[{"source":"id5-sync.com","uids":[{"id":"E5"}]}]}}}`,
	},
	{
		name: "user null",
		body: `{"user":null,"device":{"ifa":"ab-cd-ef"}}`,
		want: `{"user":{"data":[$D]},"device":{"ifa":"ab-cd-ef"}}`,
	},
	{
		name: "others' data kept, segd's replaced",
		body: `{"user":{"id":"u1","data":[{"id":"segd","segment":[{"id":"old"}]},` +
			`{"id":"dp", "segment":[{"id":"7"}]}]}}`,
		want: `{"user":{"id":"u1","data":[{"id":"dp", "segment":[{"id":"7"}]},$D]}}`,
	},
	{
		name: "pretty printed with tmax",
		body: "{\n  \"tmax\": 300,\n  \"user\": {\n    \"id\": \"u1\"\n  }\n}\n",
		want: "{\n  \"tmax\": 300,\n  \"user\": {\"data\":[$D],\n    \"id\": \"u1\"\n  }\n}\n",
	},
	{name: "unknown ID", body: `{"user":{"id":"nobody"},"device":{"ifa":"AB-CD-00"}}`},
	{name: "IFA of another type", body: `{"user":{"buyeruid":"ab-cd-ef"}}`},
	{name: "eid of another source",
		body: `{"user":{"eids":[{"source":"x","uids":[{"id":"E5"}]}]}}`},
	{name: "no ID", body: `{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}`},
	{name: "empty object", body: `{}`},
	{
		name: "COPPA",
		body: "{ \"user\" : { \"id\" : \"u1\" } ,\n\t\"regs\":{\"coppa\": 1}}  \n",
	},
	{name: "COPPA as a string", body: `{"regs":{"coppa":"1"},"device":{"ifa":"ab-cd-ef"}}`},
	{name: "duplicate user.id", body: `{"user":{"id":"u1","id":"u2"}}`},
	{name: "duplicate user", body: `{"user":{"id":"u1"},"user":{}}`},
	{name: "user of the wrong type", body: `{"user":["u1"],"device":{"ifa":"ab-cd-ef"}}`},
	{name: "user.data of the wrong type", body: `{"user":{"id":"u1","data":{"id":"x"}}}`},
}

func TestEnrich(t *testing.T) {
	base := startServer(t, bidder.Config{}, readyIndex(t, testIDs...))
	for _, tc := range enrichCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.body
			if tc.want != "" {
				want = expand(tc.want)
			}
			status, hdr, got := call(t, http.MethodPost, base+"/openrtb2/enrich", []byte(tc.body))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, got)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(got) != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestEnrichIdempotent(t *testing.T) {
	base := startServer(t, bidder.Config{}, readyIndex(t, testIDs...))
	for _, tc := range enrichCases {
		t.Run(tc.name, func(t *testing.T) {
			once := post(t, base+"/openrtb2/enrich", tc.body)
			if twice := post(t, base+"/openrtb2/enrich", once); twice != once {
				t.Errorf("second pass changed the request:\nonce  %s\ntwice %s", once, twice)
			}
		})
	}
}

func TestSegments(t *testing.T) {
	base := startServer(t, bidder.Config{}, readyIndex(t, testIDs...))
	for _, tc := range enrichCases {
		t.Run(tc.name, func(t *testing.T) {
			want := "[]"
			if tc.want != "" {
				want = "[" + segdData + "]"
			}
			if got := post(t, base+"/openrtb2/segments", tc.body); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	ix := newIndex(t, testIDs...)
	base := startServer(t, bidder.Config{}, ix)
	body := `{"user":{"id":"u1"},"device":{"ifa":"ab-cd-ef"}}`
	if got := post(t, base+"/openrtb2/enrich", body); got != body {
		t.Errorf("enrich before ready = %s, want it unchanged", got)
	}
	if got := post(t, base+"/openrtb2/segments", body); got != "[]" {
		t.Errorf("segments before ready = %s, want []", got)
	}
	if status, _, _ := call(t, http.MethodGet, base+"/readyz", nil); status != 503 {
		t.Errorf("readyz before ready: %d, want 503", status)
	}

	ix.MarkReady()
	if got, want := post(t, base+"/openrtb2/enrich", body), expand(
		`{"user":{"data":[$D],"id":"u1"},"device":{"ifa":"ab-cd-ef"}}`); got != want {
		t.Errorf("enrich once ready = %s, want %s", got, want)
	}
}

// wantError checks an answer is a JSON error with the given status.
func wantError(t *testing.T, status int, hdr http.Header, body []byte, want int) {
	t.Helper()
	if status != want {
		t.Errorf("status %d, want %d (%s)", status, want, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("body %q is not a JSON error: %v", body, err)
	}
}

func TestBadRequests(t *testing.T) {
	base := startServer(t, bidder.Config{}, readyIndex(t, testIDs...))
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"array", "POST", "/openrtb2/enrich", `[{"user":{"id":"u1"}}]`, 400},
		{"null", "POST", "/openrtb2/enrich", `null`, 400},
		{"string", "POST", "/openrtb2/enrich", `"x"`, 400},
		{"empty body", "POST", "/openrtb2/enrich", ``, 400},
		{"truncated", "POST", "/openrtb2/enrich", `{"user":{"id":"u1"}`, 400},
		{"trailing garbage", "POST", "/openrtb2/enrich", `{"user":{"id":"u1"}}}`, 400},
		{"invalid UTF-8", "POST", "/openrtb2/enrich", "{\"user\":{\"id\":\"\xff\"}}", 400},
		{"not JSON on segments", "POST", "/openrtb2/segments", `user=u1`, 400},
		{"not JSON on auction", "POST", "/openrtb2/auction", `[]`, 400},
		{"GET enrich", "GET", "/openrtb2/enrich", ``, 405},
		{"GET segments", "GET", "/openrtb2/segments", ``, 405},
		{"PUT auction", "PUT", "/openrtb2/auction", `{}`, 405},
		{"unknown path", "POST", "/openrtb2/unknown", `{}`, 404},
		{"root", "GET", "/", ``, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := call(t, tc.method, base+tc.path, []byte(tc.body))
			wantError(t, status, hdr, body, tc.status)
			if tc.status == 405 && hdr.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", hdr.Get("Allow"))
			}
		})
	}
}

func TestOversize(t *testing.T) {
	const limit = 512
	base := startServer(t, bidder.Config{MaxBodySize: limit}, readyIndex(t, testIDs...))
	pad := func(n int) string {
		b := `{"user":{"id":"u1"},"pad":"`
		return b + strings.Repeat("x", n-len(b)-2) + `"}`
	}

	at := pad(limit)
	want := `{"user":{"data":[` + segdData + `],"id":"u1"}` + at[len(`{"user":{"id":"u1"}`):]
	if got := post(t, base+"/openrtb2/enrich", at); got != want {
		t.Errorf("a body at the limit was not enriched: %s", got)
	}

	status, hdr, body := call(t, http.MethodPost, base+"/openrtb2/enrich", []byte(pad(limit+1)))
	wantError(t, status, hdr, body, http.StatusRequestEntityTooLarge)
}

// upstream is a bidder that records what segd forwards to it.
type upstream struct {
	url  string
	reqs chan forwarded
}

type forwarded struct {
	body []byte
	hdr  http.Header
}

// startUpstream answers each bid request with a bid response naming the request's id, or
// with 204 when the id is "nobid", gzipped when the caller accepts it.
func startUpstream(t *testing.T) *upstream {
	u := &upstream{reqs: make(chan forwarded, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream read: %v", err)
		}
		u.reqs <- forwarded{body: body, hdr: r.Header.Clone()}
		var req struct{ ID string }
		json.Unmarshal(body, &req)
		if req.ID == "nobid" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		resp := []byte(bidResponse(req.ID))
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(resp)
			zw.Close()
			return
		}
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL + "/bid"
	return u
}

// tmaxOf returns the request's tmax, or -1 without one.
func tmaxOf(t *testing.T, body []byte) int {
	t.Helper()
	var req struct{ Tmax *int }
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("forwarded body is not JSON: %v: %s", err, body)
	}
	if req.Tmax == nil {
		return -1
	}
	return *req.Tmax
}

func TestAuction(t *testing.T) {
	up := startUpstream(t)
	base := startServer(t, bidder.Config{Upstream: up.url}, readyIndex(t, testIDs...))
	tests := []struct {
		name, body string
		want       string // the forwarded body, tmax aside; "" for the request itself
		status     int
	}{
		{
			name:   "enriched",
			body:   `{"id":"r1","tmax":500,"user":{"id":"u1"}}`,
			want:   `{"id":"r1","tmax":500,"user":{"data":[$D],"id":"u1"}}`,
			status: 200,
		},
		{
			name:   "no match",
			body:   `{"id":"r2","user":{"id":"nobody"},"tmax":250}`,
			status: 200,
		},
		{
			name:   "COPPA",
			body:   `{"id":"r3","tmax":400,"regs":{"coppa":1},"user":{"id":"u1"}}`,
			status: 200,
		},
		{
			name:   "without tmax",
			body:   `{"id":"r4","device":{"ifa":"ab-cd-ef"}}`,
			want:   `{"id":"r4","device":{"ifa":"ab-cd-ef"},"user":{"data":[$D]}}`,
			status: 200,
		},
		{
			name:   "no bid",
			body:   `{"id":"nobid","tmax":100,"user":{"id":"u1"}}`,
			want:   `{"id":"nobid","tmax":100,"user":{"data":[$D],"id":"u1"}}`,
			status: 204,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := call(t, http.MethodPost, base+"/openrtb2/auction",
				[]byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var fw forwarded
			select {
			case fw = <-up.reqs: // sent before the upstream answered
			default:
				t.Fatal("nothing reached the upstream")
			}
			// net/http asks for gzip on its own; the relayed body reads right only if
			// segd relays Content-Encoding too.
			if !strings.Contains(fw.hdr.Get("Accept-Encoding"), "gzip") {
				t.Errorf("upstream got Accept-Encoding %q", fw.hdr.Get("Accept-Encoding"))
			}

			want := tc.body
			if tc.want != "" {
				want = expand(tc.want)
			}
			sent, got := tmaxOf(t, []byte(tc.body)), tmaxOf(t, fw.body)
			if sent > 0 {
				if got <= 0 || got > sent {
					t.Errorf("forwarded tmax %d, want in (0, %d]", got, sent)
				}
				want = strings.Replace(want, `"tmax":`+strconv.Itoa(sent),
					`"tmax":`+strconv.Itoa(got), 1)
			}
			if string(fw.body) != want {
				t.Errorf("forwarded %s\nwant      %s", fw.body, want)
			}

			wantResp := bidResponse(requestID(tc.body))
			wantType := "application/json; charset=utf-8"
			if status == 204 {
				wantResp, wantType = "", ""
			}
			if string(body) != wantResp {
				t.Errorf("relayed %q, want %q", body, wantResp)
			}
			if ct := hdr.Get("Content-Type"); ct != wantType {
				t.Errorf("relayed Content-Type %q, want %q", ct, wantType)
			}
		})
	}
}

// bidResponse is the upstream's answer to the request with the given id.
func bidResponse(id string) string {
	return `{"id":"` + id + `","seatbid":[{"bid":[{"id":"b","impid":"1","price":1.5}]}]}`
}

// requestID returns the id of a request.
func requestID(body string) string {
	var req struct{ ID string }
	json.Unmarshal([]byte(body), &req)
	return req.ID
}

func TestAuctionUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the connection is refused

	base := startServer(t, bidder.Config{Upstream: "http://" + addr + "/bid"},
		readyIndex(t, testIDs...))
	status, hdr, body := call(t, http.MethodPost, base+"/openrtb2/auction",
		[]byte(`{"id":"r","tmax":200,"user":{"id":"u1"}}`))
	wantError(t, status, hdr, body, http.StatusBadGateway)
}

func TestAuctionWithoutUpstream(t *testing.T) {
	base := startServer(t, bidder.Config{}, readyIndex(t, testIDs...))
	status, hdr, body := call(t, http.MethodPost, base+"/openrtb2/auction",
		[]byte(`{"id":"r","user":{"id":"u1"}}`))
	wantError(t, status, hdr, body, http.StatusNotFound)
}
