package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Party says whose data a source holds.
type Party string

// The parties a source may declare.
const (
	FirstParty  Party = "first"
	SecondParty Party = "second"
	ThirdParty  Party = "third"
)

// MaxTTL bounds how long a membership may live: longer is a mistake, not a plan.
const MaxTTL = 400 * 24 * time.Hour

// Source is where data comes from. Its traits are named "ID:code".
type Source struct {
	ID    string        `json:"id"`
	Name  string        `json:"name"`
	Party Party         `json:"party"`
	TTL   time.Duration `json:"-"` // default lifetime of a membership; never zero once validated
	// Uses says what the source's data may be used for.
	Uses Uses
}

// Uses are the data rights a source declares. The zero value is the default: data that
// may enrich any request that privacy signals allow, except that only first-party data
// is used under a US opt-out of sale or sharing.
type Uses struct {
	// ConsentOnly limits the data to requests that carry a TCF consent for segd's vendor
	// and purposes 3 and 4: never where GDPR does not apply, nor without a string.
	ConsentOnly bool `json:"consent_only,omitempty"`
	// UnderUSOptOut says whether the data may enrich a request whose user opted out of
	// sale or sharing under US law (us_privacy, GPP, Sec-GPC); nil means only for
	// first-party sources.
	UnderUSOptOut *bool `json:"under_us_opt_out,omitempty"`
	// NotForCallers names the callers (see Caller) whose requests the data never enriches.
	NotForCallers []string `json:"not_for_callers,omitempty"`
}

// usableUnderOptOut applies the default of Uses.UnderUSOptOut.
func (s *Source) usableUnderOptOut() bool {
	if s.Uses.UnderUSOptOut != nil {
		return *s.Uses.UnderUSOptOut
	}
	return s.Party == FirstParty
}

// Validate reports every problem with s at once.
func (s *Source) Validate() error {
	var errs []error
	if !ValidID(s.ID) {
		errs = append(errs, fmt.Errorf("id %q: want 1-64 of a-z, 0-9, _ and -", s.ID))
	}
	if s.ID == "segment" {
		errs = append(errs, errors.New(`id "segment" is reserved for segment references`))
	}
	if s.Name == "" || len(s.Name) > 200 {
		errs = append(errs, errors.New("name: want 1-200 bytes"))
	}
	switch s.Party {
	case FirstParty, SecondParty, ThirdParty:
	default:
		errs = append(errs, fmt.Errorf("party %q: want first, second or third", s.Party))
	}
	if s.TTL <= 0 || s.TTL > MaxTTL {
		errs = append(errs, fmt.Errorf("ttl %s: want more than 0 and at most %s", s.TTL, MaxTTL))
	}
	for _, c := range s.Uses.NotForCallers {
		if !ValidID(c) {
			errs = append(errs, fmt.Errorf("uses.not_for_callers: %q: want 1-64 of a-z, 0-9, _ and -", c))
		}
	}
	return errors.Join(errs...)
}

// Caller is a client of the bid listener whose requests may carry only some segments: an
// SSP sends different segments to different DSPs. The zero filters allow everything; a
// source can still refuse a caller by name (Uses.NotForCallers).
type Caller struct {
	Name string
	// Segments, when not empty, lists the only segment IDs the caller gets.
	Segments []string
	// Segtax, when not empty, lists the only taxonomies the caller gets; 0 stands for
	// proprietary IDs.
	Segtax []int
}

// Validate reports every problem with c at once.
func (c *Caller) Validate() error {
	var errs []error
	if !ValidID(c.Name) {
		errs = append(errs, fmt.Errorf("caller %q: want a name of 1-64 of a-z, 0-9, _ and -", c.Name))
	}
	for _, id := range c.Segments {
		if !ValidID(id) {
			errs = append(errs, fmt.Errorf("caller %s: segment %q is not a valid segment ID", c.Name, id))
		}
	}
	for _, t := range c.Segtax {
		if t < 0 || t > 65535 {
			errs = append(errs, fmt.Errorf("caller %s: segtax %d: want 0-65535", c.Name, t))
		}
	}
	return errors.Join(errs...)
}

