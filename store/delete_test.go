package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// The IDs of one person, as every ingest path names them.
const (
	optUID  = "opt-u-1"
	optBUID = "opt-b-1"
	optIFA  = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	optEID  = "ID5*opt-1"
	optSync = "partner-opt-1"
)

var optIDs = []string{
	"uid:" + optUID, "buid:" + optBUID, "ifa:" + optIFA, "eid:id5-sync.com:" + optEID,
	"eid:partner.example:" + optSync,
}

// optTSV, optNDJSON and optEvents name each ID of the person on its own line.
const (
	optTSV = "uid:" + optUID + "\tgold\n" + "buid:" + optBUID + "\tgold\n" +
		"ifa:" + optIFA + "\tgold\n" + "eid:id5-sync.com:" + optEID + "\tgold\n" +
		"eid:partner.example:" + optSync + "\tgold\n"
	optNDJSON = `{"ids":[{"type":"uid","value":"` + optUID + `"}],"add":["gold"]}` + "\n" +
		`{"ids":[{"type":"ifa","value":"` + optIFA + `"}],"add":["gold"]}` + "\n" +
		`{"ids":[{"type":"eid:id5-sync.com","value":"` + optEID + `"}],"add":["gold"]}` + "\n"
	optEvents = `{"ids":[{"type":"uid","value":"` + optUID + `"}],"source":"web",` +
		`"traits":{"geo":"london"}}` + "\n" +
		`{"ids":[{"type":"buid","value":"` + optBUID + `"}],"source":"web"}` + "\n" +
		`{"ids":[{"type":"eid:partner.example","value":"` + optSync + `"}],"source":"web"}` +
		"\n"
)

// onboardPerson links the IDs of one person to one profile through an import line, an
// NDJSON line, an event and an ID sync, and a second person who must be left alone.
func onboardPerson(e *env) {
	e.t.Helper()
	e.define("gold", "crm:gold")
	e.define("london", "web:geo=london")
	res := e.importText("crm", segments.TSV,
		"uid:"+optUID+"|buid:"+optBUID+"\tgold\nuid:keep\tgold\n")
	mustAccept(e.t, "tsv", res, 2)
	res = e.importText("crm", segments.NDJSON, `{"ids":[{"type":"ifa","value":"`+optIFA+
		`"},{"type":"uid","value":"`+optUID+`"},{"type":"eid:id5-sync.com","value":"`+optEID+
		`"}],"add":["gold"]}`+"\n")
	mustAccept(e.t, "ndjson", res, 1)
	mustAccept(e.t, "events", e.events(`{"ids":[{"type":"uid","value":"`+optUID+
		`"}],"source":"web","traits":{"geo":"london"}}`+"\n"), 1)
	err := e.db.Record(context.Background(), segments.EventLine{
		IDs: []segments.ID{{Type: "buid", Value: optBUID},
			{Type: "eid:partner.example", Value: optSync}},
		Source: "web", Traits: []string{"sync=partner.example"}, NoVisit: true})
	if err != nil {
		e.t.Fatalf("record sync: %v", err)
	}
	p, ok := e.ix.LookupProfile(e.hash("uid:"+optUID), e.clk.Now())
	if !ok || p.IDs != len(optIDs) {
		e.t.Fatalf("onboarded profile %+v (found %v), want %d IDs", p, ok, len(optIDs))
	}
	e.expectServed(map[string][]string{"uid:" + optUID: {"gold", "london"},
		"uid:keep": {"gold"}})
}

func mustAccept(t *testing.T, what string, res segments.ImportResult, n int) {
	t.Helper()
	if res.Accepted != n || res.Rejected != 0 {
		t.Fatalf("%s: accepted %d, rejected %d (%v), want %d accepted", what, res.Accepted,
			res.Rejected, res.Errors, n)
	}
}

// expectGone checks that no ID of the person is linked or served, and that the other
// person still is.
func expectGone(e *env, when string) {
	e.t.Helper()
	for _, id := range optIDs {
		if got := e.served(id); got != nil {
			e.t.Errorf("%s: %s served %v", when, id, got)
		}
		if p, ok := e.ix.LookupProfile(e.hash(id), e.clk.Now()); ok {
			e.t.Errorf("%s: %s still linked to profile %d", when, id, p.Profile)
		}
	}
	e.expectServed(map[string][]string{"uid:keep": {"gold"}})
	e.expectSizes(map[string]uint64{"gold": 1, "london": 0})
}

