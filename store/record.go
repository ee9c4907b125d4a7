package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/segd/segd/segments"
)

// Record writes one event durably, linking all of its IDs to one profile, and returns once
// it is synced. Concurrent calls are committed together in one batch (group commit), so a
// busy collector costs one sync per batch rather than per event. The error says why the
// event was refused (unknown source, outside the retention or the clock skew) or not
// written.
func (db *DB) Record(ctx context.Context, ev segments.EventLine) error {
	req := recordReq{ev: ev, done: make(chan error, 1)}
	select {
	case db.records <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return errClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the write may still land; it was not acknowledged
	case <-db.stop:
		return errClosed // likewise
	}
}

var errClosed = errors.New("store closed")

type recordReq struct {
	ev   segments.EventLine
	done chan error
}

// maxGroup bounds how many events one group commit takes.
const maxGroup = 4096

// commitRecords runs until Close, taking every queued event into one durable batch.
func (db *DB) commitRecords() {
	defer db.wg.Done()
	group := make([]recordReq, 0, maxGroup)
	for {
		select {
		case <-db.stop:
			db.failQueued()
			return
		case req := <-db.records:
			group = append(group[:0], req)
		}
		for len(group) < maxGroup {
			select {
			case req := <-db.records:
				group = append(group, req)
				continue
			default:
			}
			break
		}
		db.commitGroup(group)
	}
}

func (db *DB) commitGroup(group []recordReq) {
	batch := make([]numbered[segments.EventLine], len(group))
	for i, req := range group {
		batch[i] = numbered[segments.EventLine]{num: i + 1, line: req.ev}
	}
	res := segments.ImportResult{}
	err := db.applyEvents(batch, &res)
	refused := make(map[int]string, len(res.Errors))
	for _, e := range res.Errors {
		refused[e.Line] = e.Error
	}
	for i, req := range group {
		switch {
		case err != nil:
			req.done <- fmt.Errorf("record event: %w", err)
		case refused[i+1] != "":
			req.done <- &RefusedError{Reason: refused[i+1]}
		default:
			req.done <- nil
		}
	}
}

func (db *DB) failQueued() {
	for {
		select {
		case req := <-db.records:
			req.done <- errClosed
		default:
			return
		}
	}
}

// RefusedError is an event that Record did not accept, with the reason.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "event refused: " + e.Reason }
