package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// LoadStats describes a rebuild of the index.
type LoadStats struct {
	Profiles int
	Traits   int
	Sources  int
	Segments int
	Took     time.Duration
	// Suppressed counts the opted-out ID hashes; Stale the profile records that still
	// held one, which are skipped and deleted.
	Suppressed int
	Stale      int
}

// Load rebuilds the index from the store, marks it ready, and starts the background sweeps
// that Close stops. It must be called once, before any write.
func (db *DB) Load(ctx context.Context) (LoadStats, error) {
	start := time.Now()
	var st LoadStats
	l := db.ix.NewLoader(db.cfg.Now())
	var stale []uint32
	err := db.bdb.View(func(tx *badger.Txn) error {
		steps := []func(context.Context, *badger.Txn, *segments.Loader, *LoadStats) error{
			loadMeta, loadTraits, loadDefinitions, loadSuppressed,
		}
		for _, step := range steps {
			if err := step(ctx, tx, l, &st); err != nil {
				return err
			}
		}
		return loadProfiles(ctx, tx, l, &st, &stale)
	})
	if err == nil {
		err = db.deleteStale(stale)
	}
	if err != nil {
		return st, fmt.Errorf("load index: %w", err)
	}
	if err := l.Finish(); err != nil {
		return st, fmt.Errorf("load index: %w", err)
	}
	db.ix.MarkReady()
	st.Took = time.Since(start)
	db.startBackground()
	return st, nil
}

func loadMeta(_ context.Context, tx *badger.Txn, l *segments.Loader, _ *LoadStats) error {
	item, err := tx.Get(keyNext)
	if err == badger.ErrKeyNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return item.Value(func(v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("bad %s value", keyNext)
		}
		l.NextProfile(binary.LittleEndian.Uint32(v))
		return nil
	})
}

func loadTraits(ctx context.Context, tx *badger.Txn, l *segments.Loader, st *LoadStats) error {
	return scan(ctx, tx, prefixTrait, func(k, v []byte) error {
		if len(k) != len(prefixTrait)+4 {
			return fmt.Errorf("bad trait key %q", k)
		}
		st.Traits++
		return l.Trait(binary.BigEndian.Uint32(k[len(prefixTrait):]), string(v))
	})
}

func loadDefinitions(ctx context.Context, tx *badger.Txn, l *segments.Loader, st *LoadStats) error {
	err := scan(ctx, tx, prefixSource, func(k, v []byte) error {
		var s segments.Source
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("source %q: %w", k, err)
		}
		st.Sources++
		l.Source(s)
		return nil
	})
	if err != nil {
		return err
	}
	return scan(ctx, tx, prefixSegment, func(k, v []byte) error {
		var g segments.Segment
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("segment %q: %w", k, err)
		}
		st.Segments++
		l.Segment(g)
		return nil
	})
}

// loadSuppressed registers the opted-out ID hashes; it must run before loadProfiles.
func loadSuppressed(ctx context.Context, tx *badger.Txn, l *segments.Loader, st *LoadStats) error {
	return scan(ctx, tx, prefixSuppress, func(k, _ []byte) error {
		if len(k) != len(prefixSuppress)+8 {
			return fmt.Errorf("bad suppressed id key %q", k)
		}
		st.Suppressed++
		l.Suppressed(binary.BigEndian.Uint64(k[len(prefixSuppress):]))
		return nil
	})
}

