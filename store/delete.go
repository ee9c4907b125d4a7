package store

import (
	"context"
	"fmt"

	"github.com/segd/segd/segments"
)

// DeleteProfile deletes durably the profile linked to id, with every ID linked to it, and
// suppresses all those IDs and id itself: no later import, event, sync or restart links
// them again, and lines that name only them are rejected. It returns the number of
// profiles deleted, 0 when id links to none; id is suppressed either way, so an opt-out
// that arrives before the data still holds.
func (db *DB) DeleteProfile(ctx context.Context, id segments.ID) (deleted int, err error) {
	if err := id.Validate(); err != nil {
		return 0, fmt.Errorf("delete profile: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("delete profile: %w", err)
	}
	t := db.ix.Begin(db.cfg.Now())
	n := t.Delete([]uint64{db.ix.Hasher().Hash(id)})
	if err := db.Apply(t); err != nil {
		return 0, fmt.Errorf("delete profile: %w", err)
	}
	return n, nil
}
