package bidder

import (
	"strconv"
	"time"

	"github.com/segd/segd/segments"
)

// signals gathers the privacy fields the scan found, preferring the OpenRTB 2.6 place of
// each over the 2.5 ext one, unless the 2.6 one is empty, and reading GDPR as applying
// when either place says so.
func (s *scan) signals(gpc bool) signals {
	p := &s.priv
	sig := signals{
		coppa:     s.coppa,
		gdpr:      p.gdpr,
		consent:   s.strValue(p.consent, p.extConsent),
		usPrivacy: s.strValue(p.usp, p.extUSP),
		gpp:       s.strValue(p.gpp, strField{}),
		gppSID:    p.gppSID[:p.gppSIDs],
		gppSIDBad: p.gppSIDBad,
		lmt:       p.lmt,
		atts:      p.atts,
		gpc:       gpc,
	}
	if p.extGDPR > sig.gdpr {
		sig.gdpr = p.extGDPR // absent < 0 < 1: when the two places disagree, GDPR applies
	}
	return sig
}

// strValue returns the string a, or b when a is absent or empty: an empty 2.6 field must
// not hide a 2.5 one that says more.
func (s *scan) strValue(a, b strField) []byte {
	if a.set {
		if v := s.bytes(a.sp, a.esc); len(v) > 0 || !b.set {
			return v
		}
	}
	if b.set {
		return s.bytes(b.sp, b.esc)
	}
	return nil
}

// Explanation is what /v1/explain answers: each step of enriching one request.
type Explanation struct {
	Outcome  string           `json:"outcome"`
	Error    string           `json:"error,omitempty"`
	Policy   *ExplainPolicy   `json:"policy,omitempty"`
	IDs      []ExplainID      `json:"ids"`
	Segments []ExplainSegment `json:"segments"`
	UserData string           `json:"user_data,omitempty"` // segd's objects, as spliced
}

// ExplainPolicy is the privacy verdict.
type ExplainPolicy struct {
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason,omitempty"`
	Consent   bool   `json:"tcf_consent"`
	USOptOut  bool   `json:"us_opt_out"`
	CookieIDs bool   `json:"cookie_ids_used"`
	IFA       bool   `json:"ifa_used"`
}

// ExplainID is one ID found in the request.
type ExplainID struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	Dropped  string `json:"dropped,omitempty"`
	Segments int    `json:"segments"` // served segments of its profile, before data rights
}

// ExplainSegment is one segment the request's profiles are in.
type ExplainSegment struct {
	ID       string `json:"id"`
	ExportID string `json:"export_id"`
	Served   bool   `json:"served"`
	Filtered string `json:"filtered,omitempty"`
}

// trace records the steps of match for an Explanation.
type trace struct{ e *Explanation }

func (t trace) policy(v verdict) {
	t.e.Policy = &ExplainPolicy{Allowed: v.allow, Reason: v.why, Consent: v.consented,
		USOptOut: v.usOptedOut, CookieIDs: !v.noCookies, IFA: !v.noIFA}
}

func (t trace) id(sc *scan, id *foundID, dropped string, segs int) {
	typ := string(typeFor(id.kind))
	if id.kind == kindEID {
		typ += string(sc.bytes(id.src, id.srcEsc))
	}
	t.e.IDs = append(t.e.IDs, ExplainID{Type: typ, Value: string(sc.bytes(id.val, id.valEsc)),
		Dropped: dropped, Segments: segs})
}

func (t trace) segments(cat *segments.Catalog, slots []uint32, has segments.Needs,
	caller int) {
	seen := map[uint32]bool{}
	for _, slot := range slots {
		if seen[slot] {
			continue
		}
		seen[slot] = true
		id, export, needs := cat.Describe(slot)
		es := ExplainSegment{ID: id, ExportID: export, Served: true}
		switch missing := needs &^ has; {
		case missing&segments.NeedsConsent != 0:
			es.Served, es.Filtered = false, "a source is consent-only and there is no TCF consent"
		case missing&segments.NeedsNoUSOptOut != 0:
			es.Served, es.Filtered = false, "a source may not be used under a US opt-out"
		case !cat.CallerAllows(slot, caller):
			es.Served, es.Filtered = false, "not for this caller"
		}
		t.e.Segments = append(t.e.Segments, es)
	}
}

// Explain runs the request path over body without answering it, and says what each step
// found and decided. gpc is whether the request would carry Sec-GPC: 1; caller names the
// caller it would come from, or is empty for none.
func (s *Server) Explain(body []byte, gpc bool, caller string) Explanation {
	e := Explanation{IDs: []ExplainID{}, Segments: []ExplainSegment{}}
	n := segments.NoCaller
	if caller != "" {
		var ok bool
		if n, ok = s.callerNo[caller]; !ok {
			e.Outcome, e.Error = outcomeNames[outCaller], "no caller is named "+strconv.Quote(caller)
			return e
		}
	}
	st := new(state)
	oc, err := s.match(st, body, time.Now(), gpc, n, &trace{e: &e})
	e.Outcome = outcomeNames[oc]
	if err != nil {
		e.Error = err.Error()
	}
	if oc == outEnriched {
		e.UserData = "[" + string(st.frag) + "]"
	}
	return e
}
