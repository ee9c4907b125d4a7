package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// EventLine is one parsed first-party event: a profile's IDs, the source, when it happened,
// and the key-value traits it showed, each of which becomes the trait "source:key=value"
// in the bucket of the event's day. Every event also marks "source:visit".
type EventLine struct {
	IDs    []ID
	Source string
	Time   time.Time // zero: when it is ingested
	Traits []string  // "key=value", sorted
	// NoVisit leaves out the visit trait: an ID sync links IDs but is no visit.
	NoVisit bool
}

// VisitKey is the trait key that every event marks.
const VisitKey = "visit"

// Limits on one event.
const MaxEventTraits = 64

type eventJSON struct {
	IDs    []ndjsonID        `json:"ids"`
	Source string            `json:"source"`
	TS     string            `json:"ts"`
	Traits map[string]string `json:"traits"`
}

// ParseEventLine parses one NDJSON event line:
// {"ids":[{"type":"uid","value":"u-1"}],"source":"web","ts":"2026-12-01T10:00:00Z",
// "traits":{"page":"/pricing"}}. ts is RFC 3339 and optional; trait values are strings.
func ParseEventLine(line []byte) (EventLine, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var raw eventJSON
	if err := dec.Decode(&raw); err != nil {
		return EventLine{}, fmt.Errorf("bad json: %w", err)
	}
	if dec.More() {
		return EventLine{}, errors.New("bad json: more than one value on the line")
	}
	ev := EventLine{Source: raw.Source}
	if !ValidID(raw.Source) {
		return EventLine{}, fmt.Errorf("source %q: want 1-64 of a-z, 0-9, _ and -",
			truncate(raw.Source))
	}
	for _, r := range raw.IDs {
		id := ID(r)
		if err := id.Validate(); err != nil {
			return EventLine{}, err
		}
		ev.IDs = append(ev.IDs, id)
	}
	if len(ev.IDs) == 0 || len(ev.IDs) > MaxLineIDs {
		return EventLine{}, fmt.Errorf("want 1 to %d ids", MaxLineIDs)
	}
	if raw.TS != "" {
		ts, err := time.Parse(time.RFC3339Nano, raw.TS)
		if err != nil {
			return EventLine{}, fmt.Errorf("ts %q: want RFC 3339", truncate(raw.TS))
		}
		ev.Time = ts
	}
	traits, err := eventTraits(raw.Source, raw.Traits)
	if err != nil {
		return EventLine{}, err
	}
	ev.Traits = traits
	return ev, nil
}

func eventTraits(source string, kv map[string]string) ([]string, error) {
	if len(kv) > MaxEventTraits {
		return nil, fmt.Errorf("more than %d traits", MaxEventTraits)
	}
	out := make([]string, 0, len(kv))
	for k, v := range kv {
		if !ValidID(k) {
			return nil, fmt.Errorf("trait key %q: want 1-64 of a-z, 0-9, _ and -", truncate(k))
		}
		if v == "" || !ValidTraitName(source+":"+k+"="+v) {
			return nil, fmt.Errorf("trait %s=%q: values are non-empty, without spaces, "+
				"quotes, commas or parentheses", k, truncate(v))
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// EventDay checks an event's time against now and returns its day: events older than the
// retention, or further ahead than skew, are refused with the reason. A zero time is now;
// an event slightly ahead across midnight counts as today.
func EventDay(ts, now time.Time, retentionDays int, skew time.Duration) (uint16, error) {
	if ts.IsZero() {
		ts = now
	}
	if ts.After(now.Add(skew)) {
		return 0, fmt.Errorf("ts is %s in the future, more than the %s allowed",
			ts.Sub(now).Round(time.Second), skew)
	}
	today := Day(unixSeconds(now))
	day := min(Day(unixSeconds(ts)), today)
	if int(day) < int(today)-retentionDays+1 {
		return 0, fmt.Errorf("ts is older than the %d days of events segd retains", retentionDays)
	}
	return day, nil
}
