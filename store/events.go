package store

import (
	"context"
	"fmt"
	"io"

	"github.com/segd/segd/segments"
)

// Events reads NDJSON event lines from r and records them in durable batches: each trait
// of an event in the bucket of its day, and the source's visit trait. Lines that fail to
// parse, name an unknown source, fall outside the retention or the clock skew, or name only
// opted-out IDs are reported and never stop the others. As with Import, every accepted
// line is durable when Events returns.
func (db *DB) Events(ctx context.Context, r io.Reader) (segments.ImportResult, error) {
	res, err := ingest(ctx, r, segments.ParseEventLine, db.applyEvents)
	if err != nil {
		return res, fmt.Errorf("events: %w", err)
	}
	return res, nil
}

// applyEvents writes one batch of events in a single durable Txn. An event whose IDs are all
// suppressed is rejected.
func (db *DB) applyEvents(batch []numbered[segments.EventLine], res *segments.ImportResult) error {
	now := db.cfg.Now()
	h := db.ix.Hasher()
	t := db.ix.Begin(now)
	accepted := 0
	var ids []uint64
	for _, nl := range batch {
		ev := nl.line
		if _, ok := t.Source(ev.Source); !ok {
			res.Reject(nl.num, fmt.Errorf("source %q: %w", ev.Source, segments.ErrUnknownSource))
			continue
		}
		day, err := segments.EventDay(ev.Time, now, t.Retention(), db.cfg.EventSkew)
		if err != nil {
			res.Reject(nl.num, err)
			continue
		}
		ids = ids[:0]
		for _, id := range ev.IDs {
			ids = append(ids, h.Hash(id))
		}
		p := t.Resolve(ids)
		if p == segments.NoProfile {
			res.Reject(nl.num, segments.ErrOptedOut)
			continue
		}
		if !ev.NoVisit {
			t.AddEvent(p, ev.Source+":"+segments.VisitKey, day)
		}
		for _, kv := range ev.Traits {
			t.AddEvent(p, ev.Source+":"+kv, day)
		}
		accepted++
	}
	if err := db.Apply(t); err != nil {
		return fmt.Errorf("lines %d-%d: %w", batch[0].num, batch[len(batch)-1].num, err)
	}
	res.Accepted += accepted
	return nil
}
