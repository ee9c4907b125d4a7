package bidder

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/prebid/go-gdpr/consentconstants"
	tcf2 "github.com/prebid/go-gdpr/vendorconsent/tcf2"
	gpp "github.com/prebid/go-gpp"
	gppconst "github.com/prebid/go-gpp/constants"
	"github.com/prebid/go-gpp/sections"
	"github.com/prebid/go-gpp/sections/uspca"
	"github.com/prebid/go-gpp/sections/uspco"
	"github.com/prebid/go-gpp/sections/uspct"
	"github.com/prebid/go-gpp/sections/uspnat"
	"github.com/prebid/go-gpp/sections/usput"
	"github.com/prebid/go-gpp/sections/uspva"
)

// PrivacyConfig says how segd reads privacy signals. Every signal a request carries is
// enforced whatever the settings; they only decide what absent or contested signals mean.
type PrivacyConfig struct {
	// GVLVendorID is segd's operator's vendor ID in the IAB Global Vendor List. A TCF
	// string must give this vendor consent. 0 means none: GDPR traffic is never enriched.
	GVLVendorID uint16
	// GDPRWhenUnknown, when set, treats a request without a gdpr flag (regs.gdpr, or 2.5's
	// regs.ext.gdpr) as inside the GDPR, so that without a valid consent string it is not
	// enriched. By default such a request is inside the GDPR only when it carries a consent
	// string, which is then enforced: OpenRTB leaves the flag to the exchange, which knows
	// the user's location, and exchanges with EU traffic send it; reading every request
	// without it as European would end enrichment for most traffic elsewhere. A deployment
	// that serves EU traffic from exchanges that omit the flag should set it.
	GDPRWhenUnknown bool
	// IgnoreGPC, when set, ignores the Sec-GPC header. By default Sec-GPC: 1 counts as a
	// US opt-out of sale and sharing, as California and other states require.
	IgnoreGPC bool
}

// signals are the privacy fields of one request, as the scan found them.
type signals struct {
	coppa     bool
	gdpr      int8 // -1 absent, else regs.gdpr (2.6) or regs.ext.gdpr (2.5)
	consent   []byte
	usPrivacy []byte
	gpp       []byte
	gppSID    []int
	gppSIDBad bool // gpp_sid present but not a list of small integers
	lmt       bool
	atts      int // -1 absent
	gpc       bool
}

// verdict is what the policy allows for one request.
type verdict struct {
	allow      bool   // any enrichment at all
	why        string // the reason when !allow, or the notable limits when allowed
	noCookies  bool   // no purpose 1 consent: user and buyer IDs may not be read
	noIFA      bool   // limit ad tracking or ATT: device.ifa may not be used
	consented  bool   // a TCF consent for segd's vendor and purposes 3 and 4 is present
	usOptedOut bool   // a US opt-out of sale or sharing applies
}

// tcfVerdict is what one TCF string grants segd.
type tcfVerdict struct {
	valid         bool
	purpose1      bool
	purposes3and4 bool
	vendor        bool
}

// usVerdict is what one US privacy signal says.
type usVerdict struct {
	valid        bool
	saleOptOut   bool // sale or sharing
	targetingOut bool // targeted advertising
}

// policy decides, per request, what privacy signals allow. Decoded consent strings are
// cached, so a string seen before costs a hash and a comparison. Safe for concurrent use.
type policy struct {
	cfg  PrivacyConfig
	tcf  stringCache[tcfVerdict]
	gpps stringCache[gppVerdict]
}

func newPolicy(cfg PrivacyConfig) *policy {
	p := &policy{cfg: cfg}
	p.tcf.seed = maphash.MakeSeed()
	p.gpps.seed = maphash.MakeSeed()
	return p
}

