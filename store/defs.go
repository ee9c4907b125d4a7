package store

import "github.com/segd/segd/segments"

// Update runs fn in a Txn and applies it durably when fn succeeds. fn's error is returned
// as is, so callers can test it with errors.Is and errors.As.
func (db *DB) Update(fn func(*segments.Txn) error) error {
	t := db.ix.Begin(db.cfg.Now())
	if err := fn(t); err != nil {
		t.Rollback()
		return err
	}
	return db.Apply(t)
}

// PutSource defines or redefines a source durably.
func (db *DB) PutSource(s segments.Source) error {
	return db.Update(func(t *segments.Txn) error { return t.PutSource(s) })
}

// DeleteSource removes a source definition durably.
func (db *DB) DeleteSource(id string) error {
	return db.Update(func(t *segments.Txn) error { return t.DeleteSource(id) })
}

// PutSegment defines or redefines a segment durably.
func (db *DB) PutSegment(g segments.Segment) error {
	return db.Update(func(t *segments.Txn) error { return t.PutSegment(g) })
}

// DeleteSegment removes a segment durably.
func (db *DB) DeleteSegment(id string) error {
	return db.Update(func(t *segments.Txn) error { return t.DeleteSegment(id) })
}