// loadProfiles registers every profile record, appending to stale the ordinals of those
// that hold a suppressed ID. Reading and decoding the records, and registering them with
// the index, run on two goroutines, so a rebuild uses two cores.
func loadProfiles(ctx context.Context, tx *badger.Txn, l *segments.Loader, st *LoadStats,
	stale *[]uint32) error {
	batches := make(chan []segments.ProfileRecord, 4)
	var regErr error
	var failed atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range batches {
			if regErr == nil {
				regErr = registerProfiles(batch, l, st, stale)
				failed.Store(regErr != nil)
			}
		}
	}()

	batch := make([]segments.ProfileRecord, 0, loadBatch)
	err := scan(ctx, tx, prefixProfile, func(k, v []byte) error {
		if failed.Load() {
			return errStopped
		}
		if len(k) != len(prefixProfile)+4 {
			return fmt.Errorf("bad profile key %q", k)
		}
		p := binary.BigEndian.Uint32(k[len(prefixProfile):])
		rec, err := decodeProfile(p, v)
		if err != nil {
			return fmt.Errorf("profile %d: %w", p, err)
		}
		if batch = append(batch, rec); len(batch) == loadBatch {
			batches <- batch
			batch = make([]segments.ProfileRecord, 0, loadBatch)
		}
		return nil
	})
	if !errors.Is(err, errStopped) {
		batches <- batch // registered first, so that an earlier bad record is the one named
	}
	close(batches)
	<-done
	if regErr != nil {
		return regErr
	}
	return err
}

// loadBatch is how many decoded profile records go from the reader to the index at once.
const loadBatch = 1024

// errStopped ends a scan whose records could not be registered; the registration error is
// the one reported.
var errStopped = errors.New("load stopped")

func registerProfiles(batch []segments.ProfileRecord, l *segments.Loader, st *LoadStats,
	stale *[]uint32) error {
	for _, rec := range batch {
		err := l.Profile(rec)
		switch {
		case errors.Is(err, segments.ErrOptedOut):
			st.Stale++
			*stale = append(*stale, rec.Profile)
			continue
		case err != nil:
			return err
		}
		st.Profiles++
	}
	return nil
}

// deleteStale deletes the profile records that held a suppressed ID. Only a store written
// out of order has them, such as one restored from a backup older than a deletion.
func (db *DB) deleteStale(stale []uint32) error {
	if len(stale) == 0 {
		return nil
	}
	wb := db.bdb.NewWriteBatch()
	defer wb.Cancel()
	for _, p := range stale {
		if err := wb.Delete(ordinalKey(prefixProfile, p)); err != nil {
			return fmt.Errorf("delete stale profile: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete stale profiles: %w", err)
	}
	db.log.Warn("deleted profiles that held opted-out ids", zap.Int("profiles", len(stale)))
	return nil
}

// scan calls fn for every key with prefix. k and v are valid only during the call.
func scan(ctx context.Context, tx *badger.Txn, prefix []byte, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := tx.NewIterator(opts)
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n++; n%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		err := item.Value(func(v []byte) error { return fn(item.Key(), v) })
		if err != nil {
			return err
		}
	}
	return nil
}

// startBackground runs the expiry sweep and value-log GC until Close.
func (db *DB) startBackground() {
	db.wg.Add(2)
	go db.commitRecords()
	go func() {
		defer db.wg.Done()
		sweep := time.NewTicker(db.cfg.SweepEvery)
		defer sweep.Stop()
		gc := time.NewTicker(db.cfg.GCEvery)
		defer gc.Stop()
		for {
			select {
			case <-db.stop:
				return
			case <-sweep.C:
				if _, err := db.Sweep(); err != nil {
					db.log.Warn("expiry sweep failed", zap.Error(err))
				}
			case <-gc.C:
				db.collectGarbage()
			}
		}
	}()
}

// Sweep deletes the memberships that have lapsed, and the profiles left with none, from
// the store and the index. It returns the number of profiles changed.
func (db *DB) Sweep() (int, error) {
	t := db.ix.Begin(db.cfg.Now())
	n := t.Expire()
	if err := db.Apply(t); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}

func (db *DB) collectGarbage() {
	start := time.Now()
	runs := 0
	for runs < 16 && db.bdb.RunValueLogGC(0.5) == nil {
		runs++
	}
	if runs > 0 {
		db.log.Info("value log collected", zap.Int("files", runs),
			zap.Duration("took", time.Since(start)))
	}
}
