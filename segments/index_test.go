package segments_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// rulesFixture is a small world: four profiles and five segments over their traits.
var rulesFixture = struct {
	profiles map[string][]string // uid -> traits
	segments [][2]string         // id, rule; in definition order
	want     map[string][]string // uid -> segments served
}{
	profiles: map[string][]string{
		"a": {"crm:gold"},
		"b": {"web:geo=london"},
		"c": {"crm:gold", "web:geo=london"},
		"d": {"crm:vip"},
	},
	segments: [][2]string{
		{"gold", "crm:gold"},
		{"both", "crm:gold and web:geo=london"},
		{"either", "crm:gold or web:geo=london"},
		{"notgold", "not crm:gold"},
		{"ref", "segment:both or (crm:vip and not segment:gold)"},
	},
	want: map[string][]string{
		"a": {"either", "gold"},
		"b": {"either", "notgold"},
		"c": {"both", "either", "gold", "ref"},
		"d": {"notgold", "ref"},
	},
}

// TestIndexRules checks memberships whether segments are defined before the data, so that
// commits evaluate them profile by profile, or after it, so that definitions evaluate them
// over bitmaps.
func TestIndexRules(t *testing.T) {
	for _, order := range []string{"segments first", "data first"} {
		t.Run(order, func(t *testing.T) {
			ix := newIndex()
			until := t0.Add(time.Hour)
			defineAll := func() {
				for _, s := range rulesFixture.segments {
					define(t, ix, t0, s[0], s[1])
				}
			}
			if order == "segments first" {
				defineAll()
			}
			for u, traits := range rulesFixture.profiles {
				give(t, ix, t0, until, []uint64{uid(u)}, traits...)
			}
			if order == "data first" {
				defineAll()
			}
			checkFixture(t, ix, t0)
		})
	}
}

func checkFixture(t *testing.T, ix *segments.Index, now time.Time) {
	t.Helper()
	sizes := map[string]uint64{}
	for u, want := range rulesFixture.want {
		if got := served(t, ix, uid(u), now); !slices.Equal(got, want) {
			t.Errorf("profile %s: served %v, want %v", u, got, want)
		}
		p, ok := ix.LookupProfile(uid(u), now)
		if !ok {
			t.Fatalf("profile %s not found", u)
		}
		slices.Sort(p.Segments)
		if !slices.Equal(p.Segments, want) {
			t.Errorf("profile %s: LookupProfile segments %v, want %v", u, p.Segments, want)
		}
		for _, s := range want {
			sizes[s]++
		}
	}
	for _, s := range rulesFixture.segments {
		if got := size(t, ix, s[0]); got != sizes[s[0]] {
			t.Errorf("segment %s: size %d, want %d", s[0], got, sizes[s[0]])
		}
		if got, err := ix.Count(s[1]); err != nil || got != sizes[s[0]] {
			t.Errorf("Count(%q) = %d, %v; want %d", s[1], got, err, sizes[s[0]])
		}
	}
}

func TestIndexUnknownID(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "all", "not crm:gold")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("known")}, "web:x")
	if got := served(t, ix, uid("stranger"), t0); got != nil {
		t.Errorf("unknown ID served %v", got)
	}
	if _, ok := ix.LookupProfile(uid("stranger"), t0); ok {
		t.Error("unknown ID has a profile")
	}
}

func TestIndexNotReady(t *testing.T) {
	ix := segments.New(testHasher, testProvider)
	define(t, ix, t0, "web", "web:x")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("a")}, "web:x")
	if got := ix.Lookup(nil, ix.Catalog(), uid("a"), unix(t0)); len(got) != 0 {
		t.Errorf("index not ready: Lookup = %v", got)
	}
	ix.MarkReady()
	if got := served(t, ix, uid("a"), t0); !slices.Equal(got, []string{"web"}) {
		t.Errorf("ready index: served %v", got)
	}
}

