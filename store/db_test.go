package store_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// durabilityIDs are the IDs that durabilityData links, as type:value.
var durabilityIDs = []string{
	"uid:a", "buid:a", "uid:b", "ifa:6D92078A-8246-4BA4-AE5B-76104861E7DC",
	"eid:id5.io:c", "uid:c", "uid:d", "uid:e", "uid:f",
}

// durabilityData fills e with sources, segments of every kind and profiles, some merged.
func durabilityData(t *testing.T, e *env) {
	t.Helper()
	e.define("gold", "crm:gold")
	e.define("londongold", "crm:gold and web:geo=london")
	e.define("notgold", "not crm:gold")
	e.define("ref", "segment:londongold or (web:geo=paris and not segment:gold)")
	err := e.db.PutSegment(segments.Segment{ID: "promo", Name: "Promo", Rule: "crm:silver",
		ExportID: "IAB-1", Segtax: 4, ActiveFrom: t0.Add(-time.Hour),
		ActiveUntil: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, e.importText("crm", segments.TSV,
		"uid:a|buid:a\tgold,silver\n"+
			"uid:b\tsilver\n"+
			"ifa:6D92078A-8246-4BA4-AE5B-76104861E7DC\tgold\n"+
			"uid:d\tgold\n"+
			"uid:e\tgold,silver\n"+
			"uid:e\t-gold\n"), 6, nil)
	checkResult(t, e.importText("web", segments.NDJSON,
		`{"ids":[{"type":"uid","value":"a"}],"add":["geo=london"],"ttl":"30m"}`+"\n"+
			`{"ids":[{"type":"eid:id5.io","value":"c"},{"type":"uid","value":"c"}],`+
			`"add":["geo=paris"]}`+"\n"+
			// Links the ifa's profile with uid:c's profile.
			`{"ids":[{"type":"ifa","value":"6d92078a-8246-4ba4-ae5b-76104861e7dc"},`+
			`{"type":"uid","value":"c"}],"add":["geo=london"]}`+"\n"+
			`{"ids":[{"type":"uid","value":"f"}],"add":["geo=paris"]}`+"\n"), 4, nil)
}

// snapshot renders everything the index tells about the given IDs and its segments, to
// compare two indexes that hold the same data.
func snapshot(t *testing.T, e *env, ids []string) string {
	t.Helper()
	type idView struct {
		ID      string
		Served  []string
		Found   bool
		Profile segments.Profile
	}
	view := struct {
		Stats    segments.Stats
		Sources  []segments.Source
		Segments []segments.SegmentInfo
		IDs      []idView
	}{Stats: e.ix.Stats(), Sources: e.ix.Sources(), Segments: e.ix.Segments()}
	// Tombstones are not persisted, and trait ordinals that rules or refused changes
	// allocated without any holder are not either.
	view.Stats.IDs, view.Stats.Traits = 0, 0
	for _, id := range ids {
		p, ok := e.ix.LookupProfile(e.hash(id), e.clk.Now())
		slices.Sort(p.Segments)
		slices.SortFunc(p.Traits, func(a, b segments.ProfileTrait) int {
			return cmpStrings(a.Name, b.Name)
		})
		view.IDs = append(view.IDs, idView{ID: id, Served: e.served(id), Found: ok,
			Profile: p})
	}
	b, err := json.MarshalIndent(view, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRestartKeepsEverything(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	e.expectServed(map[string][]string{
		"uid:a":        {"IAB-1", "gold", "londongold", "ref"},
		"buid:a":       {"IAB-1", "gold", "londongold", "ref"},
		"uid:b":        {"IAB-1", "notgold"},
		"eid:id5.io:c": {"gold", "londongold", "ref"},
		"uid:e":        {"IAB-1", "notgold"},
		"uid:f":        {"notgold", "ref"},
	})
	before := snapshot(t, e, durabilityIDs)

	e = e.reopen()
	if e.stats.Profiles != 6 || e.stats.Sources != 2 || e.stats.Segments != 5 {
		t.Errorf("load stats %+v, want 6 profiles, 2 sources and 5 segments", e.stats)
	}
	if after := snapshot(t, e, durabilityIDs); after != before {
		t.Errorf("after restart:\n%s\nbefore:\n%s", after, before)
	}

	// The reloaded index keeps allocating fresh profiles and can be restarted again.
	e.importText("crm", segments.TSV, "uid:new\tgold\n")
	pa, _ := e.ix.LookupProfile(e.hash("uid:a"), t0)
	pn, ok := e.ix.LookupProfile(e.hash("uid:new"), t0)
	if !ok || pn.Profile == pa.Profile || pn.IDs != 1 {
		t.Errorf("new profile %+v after a restart, next to %+v", pn, pa)
	}
	ids := append(slices.Clone(durabilityIDs), "uid:new")
	before = snapshot(t, e, ids)
	if after := snapshot(t, e.reopen(), ids); after != before {
		t.Errorf("after a second restart:\n%s\nbefore:\n%s", after, before)
	}
}

func TestReopenWithAnotherSecret(t *testing.T) {
	e := newEnv(t)
	e.importText("crm", segments.TSV, "uid:a\tgold\n")
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := tryOpen(t, e.dir, "another secret", e.clk)
	if !errors.Is(err, store.ErrSecretChanged) {
		t.Fatalf("open with another secret: %v, want ErrSecretChanged", err)
	}
	// The refusal must leave the folder usable with the right secret.
	e = openEnv(t, e.dir, testSecret, e.clk)
	if _, ok := e.ix.LookupProfile(e.hash("uid:a"), t0); !ok {
		t.Error("profile lost after a refused open")
	}
}

func TestOpenWithoutFolder(t *testing.T) {
	_, err := store.Open(store.Config{}, segments.New(segments.NewHasher(nil),
		segments.Provider{}), nil)
	if err == nil {
		t.Error("Open without a folder succeeded")
	}
}

func TestCloseTwice(t *testing.T) {
	e := newEnv(t)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSweepDeletesFromStore checks that a sweep removes lapsed memberships from Badger, not
// only from the index: reloading with the clock turned back to before the expiry must not
// bring them back.
func TestSweepDeletesFromStore(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	e.define("travel", "web:travel")
	e.importText("crm", segments.TSV, "uid:a\tgold\nuid:b\tgold\n")
	e.importText("web", segments.NDJSON,
		`{"ids":[{"type":"uid","value":"b"}],"add":["travel"],"ttl":"30m"}`+"\n"+
			`{"ids":[{"type":"uid","value":"c"}],"add":["travel"],"ttl":"3h"}`+"\n")

	e.clk.Set(t0.Add(45 * time.Minute))
	e.expectServed(map[string][]string{"uid:b": {"gold"}}) // before any sweep
	if n := e.sweep(); n != 1 {
		t.Errorf("first sweep touched %d profiles, want 1", n)
	}
	e.expectSizes(map[string]uint64{"gold": 2, "travel": 1})

	e.clk.Set(t0.Add(2 * time.Hour))
	e.expectServed(map[string][]string{"uid:a": nil, "uid:b": nil, "uid:c": {"travel"}})
	if n := e.sweep(); n != 2 {
		t.Errorf("second sweep touched %d profiles, want 2", n)
	}
	e.expectSizes(map[string]uint64{"gold": 0, "travel": 1})
	if got := e.ix.Stats().Profiles; got != 1 {
		t.Errorf("%d profiles after the sweep, want 1", got)
	}

	e.clk.Set(t0)
	e = e.reopen()
	e.expectSizes(map[string]uint64{"gold": 0, "travel": 1})
	e.expectServed(map[string][]string{"uid:a": nil, "uid:b": nil, "uid:c": {"travel"}})
	if e.stats.Profiles != 1 {
		t.Errorf("loaded %d profiles, want 1", e.stats.Profiles)
	}
}

// TestLoadKeepsLapsedForTheSweep checks a restart after memberships lapsed without a
// sweep: they are not served, and the first sweep deletes them, from the store too. A
// profile whose memberships all lapsed must not come back as an empty profile that
// not-rules would match.
func TestLoadKeepsLapsedForTheSweep(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	e.define("notgold", "not crm:gold")
	e.importText("crm", segments.TSV, "uid:a\tgold\nuid:b\tgold\n")
	e.importText("web", segments.TSV, "uid:a\tx\n")

	e.clk.Set(t0.Add(90 * time.Minute))
	e = e.reopen()
	e.expectSizes(map[string]uint64{"gold": 0})
	e.expectServed(map[string][]string{"uid:a": nil, "uid:b": nil})
	if n := e.sweep(); n != 2 {
		t.Errorf("sweep after load touched %d profiles, want 2", n)
	}
	e.expectServed(map[string][]string{"uid:a": {"notgold"}, "uid:b": nil})
	e.expectSizes(map[string]uint64{"gold": 0, "notgold": 1})
	if _, ok := e.ix.LookupProfile(e.hash("uid:b"), e.clk.Now()); ok {
		t.Error("the profile whose memberships all lapsed survived the sweep")
	}

	e.clk.Set(t0)
	e = e.reopen()
	if n, _ := e.ix.Count("crm:gold"); n != 0 {
		t.Errorf("%d lapsed memberships survived the sweep in the store", n)
	}
	if e.stats.Profiles != 1 {
		t.Errorf("loaded %d profiles, want 1", e.stats.Profiles)
	}
}

func TestRemovalCodes(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	e.define("silver", "crm:silver")
	e.define("none", "not crm:gold and not crm:silver")
	e.importText("crm", segments.TSV, "uid:a\tgold,silver\nuid:b|uid:b2\tgold\n")
	res := e.importText("crm", segments.TSV,
		"uid:a\t-silver\nuid:b\t-gold\nuid:z\t-gold\nuid:a\t-unknown\n")
	checkResult(t, res, 4, nil)

	check := func(e *env) {
		t.Helper()
		e.expectServed(map[string][]string{
			"uid:a": {"gold"}, "uid:b": nil, "uid:b2": nil, "uid:z": nil,
		})
		e.expectSizes(map[string]uint64{"gold": 1, "silver": 0, "none": 0})
		if got := e.ix.Stats().Profiles; got != 1 {
			t.Errorf("%d profiles, want 1", got)
		}
	}
	check(e)
	check(e.reopen())
}

func TestReimportRefreshesTTL(t *testing.T) {
	e := newEnv(t) // crm's TTL is 1h
	e.define("gold", "crm:gold")
	e.importText("crm", segments.TSV, "uid:a\tgold\nuid:b\tgold\n")
	e.clk.Set(t0.Add(50 * time.Minute))
	e.importText("crm", segments.TSV, "uid:a\tgold\n")

	e.clk.Set(t0.Add(70 * time.Minute))
	if n := e.sweep(); n != 1 {
		t.Errorf("sweep touched %d profiles, want only b", n)
	}
	e.expectServed(map[string][]string{"uid:a": {"gold"}, "uid:b": nil})

	e = e.reopen()
	e.expectServed(map[string][]string{"uid:a": {"gold"}})
	p, _ := e.ix.LookupProfile(e.hash("uid:a"), e.clk.Now())
	if want := t0.Add(110 * time.Minute); len(p.Traits) != 1 || !p.Traits[0].Until.Equal(want) {
		t.Errorf("a after reload: %+v, want gold until %v", p, want)
	}

	e.clk.Set(t0.Add(2 * time.Hour))
	e.expectServed(map[string][]string{"uid:a": nil})
	if n := e.sweep(); n != 1 {
		t.Errorf("final sweep touched %d profiles, want 1", n)
	}
	e.expectSizes(map[string]uint64{"gold": 0})
}

func TestDefinitionsThroughStore(t *testing.T) {
	e := newEnv(t)
	e.define("base", "crm:gold")
	e.define("top", "segment:base")
	if err := e.db.DeleteSegment("base"); !errors.Is(err, segments.ErrInUse) {
		t.Errorf("delete referenced: %v, want ErrInUse", err)
	}
	err := e.db.PutSegment(segments.Segment{ID: "base", Name: "b", Rule: "segment:top"})
	if !errors.As(err, new(*segments.RuleError)) {
		t.Errorf("cycle: %v, want a *RuleError", err)
	}
	if err := e.db.DeleteSegment("top"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.DeleteSource("web"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.DeleteSource("web"); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("delete unknown source: %v, want ErrNotFound", err)
	}
	e = e.reopen()
	segs := e.ix.Segments()
	if len(segs) != 1 || segs[0].ID != "base" || segs[0].Rule != "crm:gold" {
		t.Errorf("segments after reload: %+v", segs)
	}
	if src := e.ix.Sources(); len(src) != 1 || src[0].ID != "crm" || src[0].TTL != time.Hour {
		t.Errorf("sources after reload: %+v", src)
	}
}
