package bidder

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// rightsServer serves one profile, uid u1, in segment "open" of a first-party source and
// segment "consented" of a consent-only one, as vendor ourVendor.
func rightsServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	ix := segments.New(segments.NewHasher([]byte("rights-secret-0123456789")),
		segments.Provider{ID: "segd"})
	now := time.Now()
	txn := ix.Begin(now)
	for _, so := range []segments.Source{
		{ID: "crm", Name: "CRM", Party: segments.FirstParty, TTL: time.Hour},
		{ID: "cons", Name: "Consented", Party: segments.SecondParty, TTL: time.Hour,
			Uses: segments.Uses{ConsentOnly: true}},
	} {
		if err := txn.PutSource(so); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []segments.Segment{
		{ID: "open", Name: "Open", Rule: "crm:a", ExportID: "O1"},
		{ID: "consented", Name: "Consented", Rule: "cons:b", ExportID: "C1"},
	} {
		if err := txn.PutSegment(g); err != nil {
			t.Fatal(err)
		}
	}
	p := txn.Resolve([]uint64{ix.Hasher().Hash(segments.ID{Type: segments.TypeUID, Value: "u1"})})
	until := uint32(now.Add(time.Hour).Unix())
	txn.Add(p, "crm:a", until)
	txn.Add(p, "cons:b", until)
	txn.Commit()
	ix.MarkReady()
	cfg.Privacy.GVLVendorID = ourVendor
	s, err := NewServer(cfg, ix, new(Metrics), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConsentOnlySource checks that a consent-only source's segments go only to requests
// with a TCF consent for segd, while the other segments follow the general policy.
func TestConsentOnlySource(t *testing.T) {
	s := rightsServer(t, Config{})
	tests := []struct {
		name, body, want string
	}{
		{"outside the GDPR", `{"user":{"id":"u1"},"regs":{"gdpr":0}}`, `[{"id":"O1"}]`},
		{"with consent", `{"user":{"id":"u1","consent":"` + tcfFull + `"},"regs":{"gdpr":1}}`,
			`[{"id":"O1"},{"id":"C1"}]`},
		{"2.5 shape with consent",
			`{"user":{"id":"u1","ext":{"consent":"` + tcfFull + `"}},"regs":{"ext":{"gdpr":1}}}`,
			`[{"id":"O1"},{"id":"C1"}]`},
		{"consent without our vendor",
			`{"user":{"id":"u1","consent":"` + tcfNoVendor + `"},"regs":{"gdpr":1}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s.Explain([]byte(tt.body), false, "")
			if tt.want == "" {
				if e.Outcome != "privacy" {
					t.Errorf("outcome %q, want privacy", e.Outcome)
				}
				return
			}
			if e.Outcome != "enriched" || !strings.Contains(e.UserData, `"segment":`+tt.want) {
				t.Errorf("outcome %q, user.data %s; want segments %s", e.Outcome, e.UserData, tt.want)
			}
		})
	}
}

// TestRequireCaller checks that a server that requires an API key leaves requests without
// one, or with an unknown one, unchanged, and serves a known caller its segments only.
func TestRequireCaller(t *testing.T) {
	var cl Caller
	cl.Name, cl.Key, cl.Segments = "ssp-x", "ssp-x-key-0123456789", []string{"open"}
	s := rightsServer(t, Config{Callers: []Caller{cl}, RequireCaller: true})
	body := []byte(`{"user":{"id":"u1"}}`)
	for _, tt := range []struct{ key, want string }{
		{"", "unknown_caller"},
		{"ssp-x-key-012345678", "unknown_caller"},
		{"ssp-x-key-0123456789", "enriched"},
	} {
		n, known := s.caller([]byte(tt.key))
		st := new(state)
		oc, err := s.match(st, body, time.Now(), false, n, nil)
		if !known {
			oc = outCaller
		}
		if err != nil || outcomeNames[oc] != tt.want {
			t.Errorf("key %q: outcome %s (%v), want %s", tt.key, outcomeNames[oc], err, tt.want)
		}
		if oc == outEnriched && string(st.frag) != `{"id":"segd","segment":[{"id":"O1"}]}` {
			t.Errorf("key %q: user.data %s, want segment O1 only", tt.key, st.frag)
		}
	}

	if _, err := NewServer(Config{RequireCaller: true}, segments.New(segments.NewHasher(
		[]byte("x-secret-0123456789")), segments.Provider{ID: "segd"}), new(Metrics),
		zap.NewNop()); err == nil {
		t.Error("RequireCaller without callers accepted")
	}
}

// TestSignalPlaces checks how the OpenRTB 2.6 and 2.5 places of one signal combine: an
// empty 2.6 field does not hide the 2.5 one, and GDPR applies when either place says so.
func TestSignalPlaces(t *testing.T) {
	s := rightsServer(t, Config{})
	tests := []struct {
		name, body string
		allowed    bool
		usOptOut   bool
	}{
		{"empty us_privacy, 2.5 opt-out",
			`{"user":{"id":"u1"},"regs":{"us_privacy":"","ext":{"us_privacy":"1YYN"}}}`, true, true},
		{"2.6 us_privacy wins when set",
			`{"user":{"id":"u1"},"regs":{"us_privacy":"1YNN","ext":{"us_privacy":"1YYN"}}}`, true, false},
		{"gdpr 0 but 2.5 gdpr 1, no consent",
			`{"user":{"id":"u1"},"regs":{"gdpr":0,"ext":{"gdpr":1}}}`, false, false},
		{"empty consent, 2.5 consent",
			`{"user":{"id":"u1","consent":"","ext":{"consent":"` + tcfFull + `"}},"regs":{"gdpr":1}}`,
			true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s.Explain([]byte(tt.body), false, "")
			if e.Policy == nil || e.Policy.Allowed != tt.allowed || e.Policy.USOptOut != tt.usOptOut {
				t.Errorf("policy %+v, want allowed %v, US opt-out %v", e.Policy, tt.allowed, tt.usOptOut)
			}
		})
	}
}
