package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/bench"
)

// sampleResult runs a fake open loop at 200/s whose service time cycles from 100us to
// 2.06ms, below the 5ms spacing, with every tenth request failing with a 503.
func sampleResult(t *testing.T, target string) *bench.Result {
	t.Helper()
	clock := newFakeClock()
	n := 0
	newSender := func() bench.Sender {
		return senderFunc(func(body []byte) (int, []byte, error) {
			n++
			clock.advance(100*time.Microsecond + time.Duration(n%50)*40*time.Microsecond)
			if n%10 == 0 {
				return 503, nil, nil
			}
			return 200, []byte(`{"user":{"data":[{"id":"segd"}]}}`), nil
		})
	}
	res, err := bench.Run(context.Background(), bench.Config{Target: target,
		NewSender: newSender, Bodies: [][]byte{[]byte(`{}`)}, Rate: 200, Connections: 1,
		Duration: 5 * time.Second, Clock: clock, Marker: []byte(`{"id":"segd"`)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sampleReport(t *testing.T) *bench.Report {
	rep := bench.NewReport(sampleResult(t, "http://127.0.0.1:8080/openrtb2/enrich"),
		sampleResult(t, "http://127.0.0.1:9999/openrtb2/enrich"))
	rep.InProcessEcho = true
	return rep
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := sampleReport(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, &back) {
		t.Errorf("JSON round trip changed the report:\n%s", b)
	}
	if rep.Target.Requests != 1000 || rep.Target.Errors.Status5xx != 100 ||
		len(rep.Target.Timeline) != 5 || len(rep.Target.Percentiles) < 30 {
		t.Errorf("requests %d, 5xx %d, %d timeline points, %d percentile points",
			rep.Target.Requests, rep.Target.Errors.Status5xx, len(rep.Target.Timeline),
			len(rep.Target.Percentiles))
	}
	if rep.Ratio == nil || rep.Ratio.Rate != 1 || rep.Ratio.P99 != 1 {
		t.Errorf("ratio %+v, want 1 and 1 for identical runs", rep.Ratio)
	}
}

func TestWriteText(t *testing.T) {
	rep := sampleReport(t)
	var b bytes.Buffer
	if err := bench.WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "open loop at 200/s, at most 1 connection, 5s measured") {
		t.Errorf("text report lacks its heading:\n%s", out)
	}
	rows := map[string][]string{}
	for line := range strings.Lines(out) {
		if label, cells, ok := strings.Cut(strings.TrimSpace(line), "  "); ok {
			rows[label] = strings.Fields(cells)
		}
	}
	for label, want := range map[string]string{
		"target":     "echo target/echo", // the header
		"requests":   "1,000 1,000",
		"rate":       "200/s 200/s 1.00",
		"status 5xx": "100 100",
		"p99":        "2.06ms 2.06ms 1.00",
		"max":        "2.06ms 2.06ms",
		"enriched":   "100.0% 100.0%",
	} {
		if got := strings.Join(rows[label], " "); got != want {
			t.Errorf("row %q = %q, want %q in\n%s", label, got, want, out)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	rep := sampleReport(t)
	var b bytes.Buffer
	if err := bench.WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	elems := parseXML(t, b.Bytes())
	for name, least := range map[string]int{"svg": 2, "polyline": 7, "table": 1, "tr": 14} {
		if elems[name] < least {
			t.Errorf("%d <%s> elements, want at least %d", elems[name], name, least)
		}
	}
	page := b.String()
	for _, want := range []string{"http://127.0.0.1:8080/openrtb2/enrich", "1,000",
		"99.9%", "<title>segd bench"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://www.w3.org/1999", "https://"} {
		if strings.Contains(page, banned) {
			t.Errorf("page holds %q: it must load nothing from elsewhere", banned)
		}
	}
}

// parseXML checks that page is well-formed XML and counts its elements by name.
func parseXML(t *testing.T, page []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict = true
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return counts
		}
		if err != nil {
			t.Fatalf("the page is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestProgressString(t *testing.T) {
	p := bench.Progress{Elapsed: 3*time.Second + 4*time.Millisecond, Sent: 29871,
		Rate: 9957.4, Errors: 2, P99: 1210 * time.Microsecond}
	if got, want := p.String(), "3s  sent 29,871  rate 9,957/s  errors 2  p99 1.21ms"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	p = bench.Progress{Elapsed: time.Second, Warmup: true}
	if got, want := p.String(), "1s (warm-up)  sent 0  rate 0/s  errors 0  p99 -"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