func TestIndexRedefinitionUpdatesDependents(t *testing.T) {
	ix := newIndex()
	until := t0.Add(time.Hour)
	give(t, ix, t0, until, []uint64{uid("a")}, "crm:gold", "web:geo=london")
	give(t, ix, t0, until, []uint64{uid("b")}, "crm:vip", "web:geo=london")
	give(t, ix, t0, until, []uint64{uid("c")}, "crm:vip")
	define(t, ix, t0, "base", "crm:gold")
	define(t, ix, t0, "top", "segment:base and web:geo=london")
	define(t, ix, t0, "outer", "not segment:top")

	check := func(step string, want map[string][]string) {
		t.Helper()
		for u, w := range want {
			if got := served(t, ix, uid(u), t0); !slices.Equal(got, w) {
				t.Errorf("%s: profile %s served %v, want %v", step, u, got, w)
			}
		}
	}
	check("before", map[string][]string{
		"a": {"base", "top"}, "b": {"outer"}, "c": {"outer"},
	})

	define(t, ix, t0, "base", "crm:vip")
	check("after redefining base", map[string][]string{
		"a": {"outer"}, "b": {"base", "top"}, "c": {"base", "outer"},
	})
	if got := size(t, ix, "top"); got != 1 {
		t.Errorf("top: size %d, want 1", got)
	}

	// The redefined trait set must also drive later changes of a single profile.
	give(t, ix, t0, until, []uint64{uid("c")}, "web:geo=london")
	check("after c moves to london", map[string][]string{"c": {"base", "top"}})
	if got := size(t, ix, "outer"); got != 1 {
		t.Errorf("outer: size %d, want 1", got)
	}
}

func TestIndexRuleErrors(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "a", "crm:x")
	define(t, ix, t0, "b", "segment:a or crm:y")
	define(t, ix, t0, "c", "not segment:b")

	tests := []struct {
		name, id, rule string
		col            int
	}{
		{"self reference of a new segment", "d", "segment:d", 1},
		{"self reference", "a", "crm:x or segment:a", 10},
		{"two-step cycle", "a", "segment:b", 1},
		{"three-step cycle", "a", "crm:z and segment:c", 11},
		{"unknown segment", "d", "crm:x and segment:nope", 11},
		{"window past retention", "d", "web:x in 181d", 1},
		{"syntax", "d", "crm:x and", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := ix.Begin(t0)
			err := tx.PutSegment(segments.Segment{ID: tt.id, Name: tt.id, Rule: tt.rule})
			tx.Rollback()
			var re *segments.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("PutSegment(%s = %q) error = %v, want a *RuleError", tt.id, tt.rule, err)
			}
			if re.Col != tt.col {
				t.Errorf("error %q at column %d, want %d", re, re.Col, tt.col)
			}
		})
	}
	if info, _ := ix.Segment("a"); info.Rule != "crm:x" {
		t.Errorf("a rejected redefinition changed the rule to %q", info.Rule)
	}
	if _, ok := ix.Segment("d"); ok {
		t.Error("a rejected segment was defined")
	}
	if _, err := ix.Count("crm:x and segment:nope"); !errors.As(err, new(*segments.RuleError)) {
		t.Errorf("Count of an unknown segment: %v, want a *RuleError", err)
	}
}

func TestIndexDeleteSegment(t *testing.T) {
	ix := newIndex()
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("a")}, "crm:x")
	define(t, ix, t0, "base", "crm:x")
	define(t, ix, t0, "top", "segment:base")
	deleteSeg := func(id string) error {
		tx := ix.Begin(t0)
		defer tx.Commit()
		return tx.DeleteSegment(id)
	}

	if err := deleteSeg("base"); !errors.Is(err, segments.ErrInUse) {
		t.Errorf("delete a referenced segment: %v, want ErrInUse", err)
	}
	if err := deleteSeg("nope"); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("delete an unknown segment: %v, want ErrNotFound", err)
	}
	if got := served(t, ix, uid("a"), t0); !slices.Equal(got, []string{"base", "top"}) {
		t.Fatalf("served %v after refused deletes", got)
	}
	if err := deleteSeg("top"); err != nil {
		t.Fatalf("delete top: %v", err)
	}
	if err := deleteSeg("base"); err != nil {
		t.Fatalf("delete base once unreferenced: %v", err)
	}
	if got := served(t, ix, uid("a"), t0); got != nil {
		t.Errorf("served %v after deleting every segment", got)
	}
	if got := ix.Segments(); len(got) != 0 {
		t.Errorf("segments left: %v", got)
	}

	// A new segment reuses a freed slot and must not inherit the old members.
	define(t, ix, t0, "fresh", "crm:y")
	if got := served(t, ix, uid("a"), t0); got != nil {
		t.Errorf("served %v from a reused slot", got)
	}
}

