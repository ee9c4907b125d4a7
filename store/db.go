package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// Config configures the store. The zero value of every field but Dir means its default.
type Config struct {
	// Dir is the Badger folder, created if missing. Required.
	Dir string
	// MemTableSize is the size of one Badger memtable in bytes; default 64 MiB.
	MemTableSize int64
	// BlockCacheSize is Badger's block cache in bytes; default 64 MiB.
	BlockCacheSize int64
	// SweepEvery is how often lapsed memberships are deleted; default 1s.
	SweepEvery time.Duration
	// GCEvery is how often Badger's value log is garbage-collected; default 10m.
	GCEvery time.Duration
	// EventSkew is how far in the future an event may be dated; default 5m.
	EventSkew time.Duration
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MemTableSize == 0 {
		c.MemTableSize = 64 << 20
	}
	if c.BlockCacheSize == 0 {
		c.BlockCacheSize = 64 << 20
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = time.Second
	}
	if c.GCEvery == 0 {
		c.GCEvery = 10 * time.Minute
	}
	if c.EventSkew == 0 {
		c.EventSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// DB is segd's durable store, bound to one Index that it keeps in step. Safe for
// concurrent use.
type DB struct {
	cfg     Config
	bdb     *badger.DB
	ix      *segments.Index
	log     *zap.Logger
	stop    chan struct{}
	records chan recordReq // see Record
	wg      sync.WaitGroup
	once    sync.Once
}

// ErrSecretChanged means the store was written with another ID secret: every stored ID
// would silently stop matching.
var ErrSecretChanged = errors.New(
	"the ID secret differs from the one this data folder was written with")

// Open opens or creates the Badger folder for ix. It checks that the folder was written
// with ix's ID secret. Call Load next.
func Open(cfg Config, ix *segments.Index, log *zap.Logger) (*DB, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open store: no data folder")
	}
	cfg.setDefaults()
	opts := badger.DefaultOptions(cfg.Dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log.Named("badger")}).
		WithMemTableSize(cfg.MemTableSize).
		WithBlockCacheSize(cfg.BlockCacheSize).
		WithNumVersionsToKeep(1)
	bdb, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", cfg.Dir, err)
	}
	db := &DB{cfg: cfg, bdb: bdb, ix: ix, log: log, stop: make(chan struct{}),
		records: make(chan recordReq, maxGroup)}
	if err := db.checkSecret(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %q: %w", cfg.Dir, err)
	}
	return db, nil
}

func (db *DB) checkSecret() error {
	want := binary.LittleEndian.AppendUint64(nil, db.ix.Hasher().Fingerprint())
	return db.bdb.Update(func(tx *badger.Txn) error {
		item, err := tx.Get(keyFingerprint)
		if errors.Is(err, badger.ErrKeyNotFound) {
			if err := tx.Set(keySchema, binary.LittleEndian.AppendUint32(nil, schemaVersion)); err != nil {
				return err
			}
			return tx.Set(keyFingerprint, want)
		}
		if err != nil {
			return err
		}
		return item.Value(func(got []byte) error {
			if string(got) != string(want) {
				return ErrSecretChanged
			}
			return nil
		})
	})
}

// Close stops the background work and closes Badger. It is safe to call more than once.
func (db *DB) Close() error {
	var err error
	db.once.Do(func() {
		close(db.stop)
		db.wg.Wait()
		if err = db.bdb.Close(); err != nil {
			err = fmt.Errorf("close store: %w", err)
		}
	})
	return err
}

// Apply persists t's changes durably, then commits t to the index. On a write error it
// rolls t back and the index is unchanged.
func (db *DB) Apply(t *segments.Txn) error {
	c := t.Changes()
	if c.Empty() {
		t.Commit()
		return nil
	}
	if grows(&c) {
		if err := db.checkSpace(); err != nil {
			t.Rollback()
			return err
		}
	}
	if err := db.write(&c); err != nil {
		t.Rollback()
		return err
	}
	t.Commit()
	return nil
}