// Segment is an audience defined by a rule over traits and other segments.
type Segment struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Rule string `json:"rule"`
	// ExportID is the segment ID written into user.data; it defaults to ID.
	ExportID string `json:"export_id"`
	// Segtax is the taxonomy of ExportID (ext.segtax); 0 means a proprietary ID, with no ext.
	Segtax int `json:"segtax,omitempty"`
	// ActiveFrom and ActiveUntil bound the campaign window in which the segment is served;
	// the zero time leaves that side open. Counts ignore the window.
	ActiveFrom  time.Time `json:"active_from,omitzero"`
	ActiveUntil time.Time `json:"active_until,omitzero"`
}

// Validate reports every problem with g at once, rule syntax included.
func (g *Segment) Validate() error {
	var errs []error
	if !ValidID(g.ID) {
		errs = append(errs, fmt.Errorf("id %q: want 1-64 of a-z, 0-9, _ and -", g.ID))
	}
	if g.Name == "" || len(g.Name) > 200 {
		errs = append(errs, errors.New("name: want 1-200 bytes"))
	}
	if g.ExportID == "" {
		g.ExportID = g.ID
	}
	if len(g.ExportID) > 128 {
		errs = append(errs, errors.New("export_id: at most 128 bytes"))
	}
	if g.Segtax < 0 || g.Segtax > 65535 {
		errs = append(errs, fmt.Errorf("segtax %d: want 0-65535", g.Segtax))
	}
	if !g.ActiveFrom.IsZero() && !g.ActiveUntil.IsZero() && !g.ActiveFrom.Before(g.ActiveUntil) {
		errs = append(errs, errors.New("active_from must be before active_until"))
	}
	if _, err := ParseRule(g.Rule); err != nil {
		errs = append(errs, fmt.Errorf("rule: %w", err))
	}
	return errors.Join(errs...)
}

// Membership is a profile's trait with the moment it expires.
type Membership struct {
	Trait uint32 // trait ordinal
	Until uint32 // unix seconds; the membership is gone at and after this second
}

// Event is one UTC day on which a profile showed a trait, recorded from a first-party
// event. Rules ask for recency and frequency over these days.
type Event struct {
	Trait uint32 // trait ordinal
	Day   uint16 // days since 1970-01-01 UTC
}

// ProfileRecord is the durable form of one profile, as a Txn reports it for persisting.
type ProfileRecord struct {
	Profile uint32
	IDs     []uint64     // keyed ID hashes linked to the profile
	Traits  []Membership // sorted by Trait
	Events  []Event      // sorted by Trait, then Day
}

// TraitName pairs a trait ordinal with its name.
type TraitName struct {
	Ordinal uint32
	Name    string
}

// Changes is what a Txn will change, for the store to persist before Commit.
type Changes struct {
	Profiles        []ProfileRecord // new or changed profiles
	Deleted         []uint32        // profiles removed (merged, lapsed or deleted)
	Suppressed      []uint64        // ID hashes that join the suppression list (Txn.Delete)
	Traits          []TraitName     // trait ordinals used for the first time
	PutSources      []Source
	DeletedSources  []string
	PutSegments     []Segment
	DeletedSegments []string
	NextProfile     uint32 // the first unallocated profile ordinal
}

// Empty reports whether there is nothing to persist.
func (c *Changes) Empty() bool {
	return len(c.Profiles) == 0 && len(c.Deleted) == 0 && len(c.Traits) == 0 &&
		len(c.PutSources) == 0 && len(c.DeletedSources) == 0 &&
		len(c.PutSegments) == 0 && len(c.DeletedSegments) == 0 && len(c.Suppressed) == 0
}

func unixSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s <= 0:
		return 0
	case s >= 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

type sourceJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Party Party  `json:"party"`
	TTL   string `json:"ttl"`
	Uses  *Uses  `json:"uses,omitempty"`
}

// MarshalJSON encodes s with its TTL as a duration string.
func (s Source) MarshalJSON() ([]byte, error) {
	return json.Marshal(sourceJSON{ID: s.ID, Name: s.Name, Party: s.Party, TTL: s.TTL.String(),
		Uses: &s.Uses})
}

// UnmarshalJSON decodes s, accepting a TTL such as "720h" or "30d". An absent TTL leaves
// s.TTL zero, which Validate rejects.
func (s *Source) UnmarshalJSON(b []byte) error {
	var j sourceJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*s = Source{ID: j.ID, Name: j.Name, Party: j.Party}
	if j.Uses != nil {
		s.Uses = *j.Uses
	}
	if j.TTL != "" {
		ttl, err := ParseTTL(j.TTL)
		if err != nil {
			return err
		}
		s.TTL = ttl
	}
	return nil
}
