package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// TestLoadDeletesStaleProfile writes what a store restored from a backup older than a
// deletion holds: a profile record that still names a suppressed ID. Load must neither
// serve it nor keep it.
func TestLoadDeletesStaleProfile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	hasher := segments.NewHasher([]byte("stale test secret"))
	kept := hasher.Hash(segments.ID{Type: "uid", Value: "kept"})
	gone := hasher.Hash(segments.ID{Type: "uid", Value: "gone"})
	other := hasher.Hash(segments.ID{Type: "uid", Value: "other"})

	open := func() (*DB, *segments.Index) {
		ix := segments.New(hasher, segments.Provider{ID: "segd"})
		db, err := Open(Config{Dir: dir, Now: func() time.Time { return now },
			SweepEvery: time.Hour, GCEvery: time.Hour, MemTableSize: 8 << 20,
			BlockCacheSize: 8 << 20}, ix, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, ix
	}
	db, _ := open()
	until := uint32(now.Add(time.Hour).Unix())
	err := db.bdb.Update(func(tx *badger.Txn) error {
		return errors.Join(
			tx.Set(ordinalKey(prefixTrait, 0), []byte("crm:gold")),
			tx.Set(ordinalKey(prefixProfile, 1), appendProfile(nil, segments.ProfileRecord{
				Profile: 1, IDs: []uint64{kept, gone},
				Traits: []segments.Membership{{Trait: 0, Until: until}}})),
			tx.Set(ordinalKey(prefixProfile, 2), appendProfile(nil, segments.ProfileRecord{
				Profile: 2, IDs: []uint64{other},
				Traits: []segments.Membership{{Trait: 0, Until: until}}})),
			tx.Set(hashKey(prefixSuppress, gone), nil),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, ix := open()
	st, err := db.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Profiles != 1 || st.Stale != 1 || st.Suppressed != 1 {
		t.Errorf("load: %+v, want 1 profile, 1 stale, 1 suppressed", st)
	}
	for _, h := range []uint64{kept, gone} {
		if _, ok := ix.LookupProfile(h, now); ok {
			t.Errorf("%x: stale profile loaded", h)
		}
	}
	if _, ok := ix.LookupProfile(other, now); !ok {
		t.Error("the other profile was not loaded")
	}
	err = db.bdb.View(func(tx *badger.Txn) error {
		_, err := tx.Get(ordinalKey(prefixProfile, 1))
		return err
	})
	if !errors.Is(err, badger.ErrKeyNotFound) {
		t.Errorf("stale record still stored: %v", err)
	}
	if ix.Stats().Profiles != 1 {
		t.Errorf("index holds %d profiles, want 1", ix.Stats().Profiles)
	}
}

// TestLoadNamesFirstBadRecord writes a record that names an unknown trait, then, further on,
// one that cannot be decoded: the load fails and names the first.
func TestLoadNamesFirstBadRecord(t *testing.T) {
	dir := t.TempDir()
	hasher := segments.NewHasher([]byte("bad record test secret"))
	open := func() *DB {
		db, err := Open(Config{Dir: dir, SweepEvery: time.Hour, GCEvery: time.Hour,
			MemTableSize: 8 << 20, BlockCacheSize: 8 << 20},
			segments.New(hasher, segments.Provider{ID: "segd"}), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	err := db.bdb.Update(func(tx *badger.Txn) error {
		return errors.Join(
			tx.Set(ordinalKey(prefixProfile, 5), appendProfile(nil, segments.ProfileRecord{
				Profile: 5, IDs: []uint64{1},
				Traits: []segments.Membership{{Trait: 7, Until: 1 << 31}}})),
			tx.Set(ordinalKey(prefixProfile, 10), []byte{0xff}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = open().Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "profile 5: unknown trait ordinal 7") {
		t.Errorf("load: %v, want the error of profile 5", err)
	}
}
