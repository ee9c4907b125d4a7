package segments

import (
	"testing"
	"time"
)

// SplitWorkForTest makes work over profiles split between cores from n profiles up, so that
// tests over small indexes take the parallel paths too, until the returned func is called.
func SplitWorkForTest(n uint32) (restore func()) {
	old := coreShare
	coreShare = n
	return func() { coreShare = old }
}

// beginWeb returns an empty index and a Txn at now in which the first-party source "web"
// is defined, for tests that record events.
func beginWeb(tb testing.TB, now time.Time) (*Index, *Txn) {
	tb.Helper()
	ix := New(NewHasher([]byte("internal test secret")), Provider{ID: "segd"})
	tx := ix.Begin(now)
	if err := tx.PutSource(Source{ID: "web", Name: "Web", Party: FirstParty,
		TTL: 24 * time.Hour}); err != nil {
		tb.Fatal(err)
	}
	return ix, tx
}