// decide reads the signals of one request.
func (p *policy) decide(s *signals) verdict {
	switch {
	case s.coppa:
		return verdict{why: "regs.coppa: the user is a child"}
	case s.gppSIDBad:
		return verdict{why: "regs.gpp_sid is malformed"}
	}
	v := verdict{allow: true}
	if s.lmt {
		v.noIFA, v.why = true, "device.lmt: the IFA is not used"
	}
	if s.atts >= 0 && s.atts != 3 {
		v.noIFA, v.why = true, "device.ext.atts: tracking not authorised, the IFA is not used"
	}
	inGDPR := s.gdpr == 1 || s.gdpr == -1 && (p.cfg.GDPRWhenUnknown || len(s.consent) > 0)
	var gv gppVerdict
	if len(s.gpp) > 0 || len(s.gppSID) > 0 {
		gv = p.gppVerdict(s.gpp)
		if !p.applyGPP(&v, gv, s.gppSID) {
			return v
		}
		if containsInt(s.gppSID, int(gppconst.SectionTCFEU2)) {
			inGDPR = true
		}
	}
	if inGDPR && !p.applyTCF(&v, s.consent, gv) {
		return v
	}
	if len(s.usPrivacy) > 0 {
		us := uspString(string(s.usPrivacy))
		if !us.valid || us.saleOptOut {
			v.usOptedOut, v.why = true, "regs.us_privacy: opted out of sale (or unreadable)"
		}
	}
	if s.gpc && !p.cfg.IgnoreGPC {
		v.usOptedOut, v.why = true, "Sec-GPC: opted out of sale and sharing"
	}
	return v
}

// applyTCF requires a TCF consent for segd's vendor and purposes 3 and 4, from
// user.consent or, failing that, the TCF EU section of the GPP string.
func (p *policy) applyTCF(v *verdict, consent []byte, gv gppVerdict) bool {
	var t tcfVerdict
	switch {
	case len(consent) > 0:
		t = p.tcfVerdict(consent)
	case gv.hasTCF:
		t = gv.tcf
	default:
		v.allow, v.why = false, "GDPR applies and there is no consent string"
		return false
	}
	switch {
	case !t.valid:
		v.allow, v.why = false, "GDPR applies and the consent string is malformed"
	case !t.purposes3and4:
		v.allow, v.why = false, "GDPR applies and purposes 3 and 4 lack consent"
	case p.cfg.GVLVendorID == 0 || !t.vendor:
		v.allow, v.why = false, "GDPR applies and segd's vendor lacks consent"
	default:
		v.consented = true
		if !t.purpose1 {
			v.noCookies, v.why = true, "no purpose 1 consent: cookie IDs are not read"
		}
		return true
	}
	return false
}

func (p *policy) tcfVerdict(consent []byte) tcfVerdict {
	if t, ok := p.tcf.get(consent); ok {
		return t
	}
	t := decodeTCF(string(consent), p.cfg.GVLVendorID)
	p.tcf.put(consent, t)
	return t
}

func decodeTCF(consent string, vendor uint16) tcfVerdict {
	vc, err := tcf2.ParseString(consent)
	if err != nil || vc.Version() != 2 {
		return tcfVerdict{}
	}
	return tcfVerdict{
		valid:         true,
		purpose1:      vc.PurposeAllowed(consentconstants.Purpose(1)),
		purposes3and4: vc.PurposeAllowed(3) && vc.PurposeAllowed(4),
		vendor:        vendor != 0 && vc.VendorConsent(vendor),
	}
}

// uspString reads a US Privacy string: version 1, notice, opt-out of sale, LSPA.
func uspString(s string) usVerdict {
	if len(s) != 4 || s[0] != '1' {
		return usVerdict{}
	}
	for _, c := range s[1:] {
		if c != 'Y' && c != 'N' && c != '-' && c != 'y' && c != 'n' {
			return usVerdict{}
		}
	}
	return usVerdict{valid: true, saleOptOut: s[2] == 'Y' || s[2] == 'y'}
}

// gppVerdict is what a GPP string says, section by section.
type gppVerdict struct {
	valid   bool // the header decoded
	present map[int]usVerdict
	hasTCF  bool
	tcf     tcfVerdict
}

func (p *policy) gppVerdict(s []byte) gppVerdict {
	if g, ok := p.gpps.get(s); ok {
		return g
	}
	g := decodeGPP(string(s), p.cfg.GVLVendorID)
	p.gpps.put(s, g)
	return g
}

