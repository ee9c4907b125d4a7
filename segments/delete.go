package segments

// Delete removes the profiles linked to the ID hashes entirely: their memberships, events
// and segments, and the links of every ID they hold, not only of the IDs given. All those
// IDs, and every given ID even when it links to no profile, join the suppression list, so
// that Resolve never links them again. It returns the number of profiles deleted.
func (t *Txn) Delete(ids []uint64) (profiles int) {
	for _, h := range ids {
		if p := t.profileOf(h); p != NoProfile {
			if d := t.draftOf(p); !d.deleted {
				t.dropIDs(d)
				profiles++
			}
		}
		t.addSuppressed(h)
	}
	return profiles
}

// dropIDs empties the drafted profile d, marks it deleted, and unlinks and suppresses each
// of its IDs.
func (t *Txn) dropIDs(d *draft) {
	for _, h := range d.ids {
		if t.ix.dict.lookup(h) == NoProfile {
			delete(t.links, h) // linked in this Txn only: nothing published to unlink
		} else {
			t.links[h] = NoProfile
		}
		t.addSuppressed(h)
	}
	d.ids, d.traits, d.events, d.deleted = nil, nil, nil, true
}

func (t *Txn) addSuppressed(h uint64) {
	if t.suppressed(h) {
		return
	}
	if t.supp == nil {
		t.supp = make(map[uint64]struct{})
	}
	t.supp[h] = struct{}{}
	t.suppress = append(t.suppress, h)
}

// suppressed reports whether ID hash h is on the suppression list, or joins it in t.
func (t *Txn) suppressed(h uint64) bool {
	if _, ok := t.ix.suppressed[h]; ok {
		return true
	}
	_, ok := t.supp[h]
	return ok
}

// Suppressed adds a persisted ID hash to the suppression list. Call it before Profile, so
// that a record holding the hash is refused.
func (l *Loader) Suppressed(h uint64) {
	l.ix.suppress(h)
}

// suppress adds h to the suppression list. Writer lock held, or loading.
func (ix *Index) suppress(h uint64) {
	if ix.suppressed == nil {
		ix.suppressed = make(map[uint64]struct{})
	}
	ix.suppressed[h] = struct{}{}
}