// expectRefused re-imports every ID of the person through each ingest path and checks
// that every line is rejected as opted out and nothing is linked.
func expectRefused(e *env, when string) {
	e.t.Helper()
	check := func(what string, res segments.ImportResult, lines int) {
		e.t.Helper()
		if res.Accepted != 0 || res.Rejected != lines {
			e.t.Errorf("%s %s: accepted %d, rejected %d, want all %d rejected", when, what,
				res.Accepted, res.Rejected, lines)
		}
		for _, le := range res.Errors {
			if le.Error != segments.ErrOptedOut.Error() {
				e.t.Errorf("%s %s line %d: %q, want %q", when, what, le.Line, le.Error,
					segments.ErrOptedOut)
			}
		}
	}
	check("tsv", e.importText("crm", segments.TSV, optTSV), 5)
	check("ndjson", e.importText("crm", segments.NDJSON, optNDJSON), 3)
	check("events", e.events(optEvents), 3)
	err := e.db.Record(context.Background(), segments.EventLine{
		IDs: []segments.ID{{Type: "buid", Value: optBUID}}, Source: "web",
		Traits: []string{"geo=london"}})
	var refused *store.RefusedError
	if !errors.As(err, &refused) || refused.Reason != segments.ErrOptedOut.Error() {
		e.t.Errorf("%s record: %v, want refused as opted out", when, err)
	}
	expectGone(e, when)
}

// TestDeleteProfileOptsOut deletes a person through one ID (the IFA, given in lower case)
// and checks that every ID of the profile is gone and never links again: after the
// deletion, after a sweep, and after a restart.
func TestDeleteProfileOptsOut(t *testing.T) {
	e := newEnv(t)
	onboardPerson(e)

	n, err := e.db.DeleteProfile(context.Background(),
		segments.ID{Type: "ifa", Value: strings.ToLower(optIFA)})
	if err != nil || n != 1 {
		t.Fatalf("delete: %d profiles, %v; want 1", n, err)
	}
	expectGone(e, "after delete")
	expectRefused(e, "after delete")

	e.clk.Advance(3 * time.Hour) // past every TTL of the sources
	e.importText("crm", segments.TSV, "uid:keep\tgold\n")
	e.sweep()
	expectRefused(e, "after sweep")

	e = e.reopen()
	if e.stats.Suppressed != len(optIDs) || e.stats.Stale != 0 {
		t.Errorf("reload: %d suppressed, %d stale; want %d and 0", e.stats.Suppressed,
			e.stats.Stale, len(optIDs))
	}
	expectRefused(e, "after restart")
	e.sweep()
	expectGone(e, "after restart and sweep")
}

// TestDeleteProfileBeforeData opts out an ID that segd has never seen: it is suppressed
// all the same, and data that arrives later for it is refused, across a restart.
func TestDeleteProfileBeforeData(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	n, err := e.db.DeleteProfile(context.Background(), segments.ID{Type: "uid", Value: "early"})
	if err != nil || n != 0 {
		t.Fatalf("delete: %d profiles, %v; want 0", n, err)
	}
	e = e.reopen()
	res := e.importText("crm", segments.TSV, "uid:early\tgold\nuid:early|uid:fresh\tgold\n")
	if res.Accepted != 1 || res.Rejected != 1 || res.Errors[0].Line != 1 {
		t.Fatalf("import: %+v, want line 1 rejected and line 2 accepted", res)
	}
	e.expectServed(map[string][]string{"uid:early": nil, "uid:fresh": {"gold"}})
	if p, ok := e.ix.LookupProfile(e.hash("uid:fresh"), e.clk.Now()); !ok || p.IDs != 1 {
		t.Errorf("fresh ID: %+v, %v; want a profile of its own", p, ok)
	}
}

func TestDeleteProfileBadID(t *testing.T) {
	e := newEnv(t)
	for _, id := range []segments.ID{
		{Type: "uid"}, {Type: "email", Value: "x"},
		{Type: "ifa", Value: "00000000-0000-0000-0000-000000000000"},
	} {
		if _, err := e.db.DeleteProfile(context.Background(), id); err == nil {
			t.Errorf("%+v: deleted, want an error", id)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.db.DeleteProfile(ctx, segments.ID{Type: "uid", Value: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