func TestIndexMerge(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "gold", "crm:gold")
	define(t, ix, t0, "londongold", "crm:gold and web:geo=london")
	define(t, ix, t0, "vip", "crm:vip")
	give(t, ix, t0, t0.Add(2*time.Hour), []uint64{uid("a")}, "crm:gold")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{ifa("b"), uid("b2")}, "web:geo=london",
		"crm:gold")
	if got := size(t, ix, "gold"); got != 2 {
		t.Fatalf("gold: size %d before the merge, want 2", got)
	}

	// One line names uid:a and ifa:b, which belong to two profiles.
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		p := tx.Resolve([]uint64{uid("a"), ifa("b"), uid("new")})
		tx.Add(p, "crm:vip", unix(t0.Add(3*time.Hour)))
		return nil
	})
	if len(c.Deleted) != 1 || len(c.Profiles) != 1 || len(c.Profiles[0].IDs) != 4 {
		t.Errorf("changes: %d deleted, profiles %+v; want 1 deleted and one profile of 4 IDs",
			len(c.Deleted), c.Profiles)
	}

	var first segments.Profile
	for i, h := range []uint64{uid("a"), ifa("b"), uid("b2"), uid("new")} {
		p, ok := ix.LookupProfile(h, t0)
		if !ok {
			t.Fatalf("ID %d has no profile after the merge", i)
		}
		if i == 0 {
			first = p
		}
		if p.Profile != first.Profile || p.IDs != 4 {
			t.Errorf("ID %d: profile %d with %d IDs, want %d with 4", i, p.Profile, p.IDs,
				first.Profile)
		}
		want := []string{"gold", "londongold", "vip"}
		if got := served(t, ix, h, t0); !slices.Equal(got, want) {
			t.Errorf("ID %d: served %v, want %v", i, got, want)
		}
	}
	wantTraits := []string{"crm:gold", "crm:vip", "web:geo=london"}
	if got := traitNames(first); !slices.Equal(got, wantTraits) {
		t.Errorf("merged traits %v, want %v", got, wantTraits)
	}
	for _, tr := range first.Traits {
		if tr.Name == "crm:gold" && !tr.Until.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("crm:gold lasts until %v, want the later of both, %v", tr.Until,
				t0.Add(2*time.Hour))
		}
	}
	for id, want := range map[string]uint64{"gold": 1, "londongold": 1, "vip": 1} {
		if got := size(t, ix, id); got != want {
			t.Errorf("%s: size %d after the merge, want %d", id, got, want)
		}
	}
	if got := ix.Stats().Profiles; got != 1 {
		t.Errorf("%d profiles after the merge, want 1", got)
	}
	// The london trait of the merged-away profile lapses first; gold stays.
	if got := served(t, ix, uid("a"), t0.Add(90*time.Minute)); !slices.Equal(got,
		[]string{"gold", "vip"}) {
		t.Errorf("after london lapsed: served %v", got)
	}
}

