package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Line is one parsed line of an onboarding file: the IDs of one profile and the codes of the
// source's traits to add to it or remove from it.
type Line struct {
	IDs    []ID
	Add    []string // codes, without the source prefix
	Remove []string
	TTL    time.Duration // 0: the source's default
}

// Limits on one onboarding line.
const (
	MaxLineIDs   = 16
	MaxLineCodes = 256
)

// ParseTSVLine parses "ID<TAB>codes": IDs as type:value joined by '|', codes comma-separated,
// "-code" removing one. A trailing CR is ignored.
func ParseTSVLine(line []byte) (Line, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	idPart, codePart, ok := bytes.Cut(line, []byte("\t"))
	if !ok {
		return Line{}, errors.New("want ID<TAB>codes")
	}
	if bytes.IndexByte(codePart, '\t') >= 0 {
		return Line{}, errors.New("more than two tab-separated fields")
	}
	var l Line
	for raw := range strings.SplitSeq(string(idPart), "|") {
		id, err := ParseID(raw)
		if err != nil {
			return Line{}, err
		}
		l.IDs = append(l.IDs, id)
	}
	for c := range strings.SplitSeq(string(codePart), ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(c, "-"); ok {
			l.Remove = append(l.Remove, rest)
		} else {
			l.Add = append(l.Add, c)
		}
	}
	return l, l.validate()
}

type ndjsonLine struct {
	IDs    []ndjsonID `json:"ids"`
	Add    []string   `json:"add"`
	Remove []string   `json:"remove"`
	TTL    string     `json:"ttl"`
}

type ndjsonID struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ParseNDJSONLine parses one NDJSON onboarding line:
// {"ids":[{"type":"ifa","value":"..."}],"add":["a"],"remove":["b"],"ttl":"720h"}.
// Unknown fields are errors, so that a misspelt "remove" never silently adds nothing.
func ParseNDJSONLine(line []byte) (Line, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var raw ndjsonLine
	if err := dec.Decode(&raw); err != nil {
		return Line{}, fmt.Errorf("bad json: %w", err)
	}
	if dec.More() {
		return Line{}, errors.New("bad json: more than one value on the line")
	}
	l := Line{Add: raw.Add, Remove: raw.Remove}
	for _, r := range raw.IDs {
		id := ID(r)
		if err := id.Validate(); err != nil {
			return Line{}, err
		}
		l.IDs = append(l.IDs, id)
	}
	if raw.TTL != "" {
		ttl, err := ParseTTL(raw.TTL)
		if err != nil {
			return Line{}, err
		}
		l.TTL = ttl
	}
	return l, l.validate()
}

func (l *Line) validate() error {
	switch {
	case len(l.IDs) == 0:
		return errors.New("no ids")
	case len(l.IDs) > MaxLineIDs:
		return fmt.Errorf("more than %d ids", MaxLineIDs)
	case len(l.Add)+len(l.Remove) == 0:
		return errors.New("no codes")
	case len(l.Add)+len(l.Remove) > MaxLineCodes:
		return fmt.Errorf("more than %d codes", MaxLineCodes)
	}
	for _, codes := range [][]string{l.Add, l.Remove} {
		for _, c := range codes {
			if !ValidTraitName("x:" + c) {
				return fmt.Errorf("code %q: want letters, digits and _-./=+@%%~:!", truncate(c))
			}
		}
	}
	return nil
}

// ParseTTL parses a lifetime: a Go duration such as "720h", or whole days such as "30d".
// It must be positive and at most MaxTTL.
func ParseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration like 720h or 30d", truncate(s))
		}
		// Bound n before multiplying: a huge day count would wrap around to a small TTL.
		if n < 1 || time.Duration(n) > MaxTTL/(24*time.Hour) {
			return 0, fmt.Errorf("ttl %q: want more than 0 and at most %s", truncate(s), MaxTTL)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration like 720h or 30d", truncate(s))
		}
	}
	if d <= 0 || d > MaxTTL {
		return 0, fmt.Errorf("ttl %q: want more than 0 and at most %s", truncate(s), MaxTTL)
	}
	return d, nil
}

// Format is an onboarding file format.
type Format string

// The onboarding formats.
const (
	TSV    Format = "tsv"
	NDJSON Format = "ndjson"
)

// Import limits.
const (
	// MaxLineLen is the longest line accepted; a longer one is rejected whole.
	MaxLineLen = 64 << 10
	// MaxReportedErrors is how many line errors an ImportResult lists.
	MaxReportedErrors = 100
)

// ImportResult reports an import: lines accepted and rejected, and the first errors.
type ImportResult struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
}

// LineError is the reason one line was rejected.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Reject counts a rejected line and keeps its error. Call Trim to bound the errors kept.
func (r *ImportResult) Reject(line int, err error) {
	r.Rejected++
	r.Errors = append(r.Errors, LineError{Line: line, Error: err.Error()})
}

// Trim orders the errors by line and keeps the first MaxReportedErrors.
func (r *ImportResult) Trim() {
	slices.SortStableFunc(r.Errors, func(a, b LineError) int { return a.Line - b.Line })
	if len(r.Errors) > MaxReportedErrors {
		r.Errors = r.Errors[:MaxReportedErrors:MaxReportedErrors]
	}
}

// ErrNoSpace means the store refused a write for lack of disk space.
var ErrNoSpace = errors.New("not enough free disk space")

// ErrUnknownSource means an import names a source that is not defined.
var ErrUnknownSource = errors.New("unknown source")
