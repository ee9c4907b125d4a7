package store_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// t0 starts every test's clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)

const testSecret = "store test secret"

// clock is an injected clock, safe for concurrent use, that only moves when told to.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// env is an open store with its index, as segd serve holds them.
type env struct {
	t      *testing.T
	dir    string
	secret string
	clk    *clock
	db     *store.DB
	ix     *segments.Index
	stats  store.LoadStats
}

// openEnv opens and loads the store in dir. Background sweeps are pushed far out so that
// only the test sweeps.
func openEnv(t *testing.T, dir, secret string, clk *clock) *env {
	t.Helper()
	e, err := tryOpen(t, dir, secret, clk)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tryOpen(t *testing.T, dir, secret string, clk *clock) (*env, error) {
	t.Helper()
	ix := segments.New(segments.NewHasher([]byte(secret)), segments.Provider{ID: "segd"})
	cfg := store.Config{Dir: dir, Now: clk.Now, SweepEvery: 1000 * time.Hour,
		GCEvery: 1000 * time.Hour, MemTableSize: 8 << 20, BlockCacheSize: 8 << 20}
	db, err := store.Open(cfg, ix, zap.NewNop())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { db.Close() })
	st, err := db.Load(context.Background())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return &env{t: t, dir: dir, secret: secret, clk: clk, db: db, ix: ix, stats: st}, nil
}

// newEnv opens a fresh store with the sources crm (TTL 1h) and web (TTL 2h).
func newEnv(t *testing.T) *env {
	t.Helper()
	e := openEnv(t, t.TempDir(), testSecret, newClock(t0))
	e.source("crm", time.Hour)
	e.source("web", 2*time.Hour)
	return e
}

// reopen closes the store and opens it again with a new, empty index.
func (e *env) reopen() *env {
	e.t.Helper()
	if err := e.db.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	return openEnv(e.t, e.dir, e.secret, e.clk)
}

func (e *env) source(id string, ttl time.Duration) {
	e.t.Helper()
	err := e.db.PutSource(segments.Source{ID: id, Name: id, Party: segments.FirstParty,
		TTL: ttl})
	if err != nil {
		e.t.Fatalf("put source %s: %v", id, err)
	}
}

func (e *env) define(id, rule string) {
	e.t.Helper()
	if err := e.db.PutSegment(segments.Segment{ID: id, Name: id, Rule: rule}); err != nil {
		e.t.Fatalf("define %s: %v", id, err)
	}
}

// importText imports text into source, failing the test on an import error.
func (e *env) importText(source string, f segments.Format, text string) segments.ImportResult {
	e.t.Helper()
	res, err := e.db.Import(context.Background(), source, f, strings.NewReader(text))
	if err != nil {
		e.t.Fatalf("import into %s: %v", source, err)
	}
	return res
}

// hash returns the keyed hash of an ID written as type:value.
func (e *env) hash(s string) uint64 {
	e.t.Helper()
	id, err := segments.ParseID(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.ix.Hasher().Hash(id)
}

// served returns the export IDs served now to the ID written as type:value, sorted.
func (e *env) served(id string) []string {
	e.t.Helper()
	cat := e.ix.Catalog()
	slots := e.ix.Lookup(nil, cat, e.hash(id), uint32(e.clk.Now().Unix()))
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
		e.t.Fatalf("user.data %s: %v", frag, err)
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

func (e *env) size(id string) uint64 {
	e.t.Helper()
	info, ok := e.ix.Segment(id)
	if !ok {
		e.t.Fatalf("segment %q is not defined", id)
	}
	return info.Size
}

func (e *env) sweep() int {
	e.t.Helper()
	n, err := e.db.Sweep()
	if err != nil {
		e.t.Fatalf("sweep: %v", err)
	}
	return n
}

// expectServed checks what each ID, written as type:value, is served now.
func (e *env) expectServed(want map[string][]string) {
	e.t.Helper()
	for id, w := range want {
		if got := e.served(id); !slices.Equal(got, w) {
			e.t.Errorf("%s: served %v, want %v", id, got, w)
		}
	}
}

// expectSizes checks segment sizes.
func (e *env) expectSizes(want map[string]uint64) {
	e.t.Helper()
	for id, w := range want {
		if got := e.size(id); got != w {
			e.t.Errorf("segment %s: size %d, want %d", id, got, w)
		}
	}
}