func decodeGPP(s string, vendor uint16) gppVerdict {
	if s == "" || !gppHeaderSafe(s) {
		return gppVerdict{}
	}
	c, errs := gpp.Parse(s)
	if c.Sections == nil && len(errs) > 0 {
		return gppVerdict{}
	}
	g := gppVerdict{valid: true, present: make(map[int]usVerdict, len(c.Sections))}
	for i, sec := range c.Sections {
		if sec == nil {
			continue
		}
		id := int(c.SectionTypes[i])
		switch id {
		case int(gppconst.SectionTCFEU2):
			g.hasTCF, g.tcf = true, decodeTCF(sec.GetValue(), vendor)
			g.present[id] = usVerdict{valid: g.tcf.valid}
		case int(gppconst.SectionUSPV1):
			g.present[id] = uspString(sec.GetValue())
		default:
			g.present[id] = usSection(sec)
		}
	}
	return g
}

// usSection reads the opt-outs of a US state or national section; a section that failed
// to decode comes back with a zero core and is marked invalid.
func usSection(sec gpp.Section) usVerdict {
	optedOut := func(b byte) bool { return b == 1 }
	common := func(c sections.CommonUSCoreSegment) usVerdict {
		return usVerdict{valid: c.Version != 0, saleOptOut: optedOut(c.SaleOptOut),
			targetingOut: optedOut(c.TargetedAdvertisingOptOut)}
	}
	switch s := sec.(type) {
	case uspnat.USPNAT:
		c := s.CoreSegment
		return usVerdict{valid: c.Version != 0,
			saleOptOut:   optedOut(c.SaleOptOut) || optedOut(c.SharingOptOut),
			targetingOut: optedOut(c.TargetedAdvertisingOptOut)}
	case uspca.USPCA:
		c := s.CoreSegment
		return usVerdict{valid: c.Version != 0,
			saleOptOut: optedOut(c.SaleOptOut) || optedOut(c.SharingOptOut)}
	case usput.USPUT:
		c := s.CoreSegment
		return usVerdict{valid: c.Version != 0, saleOptOut: optedOut(c.SaleOptOut),
			targetingOut: optedOut(c.TargetedAdvertisingOptOut)}
	case uspva.USPVA:
		return common(s.CoreSegment)
	case uspco.USPCO:
		return common(s.CoreSegment)
	case uspct.USPCT:
		return common(s.CoreSegment)
	}
	return usVerdict{} // a section segd cannot read
}

// applyGPP applies the sections that gpp_sid declares applicable: each must be present
// and decodable, or nothing is allowed.
func (p *policy) applyGPP(v *verdict, g gppVerdict, sids []int) bool {
	if len(sids) == 0 {
		return true
	}
	if !g.valid {
		v.allow, v.why = false, "regs.gpp cannot be decoded for the sections in regs.gpp_sid"
		return false
	}
	for _, sid := range sids {
		us, ok := g.present[sid]
		switch {
		case !ok || !us.valid:
			v.allow, v.why = false, "regs.gpp cannot be decoded for a section in regs.gpp_sid"
			return false
		case sid == int(gppconst.SectionTCFEU2):
		case us.targetingOut:
			v.allow, v.why = false, "GPP: opted out of targeted advertising"
			return false
		case us.saleOptOut:
			v.usOptedOut, v.why = true, "GPP: opted out of sale or sharing"
		}
	}
	return true
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// stringCache remembers a value per string in a fixed number of slots, replacing on
// collision. Reads allocate nothing; a miss allocates the copy it keeps.
type stringCache[V any] struct {
	seed  maphash.Seed
	slots [1024]atomic.Pointer[cacheEntry[V]]
}

type cacheEntry[V any] struct {
	key string
	val V
}

func (c *stringCache[V]) get(key []byte) (V, bool) {
	e := c.slots[maphash.Bytes(c.seed, key)%uint64(len(c.slots))].Load()
	if e == nil || e.key != string(key) {
		var zero V
		return zero, false
	}
	return e.val, true
}

func (c *stringCache[V]) put(key []byte, val V) {
	c.slots[maphash.Bytes(c.seed, key)%uint64(len(c.slots))].Store(
		&cacheEntry[V]{key: string(key), val: val})
}
