package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// returningRule is the canonical audience: returning customers in London who visited the
// pricing page in the last 30 days.
const returningRule = "count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d"

func eventLine(uid string, ts time.Time, traits string) string {
	return fmt.Sprintf(`{"ids":[{"type":"uid","value":%q}],"source":"web","ts":%q,"traits":{%s}}`,
		uid, ts.UTC().Format(time.RFC3339), traits) + "\n"
}

// TestEventsEndToEnd sends events for profiles that do and do not meet the returning
// customers rule through the admin API, and checks that enrichment carries the segment for
// exactly those who qualify, before and after a restart.
func TestEventsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a := startTestApp(t, dir)
	c := newClient(t, a)
	c.must("PUT", c.admin+"/v1/sources/web",
		[]byte(`{"name":"Website","party":"first","ttl":"720h"}`), 200)
	rule, _ := json.Marshal(returningRule)
	c.must("PUT", c.admin+"/v1/segments/returning",
		[]byte(`{"name":"Returning London pricing","rule":`+string(rule)+`,"export_id":"RL"}`), 200)
	c.must("PUT", c.admin+"/v1/segments/london",
		[]byte(`{"name":"London","rule":"web:geo=london","export_id":"LDN","segtax":4}`), 200)

	now := time.Now()
	day := 24 * time.Hour
	out := c.must("POST", c.admin+"/v1/events", []byte(
		eventLine("one-visit", now.Add(-time.Minute), `"geo":"london","page":"/pricing"`)+
			eventLine("paris", now.Add(-10*day), `"geo":"paris"`)+
			eventLine("paris", now.Add(-time.Minute), `"geo":"paris","page":"/pricing"`)+
			eventLine("old-pricing", now.Add(-40*day), `"geo":"london","page":"/pricing"`)+
			eventLine("old-pricing", now.Add(-2*day), `"geo":"london"`)+
			eventLine("all", now.Add(-10*day), `"geo":"london"`)+
			eventLine("all", now.Add(-time.Minute), `"page":"/pricing"`)+
			eventLine("late", now.Add(time.Hour), `"page":"/pricing"`)), 200)
	var res struct{ Accepted, Rejected int }
	if err := json.Unmarshal(out, &res); err != nil || res.Accepted != 7 || res.Rejected != 1 {
		t.Fatalf("events answer %s", out)
	}

	want := map[string]string{
		"one-visit": "LDN", "paris": "", "old-pricing": "LDN", "all": "RL,LDN", "never": "",
	}
	checkServed(t, c, want)
	counted := c.must("POST", c.admin+"/v1/count", []byte(`{"rule":`+string(rule)+`}`), 200)
	if !strings.Contains(string(counted), `"count": 1`) {
		t.Errorf("count: %s", counted)
	}
	overlap := c.must("GET", c.admin+"/v1/overlap?segments=returning,london", nil, 200)
	if !strings.Contains(string(overlap), `"both": 1`) {
		t.Errorf("overlap: %s", overlap)
	}
	a.close()

	a = startTestApp(t, dir)
	defer a.close()
	checkServed(t, newClient(t, a), want)
}

// checkServed enriches a request for each user ID and compares segd's export IDs, joined
// by commas, with want.
func checkServed(t *testing.T, c testClient, want map[string]string) {
	t.Helper()
	for uid, w := range want {
		req := `{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"id":"` + uid + `"}}`
		out := c.must("POST", c.bid+"/openrtb2/enrich", []byte(req), 200)
		if got := strings.Join(segdExportIDs(t, out), ","); got != w {
			t.Errorf("%s: served %q, want %q", uid, got, w)
		}
	}
}

// BenchmarkEventToServed measures a first-party event from its POST to its effect on
// enrichment, through the real listeners and Badger: each iteration records one event for
// a new profile, durably, then enriches a request for that profile, which must carry the
// segment the event qualifies it for at once. It reports both halves per event.
func BenchmarkEventToServed(b *testing.B) {
	a := startTestApp(b, b.TempDir())
	defer a.close()
	c := newClient(b, a)
	c.putSources("web")
	c.must("PUT", c.admin+"/v1/segments/pricing",
		[]byte(`{"name":"Pricing","rule":"web:page=/pricing in 30d","export_id":"PRICING"}`), 200)
	now := time.Now()
	var acking, serving time.Duration
	n := 0
	for b.Loop() {
		uid := "bench-" + strconv.Itoa(n)
		n++
		start := time.Now()
		c.must("POST", c.admin+"/v1/events", []byte(eventLine(uid, now, `"page":"/pricing"`)), 200)
		acked := time.Now()
		req := `{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"id":"` + uid + `"}}`
		out := c.must("POST", c.bid+"/openrtb2/enrich", []byte(req), 200)
		serving += time.Since(acked)
		acking += acked.Sub(start)
		if !strings.Contains(string(out), `{"id":"PRICING"}`) {
			b.Fatalf("the first request after the event's answer lacks its segment: %s", out)
		}
	}
	b.ReportMetric(float64(acking.Microseconds())/float64(n), "us-to-ack/op")
	b.ReportMetric(float64(serving.Microseconds())/float64(n), "us-ack-to-served/op")
}