func (db *DB) write(c *segments.Changes) error {
	wb := db.bdb.NewWriteBatch()
	defer wb.Cancel()
	var buf []byte
	for _, rec := range c.Profiles {
		buf = appendProfile(buf[:0], rec)
		val := append([]byte(nil), buf...)
		if err := wb.Set(ordinalKey(prefixProfile, rec.Profile), val); err != nil {
			return fmt.Errorf("write profile: %w", err)
		}
	}
	for _, p := range c.Deleted {
		if err := wb.Delete(ordinalKey(prefixProfile, p)); err != nil {
			return fmt.Errorf("delete profile: %w", err)
		}
	}
	for _, h := range c.Suppressed {
		if err := wb.Set(hashKey(prefixSuppress, h), []byte{}); err != nil {
			return fmt.Errorf("write suppressed id: %w", err)
		}
	}
	for _, tr := range c.Traits {
		if err := wb.Set(ordinalKey(prefixTrait, tr.Ordinal), []byte(tr.Name)); err != nil {
			return fmt.Errorf("write trait: %w", err)
		}
	}
	if err := db.writeDefinitions(wb, c); err != nil {
		return err
	}
	if err := wb.Set(keyNext, binary.LittleEndian.AppendUint32(nil, c.NextProfile)); err != nil {
		return fmt.Errorf("write next profile: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("flush batch: %w", err)
	}
	return nil
}

func (db *DB) writeDefinitions(wb *badger.WriteBatch, c *segments.Changes) error {
	for _, s := range c.PutSources {
		v, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("encode source: %w", err)
		}
		if err := wb.Set(nameKey(prefixSource, s.ID), v); err != nil {
			return fmt.Errorf("write source: %w", err)
		}
	}
	for _, id := range c.DeletedSources {
		if err := wb.Delete(nameKey(prefixSource, id)); err != nil {
			return fmt.Errorf("delete source: %w", err)
		}
	}
	for _, g := range c.PutSegments {
		v, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encode segment: %w", err)
		}
		if err := wb.Set(nameKey(prefixSegment, g.ID), v); err != nil {
			return fmt.Errorf("write segment: %w", err)
		}
	}
	for _, id := range c.DeletedSegments {
		if err := wb.Delete(nameKey(prefixSegment, id)); err != nil {
			return fmt.Errorf("delete segment: %w", err)
		}
	}
	return nil
}

type badgerLogger struct{ log *zap.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger error", zap.String("detail", fmt.Sprintf(f, a...)))
}

func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger warning", zap.String("detail", fmt.Sprintf(f, a...)))
}

func (l badgerLogger) Infof(f string, a ...any) {
	l.log.Debug("badger info", zap.String("detail", fmt.Sprintf(f, a...)))
}

func (l badgerLogger) Debugf(f string, a ...any) {
	l.log.Debug("badger debug", zap.String("detail", fmt.Sprintf(f, a...)))
}

// grows reports whether c adds data, as opposed to only deleting it: deletions and
// opt-outs must go through even on a nearly full disk.
func grows(c *segments.Changes) bool {
	return len(c.Profiles) > 0 || len(c.Traits) > 0 || len(c.PutSources) > 0 ||
		len(c.PutSegments) > 0
}

// checkSpace refuses a write while the data folder's file system has less free space than
// Badger may need to flush and rotate its files: Badger writes through memory-mapped
// files, and running out of space there kills the process rather than failing the write.
func (db *DB) checkSpace() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(db.cfg.Dir, &st); err != nil {
		return nil // cannot tell; let Badger try
	}
	free := st.Bavail * uint64(st.Bsize)
	if need := db.spaceReserve(); free < need {
		return fmt.Errorf("%w: %d MiB free in %s, %d MiB kept in reserve",
			segments.ErrNoSpace, free>>20, db.cfg.Dir, need>>20)
	}
	return nil
}

// spaceReserve is the free space below which writes are refused: two memtables and a
// margin for table and manifest files.
func (db *DB) spaceReserve() uint64 {
	return uint64(2*db.cfg.MemTableSize) + 8<<20
}