func TestIndexExpiry(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "gold", "crm:gold")
	define(t, ix, t0, "web", "web:x")
	define(t, ix, t0, "both", "crm:gold or web:x")
	give(t, ix, t0, t0.Add(100*time.Second), []uint64{uid("short")}, "crm:gold")
	give(t, ix, t0, t0.Add(100*time.Second), []uint64{uid("mixed")}, "crm:gold")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("mixed")}, "web:x")

	before, at := t0.Add(99*time.Second), t0.Add(100*time.Second)
	if got := served(t, ix, uid("short"), before); !slices.Equal(got, []string{"both", "gold"}) {
		t.Errorf("a second before expiry: served %v", got)
	}
	if got := served(t, ix, uid("short"), at); got != nil {
		t.Errorf("at expiry, before any sweep: served %v", got)
	}
	if got := served(t, ix, uid("mixed"), at); !slices.Equal(got, []string{"both", "web"}) {
		t.Errorf("mixed at expiry: served %v", got)
	}
	if p, _ := ix.LookupProfile(uid("short"), at); len(p.Traits)+len(p.Segments) != 0 {
		t.Errorf("lapsed profile explained with %+v", p)
	}

	expire := func(now time.Time) int {
		tx := ix.Begin(now)
		defer tx.Commit()
		return tx.Expire()
	}
	if n := expire(before); n != 0 {
		t.Errorf("Expire before expiry touched %d profiles", n)
	}
	if n := expire(t0.Add(2 * time.Minute)); n != 2 {
		t.Errorf("Expire touched %d profiles, want 2", n)
	}
	if _, ok := ix.LookupProfile(uid("short"), before); ok {
		t.Error("the emptied profile still exists")
	}
	p, ok := ix.LookupProfile(uid("mixed"), before)
	if !ok || !slices.Equal(traitNames(p), []string{"web:x"}) {
		t.Errorf("mixed after Expire: %v %+v, want only web:x", ok, p)
	}
	if got := served(t, ix, uid("mixed"), before); !slices.Equal(got, []string{"both", "web"}) {
		t.Errorf("mixed after Expire: served %v", got)
	}
	for id, want := range map[string]uint64{"gold": 0, "web": 1, "both": 1} {
		if got := size(t, ix, id); got != want {
			t.Errorf("%s: size %d after Expire, want %d", id, got, want)
		}
	}
	if got := ix.Stats().Profiles; got != 1 {
		t.Errorf("%d profiles after Expire, want 1", got)
	}
	if n := expire(t0.Add(3 * time.Minute)); n != 0 {
		t.Errorf("a second Expire touched %d profiles", n)
	}
}

// TestIndexExpireCountsProfiles checks that a profile whose memberships lapse in several
// buckets counts once.
func TestIndexExpireCountsProfiles(t *testing.T) {
	ix := newIndex()
	update(t, ix, t0, func(tx *segments.Txn) error {
		p := tx.Resolve([]uint64{uid("a")})
		tx.Add(p, "crm:a", unix(t0.Add(100*time.Second)))
		tx.Add(p, "crm:b", unix(t0.Add(200*time.Second)))
		tx.Add(p, "crm:c", unix(t0.Add(time.Hour)))
		tx.Add(tx.Resolve([]uint64{uid("b")}), "crm:a", unix(t0.Add(300*time.Second)))
		return nil
	})
	tx := ix.Begin(t0.Add(10 * time.Minute))
	n := tx.Expire()
	tx.Commit()
	if n != 2 {
		t.Errorf("Expire touched %d profiles, want 2", n)
	}
	p, ok := ix.LookupProfile(uid("a"), t0)
	if !ok || !slices.Equal(traitNames(p), []string{"crm:c"}) {
		t.Errorf("a after Expire: %v %+v, want only crm:c", ok, p)
	}
}

// TestIndexExpireRollback checks that a rolled-back sweep, as after a failed write, leaves
// the lapsed memberships for the next sweep.
func TestIndexExpireRollback(t *testing.T) {
	ix := newIndex()
	give(t, ix, t0, t0.Add(time.Second), []uint64{uid("a")}, "crm:gold")
	later := t0.Add(time.Minute)

	tx := ix.Begin(later)
	if n := tx.Expire(); n != 1 {
		t.Fatalf("Expire touched %d profiles, want 1", n)
	}
	tx.Rollback()
	if _, ok := ix.LookupProfile(uid("a"), t0); !ok {
		t.Fatal("rolled-back Expire removed the profile")
	}

	tx = ix.Begin(later)
	n := tx.Expire()
	tx.Commit()
	if n != 1 {
		t.Errorf("Expire after a rollback touched %d profiles, want 1", n)
	}
	if _, ok := ix.LookupProfile(uid("a"), t0); ok {
		t.Error("profile survived the second Expire")
	}
}

