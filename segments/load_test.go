package segments_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

func TestLoaderTraitConflicts(t *testing.T) {
	l := segments.New(testHasher, testProvider).NewLoader(t0)
	if err := l.Trait(0, "crm:a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Trait(3, "crm:b"); err != nil {
		t.Fatalf("a gap in the ordinals: %v", err)
	}
	if err := l.Trait(0, "crm:a"); err != nil {
		t.Errorf("the same trait twice: %v", err)
	}
	if err := l.Trait(0, "crm:c"); err == nil {
		t.Error("two names under one ordinal accepted")
	}
	if err := l.Trait(5, "crm:a"); err == nil {
		t.Error("one name under two ordinals accepted")
	}
	err := l.Profile(segments.ProfileRecord{Profile: 1, IDs: []uint64{uid("a")},
		Traits: []segments.Membership{{Trait: 1, Until: unix(t0) + 10}}})
	if err == nil || !strings.Contains(err.Error(), "unknown trait") {
		t.Errorf("profile with an unknown trait ordinal: %v", err)
	}
}

// stored returns a segment as the store keeps it: validated, so with its export ID set.
func stored(id, rule string) segments.Segment {
	return segments.Segment{ID: id, Name: id, Rule: rule, ExportID: id}
}

// TestLoaderSegmentOrder checks that segments load whatever order they come in, and that a
// reference to a missing segment fails the load.
func TestLoaderSegmentOrder(t *testing.T) {
	ix := newIndex()
	l := ix.NewLoader(t0)
	if err := l.Trait(0, "crm:gold"); err != nil {
		t.Fatal(err)
	}
	l.Segment(stored("top", "not segment:mid"))
	l.Segment(stored("mid", "segment:base"))
	l.Segment(stored("base", "crm:gold"))
	l.NextProfile(9)
	until := unix(t0.Add(time.Hour))
	for i, u := range []string{"a", "b"} {
		err := l.Profile(segments.ProfileRecord{Profile: uint32(i), IDs: []uint64{uid(u)},
			Traits: []segments.Membership{{Trait: 0, Until: until}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, ix, uid("a"), t0); !slices.Equal(got, []string{"base", "mid"}) {
		t.Errorf("a: served %v", got)
	}
	c := update(t, ix, t0, func(tx *segments.Txn) error {
		tx.Add(tx.Resolve([]uint64{uid("c")}), "web:x", until)
		return nil
	})
	if len(c.Profiles) != 1 || c.Profiles[0].Profile != 9 {
		t.Errorf("new profile after load: %+v, want ordinal 9", c.Profiles)
	}
	if got := served(t, ix, uid("c"), t0); !slices.Equal(got, []string{"top"}) {
		t.Errorf("c: served %v", got)
	}

	l = segments.New(testHasher, testProvider).NewLoader(t0)
	l.Segment(stored("orphan", "segment:gone"))
	if err := l.Finish(); err == nil {
		t.Error("a reference to a missing segment loaded")
	}
}
