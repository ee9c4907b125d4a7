package segments_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

// TestDeleteWholeProfile deletes a profile through one of its three IDs and checks that
// all three are unlinked and suppressed, and that nothing links them again.
func TestDeleteWholeProfile(t *testing.T) {
	ix := newIndex()
	define(t, ix, t0, "gold", "crm:gold")
	ids := []uint64{uid("a"), uid("b"), ifa("c")}
	give(t, ix, t0, t0.Add(time.Hour), ids, "crm:gold")
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("other")}, "crm:gold")

	var deleted int
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		deleted = tx.Delete([]uint64{uid("b")})
		return nil
	})
	if deleted != 1 || len(c.Deleted) != 1 || len(c.Profiles) != 0 {
		t.Fatalf("deleted %d, changes %+v, want one profile deleted", deleted, c)
	}
	if got := sorted(c.Suppressed); !slices.Equal(got, sorted(ids)) {
		t.Errorf("suppressed %x, want every ID of the profile %x", got, sorted(ids))
	}
	for _, h := range ids {
		if got := served(t, ix, h, t0); got != nil {
			t.Errorf("%x: served %v after deletion", h, got)
		}
		if _, ok := ix.LookupProfile(h, t0); ok {
			t.Errorf("%x: profile still found", h)
		}
	}
	if n := size(t, ix, "gold"); n != 1 {
		t.Errorf("segment size %d, want 1 (the other profile)", n)
	}
	if got := served(t, ix, uid("other"), t0); !slices.Equal(got, []string{"gold"}) {
		t.Errorf("another profile lost its segments: %v", got)
	}

	c = update(t, ix, t0, func(tx *segments.Txn) error {
		for _, h := range ids {
			p := tx.Resolve([]uint64{h})
			if p != segments.NoProfile {
				t.Errorf("%x: resolved to profile %d after deletion", h, p)
			}
			tx.Add(p, "crm:gold", unix(t0.Add(time.Hour)))
			tx.AddEvent(p, "web:visit", segments.Day(unix(t0)))
			tx.Remove(p, "crm:gold")
		}
		return nil
	})
	if !c.Empty() {
		t.Errorf("writes for suppressed IDs changed something: %+v", c)
	}
	if got := served(t, ix, uid("a"), t0); got != nil {
		t.Errorf("served %v after re-adding", got)
	}
}

// TestDeleteUnknownID suppresses an ID that no profile holds yet: an opt-out that arrives
// before the data.
func TestDeleteUnknownID(t *testing.T) {
	ix := newIndex()
	var deleted int
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		deleted = tx.Delete([]uint64{uid("early"), uid("early")})
		return nil
	})
	if deleted != 0 || !slices.Equal(c.Suppressed, []uint64{uid("early")}) || c.Empty() {
		t.Fatalf("deleted %d, suppressed %x: want 0 and the ID once", deleted, c.Suppressed)
	}
	c = update(t, ix, t0, func(tx *segments.Txn) error {
		if n := tx.Delete([]uint64{uid("early")}); n != 0 {
			t.Errorf("second delete: %d profiles", n)
		}
		return nil
	})
	if len(c.Suppressed) != 0 {
		t.Errorf("suppressed again: %x", c.Suppressed)
	}

	// A line naming the suppressed ID and a fresh one links only the fresh one.
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("early"), uid("fresh")}, "crm:gold")
	p, ok := ix.LookupProfile(uid("fresh"), t0)
	if !ok || p.IDs != 1 {
		t.Errorf("fresh ID: profile %+v found %v, want one ID linked", p, ok)
	}
	if _, ok := ix.LookupProfile(uid("early"), t0); ok {
		t.Error("suppressed ID linked")
	}
}

// TestDeleteInSameTxn deletes a profile created earlier in the same Txn, before it was
// ever published, and one that a merge in that Txn grew.
func TestDeleteInSameTxn(t *testing.T) {
	ix := newIndex()
	give(t, ix, t0, t0.Add(time.Hour), []uint64{uid("old")}, "crm:gold")
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		p := tx.Resolve([]uint64{uid("new")})
		tx.Add(p, "crm:gold", unix(t0.Add(time.Hour)))
		q := tx.Resolve([]uint64{uid("x"), uid("old")})
		tx.Add(q, "crm:silver", unix(t0.Add(time.Hour)))
		if n := tx.Delete([]uint64{uid("new"), uid("x")}); n != 2 {
			t.Errorf("deleted %d profiles, want 2", n)
		}
		return nil
	})
	if len(c.Profiles) != 0 {
		t.Errorf("profiles still written: %+v", c.Profiles)
	}
	want := sorted([]uint64{uid("new"), uid("x"), uid("old")})
	if got := sorted(c.Suppressed); !slices.Equal(got, want) {
		t.Errorf("suppressed %x, want %x", got, want)
	}
	for _, id := range []string{"new", "x", "old"} {
		if _, ok := ix.LookupProfile(uid(id), t0); ok {
			t.Errorf("%s: still linked", id)
		}
	}
	if st := ix.Stats(); st.Profiles != 0 {
		t.Errorf("%d profiles left, want 0", st.Profiles)
	}
}

// TestLoaderRefusesSuppressed checks the defence in depth at start-up: a persisted profile
// that holds a suppressed ID is refused, and its ordinal is not reused.
func TestLoaderRefusesSuppressed(t *testing.T) {
	ix := newIndex()
	l := ix.NewLoader(t0)
	if err := l.Trait(0, "crm:gold"); err != nil {
		t.Fatal(err)
	}
	l.Suppressed(uid("gone"))
	until := unix(t0.Add(time.Hour))
	err := l.Profile(segments.ProfileRecord{Profile: 4, IDs: []uint64{uid("kept"), uid("gone")},
		Traits: []segments.Membership{{Trait: 0, Until: until}}})
	if !errors.Is(err, segments.ErrOptedOut) {
		t.Fatalf("profile with a suppressed ID: %v, want ErrOptedOut", err)
	}
	if err := l.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.LookupProfile(uid("kept"), t0); ok {
		t.Error("refused profile loaded")
	}
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		if p := tx.Resolve([]uint64{uid("gone")}); p != segments.NoProfile {
			t.Errorf("suppressed ID resolved to %d", p)
		}
		if p := tx.Resolve([]uint64{uid("new")}); p <= 4 {
			t.Errorf("new profile %d reuses a refused ordinal", p)
		}
		return nil
	})
	if c.NextProfile != 6 {
		t.Errorf("next profile %d, want 6", c.NextProfile)
	}
}

func sorted(s []uint64) []uint64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