func TestIndexRefreshTTL(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "gold", "crm:gold")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("a")}, "crm:gold")
	give(t, ix, t0.Add(30*time.Minute), t0.Add(2*time.Hour), []uint64{uid("a")}, "crm:gold")

	tx := ix.Begin(t0.Add(90 * time.Minute))
	n := tx.Expire()
	tx.Commit()
	if n != 0 {
		t.Errorf("Expire after a refresh touched %d profiles", n)
	}
	if got := served(t, ix, uid("a"), t0.Add(90*time.Minute)); !slices.Equal(got,
		[]string{"gold"}) {
		t.Errorf("after the first expiry: served %v, want the refreshed gold", got)
	}
	if got := served(t, ix, uid("a"), t0.Add(2*time.Hour)); got != nil {
		t.Errorf("after the refreshed expiry: served %v", got)
	}
}

// TestIndexNotRulesForNewProfiles checks that a profile arriving with traits a not-rule does
// not mention still joins it.
func TestIndexNotRulesForNewProfiles(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "notgold", "not crm:gold")
	define(t, ix, t0, "notgoldref", "segment:notgold and not crm:vip")
	until := t0.Add(time.Hour)
	give(t, ix, t0, until, []uint64{uid("a")}, "web:x")
	give(t, ix, t0, until, []uint64{uid("b")}, "crm:gold")
	give(t, ix, t0, until, []uint64{uid("c")}, "crm:vip")

	want := map[string][]string{"a": {"notgold", "notgoldref"}, "b": nil, "c": {"notgold"}}
	for u, w := range want {
		if got := served(t, ix, uid(u), t0); !slices.Equal(got, w) {
			t.Errorf("profile %s: served %v, want %v", u, got, w)
		}
	}

	give(t, ix, t0, until, []uint64{uid("a")}, "crm:gold")
	if got := served(t, ix, uid("a"), t0); got != nil {
		t.Errorf("a after gaining gold: served %v", got)
	}
	if got := size(t, ix, "notgold"); got != 1 {
		t.Errorf("notgold: size %d, want 1", got)
	}
}

// TestIndexEmptyProfiles checks that a profile left without memberships does not linger:
// an import line that only removes codes from an unknown ID creates nothing, and removing
// the last code deletes the profile, as expiry does.
func TestIndexEmptyProfiles(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "notgold", "not crm:gold")
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		p := tx.Resolve([]uint64{uid("a")})
		tx.Remove(p, "crm:gold")
		return nil
	})
	if len(c.Profiles) != 0 {
		t.Errorf("a removal for an unknown ID persists %+v", c.Profiles)
	}
	if _, ok := ix.LookupProfile(uid("a"), t0); ok {
		t.Error("a removal for an unknown ID created a profile")
	}
	if got := size(t, ix, "notgold"); got != 0 {
		t.Errorf("notgold: size %d, want 0", got)
	}

	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("b"), uid("b2")}, "crm:vip")
	c = update(t, ix, t0, func(tx *segments.Txn) error {
		tx.Remove(tx.Resolve([]uint64{uid("b")}), "crm:vip")
		return nil
	})
	if len(c.Deleted) != 1 || len(c.Profiles) != 0 {
		t.Errorf("removing the last code: changes %+v, want one deleted profile", c)
	}
	for _, h := range []uint64{uid("b"), uid("b2")} {
		if _, ok := ix.LookupProfile(h, t0); ok {
			t.Error("a profile without memberships is still linked")
		}
	}
	if got := ix.Stats().Profiles; got != 0 {
		t.Errorf("%d profiles, want 0", got)
	}

	// The IDs are free for a new profile.
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("b2")}, "web:x")
	if got := served(t, ix, uid("b2"), t0); !slices.Equal(got, []string{"notgold"}) {
		t.Errorf("new profile: served %v", got)
	}
	if _, ok := ix.LookupProfile(uid("b"), t0); ok {
		t.Error("an unlinked ID came back with the new profile")
	}
}

