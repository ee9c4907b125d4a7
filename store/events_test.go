package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// returning is the audience of the product's canonical example: returning customers in
// London who visited the pricing page in the last 30 days.
const returning = "count(web:visit in 90d) >= 2 and web:geo=london and web:page=/pricing in 30d"

// event renders one NDJSON event line for uid at ts with the given traits.
func event(uid string, ts time.Time, traits string) string {
	return fmt.Sprintf(`{"ids":[{"type":"uid","value":%q}],"source":"web","ts":%q,"traits":{%s}}`,
		uid, ts.Format(time.RFC3339), traits) + "\n"
}

func (e *env) events(text string) segments.ImportResult {
	e.t.Helper()
	res, err := e.db.Events(context.Background(), strings.NewReader(text))
	if err != nil {
		e.t.Fatalf("events: %v", err)
	}
	return res
}

func TestEventsReturningCustomers(t *testing.T) {
	e := newEnv(t)
	e.source("web", 24*time.Hour)
	e.define("returning", returning)
	now := e.clk.Now()
	day := 24 * time.Hour

	res := e.events(
		// one visit only, though London and pricing
		event("one-visit", now.Add(-time.Hour), `"geo":"london","page":"/pricing"`) +
			// two visits and pricing, but Paris
			event("paris", now.Add(-10*day), `"geo":"paris"`) +
			event("paris", now.Add(-time.Hour), `"geo":"paris","page":"/pricing"`) +
			// London, two visits, but the pricing page 40 days ago
			event("old-pricing", now.Add(-40*day), `"geo":"london","page":"/pricing"`) +
			event("old-pricing", now.Add(-2*day), `"geo":"london"`) +
			// every condition met
			event("all", now.Add(-10*day), `"geo":"london"`) +
			event("all", now.Add(-time.Hour), `"page":"/pricing"`) +
			// two events on one day are one day
			event("same-day", now.Add(-2*time.Hour), `"geo":"london","page":"/pricing"`) +
			event("same-day", now.Add(-time.Hour), `"geo":"london"`))
	if res.Accepted != 9 || res.Rejected != 0 {
		t.Fatalf("accepted %d, rejected %d: %v", res.Accepted, res.Rejected, res.Errors)
	}

	want := map[string][]string{
		"uid:one-visit": nil, "uid:paris": nil, "uid:old-pricing": nil,
		"uid:all": {"returning"}, "uid:same-day": nil,
	}
	e.expectServed(want)
	e.expectSizes(map[string]uint64{"returning": 1})
	if n, err := e.ix.CountAt(returning, now); err != nil || n != 1 {
		t.Errorf("count = %d, %v; want 1", n, err)
	}

	e = e.reopen()
	e.expectServed(want)
	e.expectSizes(map[string]uint64{"returning": 1})

	// 31 days on, the pricing visit has slid out of its window: not served at once, and
	// gone from the segment's size after the sweep.
	e.clk.Advance(31 * day)
	e.expectServed(map[string][]string{"uid:all": nil})
	if n := e.sweep(); n == 0 {
		t.Error("the sweep touched no profile")
	}
	e.expectSizes(map[string]uint64{"returning": 0})
	e = e.reopen()
	e.expectSizes(map[string]uint64{"returning": 0})
}

func TestEventsRefused(t *testing.T) {
	e := newEnv(t)
	e.source("web", 24*time.Hour)
	now := e.clk.Now()
	res := e.events(
		event("ok", now, `"page":"/a"`) +
			event("old", now.Add(-200*24*time.Hour), `"page":"/a"`) +
			event("future", now.Add(time.Hour), `"page":"/a"`) +
			strings.Replace(event("nosrc", now, ""), `"web"`, `"nope"`, 1) +
			event("badvalue", now, `"page":"has space"`) +
			"{not json\n" +
			event("skewed", now.Add(2*time.Minute), ""))
	if res.Accepted != 2 || res.Rejected != 5 {
		t.Fatalf("accepted %d, rejected %d: %+v", res.Accepted, res.Rejected, res.Errors)
	}
	wantLines := []int{2, 3, 4, 5, 6}
	for i, le := range res.Errors {
		if le.Line != wantLines[i] {
			t.Errorf("error %d on line %d, want %d: %s", i, le.Line, wantLines[i], le.Error)
		}
	}
	for _, want := range []string{"older than the 180 days", "in the future", "unknown source"} {
		found := false
		for _, le := range res.Errors {
			found = found || strings.Contains(le.Error, want)
		}
		if !found {
			t.Errorf("no error says %q: %+v", want, res.Errors)
		}
	}
}

// TestEventsRetention checks that days past the retention are dropped from memory and from
// Badger, and that a profile left with nothing goes.
func TestEventsRetention(t *testing.T) {
	e := newEnv(t)
	e.source("web", 24*time.Hour)
	e.define("visitors", "web:visit")
	e.events(event("v", e.clk.Now(), ""))
	e.expectSizes(map[string]uint64{"visitors": 1})

	e.clk.Advance(179 * 24 * time.Hour)
	e.sweep()
	e.expectSizes(map[string]uint64{"visitors": 1})

	e.clk.Advance(24 * time.Hour)
	e.expectServed(map[string][]string{"uid:v": nil})
	e.sweep()
	e.expectSizes(map[string]uint64{"visitors": 0})
	e = e.reopen()
	e.expectSizes(map[string]uint64{"visitors": 0})
	if _, ok := e.ix.LookupProfile(e.hash("uid:v"), e.clk.Now()); ok {
		t.Error("the profile outlived its last retained day")
	}
}

// TestEventsNotWindow checks a profile that comes to qualify as time passes: a rule that
// excludes recent visitors.
func TestEventsNotWindow(t *testing.T) {
	e := newEnv(t)
	e.source("web", 24*time.Hour)
	e.define("lapsed", "web:visit and not web:visit in 7d")
	e.events(event("l", e.clk.Now(), ""))
	e.expectServed(map[string][]string{"uid:l": nil})

	e.clk.Advance(8 * 24 * time.Hour)
	e.sweep()
	e.expectServed(map[string][]string{"uid:l": {"lapsed"}})
	e.expectSizes(map[string]uint64{"lapsed": 1})
}
