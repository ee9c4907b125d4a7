package bidder_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
)

// serveWithMetrics is startServer that also returns the server's metrics.
func serveWithMetrics(t *testing.T, cfg bidder.Config, ix *segments.Index) (
	string, *bidder.Metrics) {
	t.Helper()
	m := &bidder.Metrics{}
	srv, err := bidder.NewServer(cfg, ix, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String(), m
}

// metric returns the line of the sample named, or "".
func metric(m *bidder.Metrics, sample string) string {
	var b bytes.Buffer
	m.WritePrometheus(&b, segments.Stats{}, true)
	for line := range strings.Lines(b.String()) {
		if strings.HasPrefix(line, sample+" ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name     string
		cfg      bidder.Config
		body     string
		enriched bool
	}{
		{"tmax leaves room", bidder.Config{}, `{"tmax":500,"user":{"id":"u1"}}`, true},
		{"no tmax", bidder.Config{}, `{"user":{"id":"u1"}}`, true},
		{"tmax within the margin", bidder.Config{}, `{"tmax":10,"user":{"id":"u1"}}`, false},
		{"tmax below the margin", bidder.Config{}, `{"tmax":3,"user":{"id":"u1"}}`, false},
		{"smaller margin", bidder.Config{TmaxMargin: time.Millisecond},
			`{"tmax":10,"user":{"id":"u1"}}`, true},
		{"cap below any scan", bidder.Config{MaxBudget: time.Nanosecond},
			`{"tmax":500,"user":{"id":"u1"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, m := serveWithMetrics(t, tc.cfg, readyIndex(t, testIDs...))
			out := post(t, base+"/openrtb2/enrich", tc.body)
			if got := strings.Contains(out, `"id":"segd"`); got != tc.enriched {
				t.Fatalf("enriched = %v, want %v: %s", got, tc.enriched, out)
			}
			want := `segd_requests_total{endpoint="enrich",outcome="over_budget"} 1`
			if tc.enriched {
				want = `segd_requests_total{endpoint="enrich",outcome="enriched"} 1`
			} else if out != tc.body {
				t.Errorf("over budget: %s, want the request unchanged", out)
			}
			if got := metric(m, strings.Fields(want)[0]); got != want {
				t.Errorf("metric %q, want %q", got, want)
			}
			segs := post(t, base+"/openrtb2/segments", tc.body)
			if (segs != "[]") == !tc.enriched {
				t.Errorf("segments endpoint: %s", segs)
			}
		})
	}
}

func TestBudgetAuctionForwardsUnchanged(t *testing.T) {
	up := startUpstream(t)
	base, m := serveWithMetrics(t, bidder.Config{Upstream: up.url, MaxBudget: time.Nanosecond},
		readyIndex(t, testIDs...))
	status, _, _ := call(t, http.MethodPost, base+"/openrtb2/auction",
		[]byte(`{"id":"r","user":{"id":"u1"}}`))
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if fw := <-up.reqs; string(fw.body) != `{"id":"r","user":{"id":"u1"}}` {
		t.Errorf("forwarded %s, want the request unchanged", fw.body)
	}
	want := `segd_requests_total{endpoint="auction",outcome="over_budget"} 1`
	if got := metric(m, strings.Fields(want)[0]); got != want {
		t.Errorf("metric %q, want %q", got, want)
	}
}

// TestOverload fills the one in-flight slot with an auction held at the upstream, and
// checks that the requests beyond it are answered at once, unchanged, and counted.
func TestOverload(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"held"}`))
	}))
	defer up.Close()
	base, m := serveWithMetrics(t, bidder.Config{Upstream: up.URL, MaxInflight: 1,
		UpstreamTimeout: time.Minute}, readyIndex(t, testIDs...))

	held := make(chan int, 1)
	go func() {
		resp, err := client.Post(base+"/openrtb2/auction", "application/json",
			strings.NewReader(`{"id":"held","user":{"id":"u1"}}`))
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-arrived

	body := `{"id":"x","user":{"id":"u1"}}`
	if out := post(t, base+"/openrtb2/enrich", body); out != body {
		t.Errorf("enrich under overload: %s, want the request unchanged", out)
	}
	if out := post(t, base+"/openrtb2/segments", body); out != "[]" {
		t.Errorf("segments under overload: %s, want []", out)
	}
	status, hdr, out := call(t, http.MethodPost, base+"/openrtb2/auction", []byte(body))
	wantError(t, status, hdr, out, http.StatusServiceUnavailable)
	if got := call2xx(t, base+"/healthz"); !got {
		t.Error("healthz failed under overload")
	}

	close(release)
	if status := <-held; status != http.StatusOK {
		t.Errorf("held auction: status %d, want 200", status)
	}
	for _, want := range []string{
		`segd_requests_total{endpoint="enrich",outcome="overload"} 1`,
		`segd_requests_total{endpoint="segments",outcome="overload"} 1`,
		`segd_requests_total{endpoint="auction",outcome="overload"} 1`,
		`segd_requests_total{endpoint="auction",outcome="enriched"} 1`,
	} {
		if got := metric(m, strings.Fields(want)[0]); got != want {
			t.Errorf("metric %q, want %q", got, want)
		}
	}
	// The slot is free again.
	if out := post(t, base+"/openrtb2/enrich", body); !strings.Contains(out, `"id":"segd"`) {
		t.Errorf("after the overload: %s, want enriched", out)
	}
}

func call2xx(t *testing.T, url string) bool {
	status, _, _ := call(t, http.MethodGet, url, nil)
	return status == http.StatusOK
}

func TestConfigRejectsNegativeLimits(t *testing.T) {
	for _, cfg := range []bidder.Config{
		{TmaxMargin: -1}, {MaxBudget: -time.Second}, {MaxInflight: -1},
	} {
		if _, err := bidder.NewServer(cfg, readyIndex(t), &bidder.Metrics{},
			zap.NewNop()); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