func TestIndexCampaignWindow(t *testing.T) {
	ix := newIndex()
	from, until := t0.Add(time.Hour), t0.Add(2*time.Hour)
	update(t, ix, t0, func(tx *segments.Txn) error {
		return tx.PutSegment(segments.Segment{ID: "promo", Name: "promo", Rule: "crm:gold",
			ExportID: "P1", ActiveFrom: from, ActiveUntil: until})
	})
	update(t, ix, t0, func(tx *segments.Txn) error {
		return tx.PutSegment(segments.Segment{ID: "opening", Name: "opening",
			Rule: "crm:gold", ActiveFrom: from})
	})
	update(t, ix, t0, func(tx *segments.Txn) error {
		return tx.PutSegment(segments.Segment{ID: "closing", Name: "closing",
			Rule: "crm:gold", ActiveUntil: until})
	})
	give(t, ix, t0, t0.Add(24*time.Hour), []uint64{uid("a")}, "crm:gold")

	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"before", t0, []string{"closing"}},
		{"a second before", from.Add(-time.Second), []string{"closing"}},
		{"opening second", from, []string{"P1", "closing", "opening"}},
		{"last second", until.Add(-time.Second), []string{"P1", "closing", "opening"}},
		{"closing second", until, []string{"opening"}},
		{"after", until.Add(time.Hour), []string{"opening"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := served(t, ix, uid("a"), tt.at); !slices.Equal(got, tt.want) {
				t.Errorf("served %v, want %v", got, tt.want)
			}
		})
	}
	if got := size(t, ix, "promo"); got != 1 {
		t.Errorf("promo: size %d outside its window, want 1", got)
	}
}

func TestTxnChanges(t *testing.T) {
	ix := newIndex()
	until := unix(t0.Add(time.Hour))
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		p := tx.Resolve([]uint64{uid("a"), ifa("a")})
		tx.Add(p, "crm:gold", until)
		tx.Add(p, "crm:vip", until)
		q := tx.Resolve([]uint64{uid("b")})
		tx.Add(q, "crm:gold", until)
		return nil
	})
	if len(c.Profiles) != 2 || c.NextProfile != 2 || len(c.Deleted) != 0 {
		t.Fatalf("changes %+v, want two new profiles", c)
	}
	if got := c.Profiles[0]; len(got.IDs) != 2 || len(got.Traits) != 2 ||
		got.Traits[0].Until != until {
		t.Errorf("first profile record %+v", got)
	}
	var names []string
	for _, tr := range c.Traits {
		names = append(names, tr.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"crm:gold", "crm:vip"}) {
		t.Errorf("new traits %v, want each once", names)
	}

	c = update(t, ix, t0, func(tx *segments.Txn) error {
		tx.Add(tx.Resolve([]uint64{uid("c")}), "crm:gold", until)
		return nil
	})
	if len(c.Traits) != 0 || c.NextProfile != 3 {
		t.Errorf("second txn: traits %v, next %d; want no new trait and next 3", c.Traits,
			c.NextProfile)
	}

	tx := ix.Begin(t0)
	if c := tx.Changes(); !c.Empty() {
		t.Errorf("empty txn changes %+v", c)
	}
	tx.Add(tx.Resolve([]uint64{uid("d")}), "crm:gold", until)
	tx.Rollback()
	if _, ok := ix.LookupProfile(uid("d"), t0); ok {
		t.Error("rolled-back profile exists")
	}
}

func TestTxnSources(t *testing.T) {
	ix := newIndex()
	src := segments.Source{ID: "crm", Name: "CRM", Party: segments.FirstParty, TTL: time.Hour}
	update(t, ix, t0, func(tx *segments.Txn) error { return tx.PutSource(src) })
	if got, ok := ix.Source("crm"); !ok || !reflect.DeepEqual(got, src) {
		t.Errorf("Source(crm) = %+v, %v", got, ok)
	}
	tx := ix.Begin(t0)
	err := tx.PutSource(segments.Source{ID: "Bad!"})
	tx.Rollback()
	if err == nil {
		t.Error("invalid source accepted")
	}
	update(t, ix, t0, func(tx *segments.Txn) error { return tx.DeleteSource("crm") })
	if len(ix.Sources()) != 0 {
		t.Errorf("sources after delete: %v", ix.Sources())
	}
	tx = ix.Begin(t0)
	err = tx.DeleteSource("crm")
	tx.Rollback()
	if !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("delete unknown source: %v, want ErrNotFound", err)
	}
}
