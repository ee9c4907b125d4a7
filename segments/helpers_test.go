package segments_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/segments"
)

var (
	testHasher   = segments.NewHasher([]byte("segments test secret"))
	testProvider = segments.Provider{ID: "segd", Name: "segd test"}
	// t0 is the start of every test's clock, a multiple of a minute.
	t0 = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
)

// newIndex returns an empty index that serves.
func newIndex() *segments.Index {
	ix := segments.New(testHasher, testProvider)
	ix.MarkReady()
	return ix
}

func uid(v string) uint64 { return testHasher.Hash(segments.ID{Type: "uid", Value: v}) }

func ifa(v string) uint64 { return testHasher.Hash(segments.ID{Type: "ifa", Value: v}) }

func unix(t time.Time) uint32 { return uint32(t.Unix()) }

// update runs fn in a Txn at now and commits it, failing the test if fn fails. It returns
// the Txn's changes.
func update(t *testing.T, ix *segments.Index, now time.Time,
	fn func(*segments.Txn) error) segments.Changes {
	t.Helper()
	tx := ix.Begin(now)
	if err := fn(tx); err != nil {
		tx.Rollback()
		t.Fatalf("txn at %v: %v", now, err)
	}
	c := tx.Changes()
	tx.Commit()
	return c
}

// give links ids to one profile at now and gives it the traits until the given time.
func give(t *testing.T, ix *segments.Index, now, until time.Time, ids []uint64,
	traits ...string) {
	t.Helper()
	update(t, ix, now, func(tx *segments.Txn) error {
		p := tx.Resolve(ids)
		for _, tr := range traits {
			tx.Add(p, tr, unix(until))
		}
		return nil
	})
}

// define defines or redefines segment id with rule at now.
func define(t *testing.T, ix *segments.Index, now time.Time, id, rule string) {
	t.Helper()
	update(t, ix, now, func(tx *segments.Txn) error {
		return tx.PutSegment(segments.Segment{ID: id, Name: id, Rule: rule})
	})
}

// served returns the export IDs of the segments served for ID hash h at now, sorted. It
// reads the request path: Lookup, then the catalog's rendering.
func served(t *testing.T, ix *segments.Index, h uint64, now time.Time) []string {
	t.Helper()
	cat := ix.Catalog()
	slots := ix.Lookup(nil, cat, h, unix(now))
	if len(slots) == 0 {
		return nil
	}
	frag, _ := cat.AppendUserData(nil, slots)
	var data []struct {
		Segment []struct {
			ID string `json:"id"`
		} `json:"segment"`
	}
	if err := json.Unmarshal(append(append([]byte("["), frag...), ']'), &data); err != nil {
		t.Fatalf("user.data %s: %v", frag, err)
	}
	var out []string
	for _, d := range data {
		for _, s := range d.Segment {
			out = append(out, s.ID)
		}
	}
	slices.Sort(out)
	return out
}

// size returns the size of segment id, failing the test if it is not defined.
func size(t *testing.T, ix *segments.Index, id string) uint64 {
	t.Helper()
	info, ok := ix.Segment(id)
	if !ok {
		t.Fatalf("segment %q is not defined", id)
	}
	return info.Size
}

// traitNames returns the names of a profile's traits alive at the time it was looked up.
func traitNames(p segments.Profile) []string {
	var out []string
	for _, tr := range p.Traits {
		out = append(out, tr.Name)
	}
	slices.Sort(out)
	return out
}
