package bidder_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
)

// raceEnabled is set by race_test.go: the race detector makes sync.Pool drop items at
// random, so allocation counts mean nothing under it.
var raceEnabled bool

// benchIDs are the IDs that the bench profile is linked to: three of request-2k.json
// and an IFA.
var benchIDs = []segments.ID{
	{Type: segments.TypeUID, Value: "4b1e9f2c-77d3-4a08-b5e6-3c9a0d8e1f27"},
	{Type: segments.TypeBUID, Value: "AX7dQ2pLr9sV0kTz8WmN"},
	{Type: "eid:id5-sync.com", Value: "ID5*Ae3tV9b2LkPq0Xy7Zr1Mn4Hs8Jd6Fg5Cw"},
	{Type: segments.TypeIFA, Value: "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
}

// benchMember is how many segments the bench profile is in.
const benchMember = 8

// benchIndex returns a ready index with n segments, in three taxonomies, and one profile
// linked to benchIDs that is in benchMember of them, spread over the slots.
func benchIndex(tb testing.TB, n int) *segments.Index {
	tb.Helper()
	ix := segments.New(segments.NewHasher([]byte(testSecret)),
		segments.Provider{ID: "segd", Name: "segd"})
	now := time.Now()
	txn := ix.Begin(now)
	err := txn.PutSource(segments.Source{
		ID: "crm", Name: "CRM", Party: segments.FirstParty, TTL: 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	taxonomies := [...]int{4, 6, 0}
	for i := range n {
		id := strconv.Itoa(i)
		err := txn.PutSegment(segments.Segment{ID: "s" + id, Name: "Segment " + id,
			Rule: "crm:c" + id, ExportID: "x" + id, Segtax: taxonomies[i%len(taxonomies)]})
		if err != nil {
			tb.Fatal(err)
		}
	}
	txn.Commit()

	hashes := make([]uint64, len(benchIDs))
	for i, id := range benchIDs {
		hashes[i] = ix.Hasher().Hash(id)
	}
	txn = ix.Begin(now)
	p := txn.Resolve(hashes)
	for k := range benchMember {
		txn.Add(p, "crm:c"+strconv.Itoa(k*n/benchMember), uint32(now.Add(24*time.Hour).Unix()))
	}
	txn.Commit()
	ix.MarkReady()
	return ix
}

// benchRequest returns a bid-listener request context for path with body, ready for
// Handle.
func benchRequest(tb testing.TB, path string, body []byte) *fasthttp.RequestCtx {
	tb.Helper()
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI(path)
	ctx.Request.SetBody(body)
	return ctx
}

func readRequest2K(tb testing.TB) []byte {
	tb.Helper()
	body, err := os.ReadFile("testdata/request-2k.json")
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// benchVendor is the GVL vendor ID that the TCF string of request-2k.json consents to.
const benchVendor = 77

// newBenchServer returns a bid listener over an index of n segments and a context that
// enriches request-2k.json, checked to come back with benchMember segments. The request
// is under GDPR with a TCF consent string that the policy decodes (once, then from its
// cache).
func newBenchServer(tb testing.TB, n int) (*bidder.Server, *fasthttp.RequestCtx) {
	return newBenchServerFor(tb, n, readRequest2K(tb))
}

func newBenchServerFor(tb testing.TB, n int, body []byte) (*bidder.Server,
	*fasthttp.RequestCtx) {
	return newBenchServerWith(tb, bidder.Config{}, "", n, body)
}

// newBenchServerWith is newBenchServerFor with more settings, and an API key to send
// when key is not empty.
func newBenchServerWith(tb testing.TB, cfg bidder.Config, key string, n int, body []byte) (
	*bidder.Server, *fasthttp.RequestCtx) {
	tb.Helper()
	cfg.Privacy.GVLVendorID = benchVendor
	srv, err := bidder.NewServer(cfg, benchIndex(tb, n), &bidder.Metrics{}, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := benchRequest(tb, "/openrtb2/enrich", body)
	if key != "" {
		ctx.Request.Header.Set(bidder.CallerHeader, key)
	}
	srv.Handle(ctx)
	if got := bytes.Count(ctx.Response.Body(), []byte(`{"id":"x`)); got != benchMember {
		tb.Fatalf("enriched with %d segments, want %d: %s", got, benchMember,
			ctx.Response.Body())
	}
	return srv, ctx
}

func benchHandler(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.ReportAllocs()
	b.SetBytes(int64(len(ctx.Request.Body())))
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
}

// BenchmarkEnrich measures /openrtb2/enrich on a 2.5 KB request whose profile is in
// benchMember segments.
func BenchmarkEnrich(b *testing.B) {
	srv, ctx := newBenchServer(b, benchMember)
	benchHandler(b, srv.Handle, ctx)
}

// BenchmarkEnrichConsent compares a request under GDPR with a TCF consent string, which
// the policy must check, with the same request outside the GDPR and without one.
func BenchmarkEnrichConsent(b *testing.B) {
	with := readRequest2K(b)
	without := bytes.Replace(with, []byte(`"gdpr": 1`), []byte(`"gdpr": 0`), 1)
	i := bytes.Index(without, []byte(`"consent": "`))
	j := i + len(`"consent": "`) + bytes.IndexByte(without[i+len(`"consent": "`):], '"')
	without = append(append(without[:i:i], `"consent": ""`...), without[j+1:]...)
	for _, c := range []struct {
		name string
		body []byte
	}{{"tcf", with}, {"none", without}} {
		b.Run(c.name, func(b *testing.B) {
			srv, ctx := newBenchServerFor(b, benchMember, c.body)
			benchHandler(b, srv.Handle, ctx)
		})
	}
}

// BenchmarkEnrichCaller measures what identifying a caller by its API key and applying its
// segment filter add to a request, beside the same request without a key.
func BenchmarkEnrichCaller(b *testing.B) {
	var cl bidder.Caller
	cl.Name, cl.Key, cl.Segtax = "dsp-a", "dsp-a-key-0123456789", []int{0, 4, 6}
	cfg := bidder.Config{Callers: []bidder.Caller{cl}}
	for _, key := range []string{"", cl.Key} {
		name := "none"
		if key != "" {
			name = "key"
		}
		b.Run(name, func(b *testing.B) {
			srv, ctx := newBenchServerWith(b, cfg, key, benchMember, readRequest2K(b))
			benchHandler(b, srv.Handle, ctx)
		})
	}
}

// BenchmarkEnrichSegments shows that the cost of a request does not follow the number of
// segments defined.
func BenchmarkEnrichSegments(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run("segments="+strconv.Itoa(n), func(b *testing.B) {
			srv, ctx := newBenchServer(b, n)
			benchHandler(b, srv.Handle, ctx)
		})
	}
}

// BenchmarkEcho is the floor: a handler that returns the request as it came.
func BenchmarkEcho(b *testing.B) {
	echo := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(ctx.PostBody())
	}
	benchHandler(b, echo, benchRequest(b, "/openrtb2/enrich", readRequest2K(b)))
}

func TestEnrichAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	srv, _ := newBenchServer(t, 100)
	request := readRequest2K(t)
	ifa := []byte(`{"id":"r","device":{"ifa":"6D92078A-8246-4BA4-AE5B-76104861E7DC"}}`)
	tests := []struct {
		name, path string
		body       []byte
		enriched   bool
	}{
		{"enrich", "/openrtb2/enrich", request, true},
		{"segments", "/openrtb2/segments", request, true},
		{"user added", "/openrtb2/enrich", ifa, true},
		{"escaped IDs", "/openrtb2/enrich", []byte(
			`{"\u0075ser":{"buyeruid":"AX7dQ2pLr9sV0kTz8WmN","eids":[{"uids":[{"id":"` +
				`ID5*Ae3tV9b2LkPq0Xy7Zr1Mn4Hs8Jd6Fg5Cw"}],"source":"id5\u002dsync.com"}]}}`),
			true},
		{"no match", "/openrtb2/enrich", []byte(`{"user":{"id":"nobody"}}`), false},
		{"oversized eid", "/openrtb2/enrich", []byte(`{"user":{"eids":[{"source":"` +
			strings.Repeat("s", 300) + `","uids":[{"id":"` + strings.Repeat("v", 250) +
			`"}]}]}}`), false},
		{"COPPA", "/openrtb2/enrich", bytes.Replace(request, []byte(`"coppa": 0`),
			[]byte(`"coppa": 1`), 1), false},
		{"invalid", "/openrtb2/enrich", request[:len(request)/2], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := benchRequest(t, tc.path, tc.body)
			handle := func() {
				ctx.Response.Reset()
				srv.Handle(ctx)
			}
			for range 10 {
				handle()
			}
			got := bytes.Contains(ctx.Response.Body(), []byte(`{"id":"x0"}`))
			if got != tc.enriched {
				t.Fatalf("enriched = %v, want %v: %s", got, tc.enriched, ctx.Response.Body())
			}
			if allocs := testing.AllocsPerRun(100, handle); allocs != 0 {
				t.Errorf("%v allocations per request, want 0", allocs)
			}
		})
	}
}
