package bidder

import (
	"testing"

	gpp "github.com/prebid/go-gpp"
	gppconst "github.com/prebid/go-gpp/constants"
	"github.com/prebid/go-gpp/sections"
	"github.com/prebid/go-gpp/sections/uspnat"
)

// gppUSNat encodes a GPP string with one US national section whose sale and targeting
// opt-outs are as given (1 opted out, 2 did not).
func gppUSNat(sale, targeting byte) string {
	core := uspnat.USPNATCoreSegment{Version: 1, SharingNotice: 1, SaleOptOutNotice: 1,
		SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1,
		SensitiveDataProcessingOptOutNotice: 1, SensitiveDataLimitUseNotice: 1,
		SaleOptOut: sale, SharingOptOut: 2, TargetedAdvertisingOptOut: targeting,
		SensitiveDataProcessing:         make([]byte, 12),
		KnownChildSensitiveDataConsents: make([]byte, 2),
		PersonalDataConsents:            2, MspaCoveredTransaction: 2, MspaOptOutOptionMode: 1,
		MspaServiceProviderMode: 2}
	sec := uspnat.USPNAT{CoreSegment: core, SectionID: gppconst.SectionUSPNAT,
		GPCSegment: sections.CommonUSGPCSegment{SubsectionType: 1}}
	sec.Value = string(sec.Encode(true))
	s, err := gpp.Encode([]gpp.Section{sec})
	if err != nil {
		panic(err)
	}
	return s
}

// ourVendor is the GVL vendor ID the policy tests run as.
const ourVendor = 77

var (
	tcfFull      = tcfString([]int{1, 2, 3, 4, 7}, []int{5, ourVendor})
	tcfNoP1      = tcfString([]int{2, 3, 4}, []int{ourVendor})
	tcfNoP3P4    = tcfString([]int{1, 2, 7}, []int{ourVendor})
	tcfNoVendor  = tcfString([]int{1, 3, 4}, []int{5, 6})
	tcfMalformed = "COzTVhaOzTVhaGvAAAENAiCIAP_AAH_AAAAAAEEUACCKAAA!!"
	uspOptOut    = "1YYN"
	uspNoOptOut  = "1YNN"
	gppUSNatOut  = gppUSNat(1, 2)
	gppUSNatAds  = gppUSNat(2, 1)
	gppUSNatNone = gppUSNat(2, 2)
	gppUndecoded = "DBABLA~!!!"
)

func TestTCFStringDecodes(t *testing.T) {
	got := decodeTCF(tcfFull, ourVendor)
	if !got.valid || !got.purpose1 || !got.purposes3and4 || !got.vendor {
		t.Fatalf("decodeTCF(full) = %+v", got)
	}
	if got := decodeTCF(tcfNoVendor, ourVendor); !got.valid || got.vendor {
		t.Errorf("decodeTCF(no vendor) = %+v", got)
	}
	if got := decodeTCF(tcfMalformed, ourVendor); got.valid {
		t.Errorf("decodeTCF(malformed) = %+v", got)
	}
}

func TestPolicy(t *testing.T) {
	p := newPolicy(PrivacyConfig{GVLVendorID: ourVendor})
	none := signals{gdpr: -1, atts: -1}
	with := func(f func(*signals)) signals {
		s := none
		f(&s)
		return s
	}
	tests := []struct {
		name string
		s    signals
		want verdict // why is not compared
	}{
		{"gdpr 0, nothing else", with(func(s *signals) { s.gdpr = 0 }), verdict{allow: true}},
		{"gdpr absent, no string: outside the GDPR", none, verdict{allow: true}},
		{"gdpr 1, full consent", with(func(s *signals) {
			s.gdpr, s.consent = 1, []byte(tcfFull)
		}), verdict{allow: true, consented: true}},
		{"gdpr absent, full consent", with(func(s *signals) { s.consent = []byte(tcfFull) }),
			verdict{allow: true, consented: true}},
		{"gdpr 1, no purpose 1", with(func(s *signals) {
			s.gdpr, s.consent = 1, []byte(tcfNoP1)
		}), verdict{allow: true, consented: true, noCookies: true}},
		{"gdpr 1, no purposes 3 and 4", with(func(s *signals) {
			s.gdpr, s.consent = 1, []byte(tcfNoP3P4)
		}), verdict{}},
		{"gdpr 1, not our vendor", with(func(s *signals) {
			s.gdpr, s.consent = 1, []byte(tcfNoVendor)
		}), verdict{}},
		{"gdpr 1, empty string", with(func(s *signals) { s.gdpr = 1 }), verdict{}},
		{"gdpr 1, malformed", with(func(s *signals) {
			s.gdpr, s.consent = 1, []byte(tcfMalformed)
		}), verdict{}},
		{"coppa", with(func(s *signals) { s.gdpr, s.coppa = 0, true }), verdict{}},
		{"lmt", with(func(s *signals) { s.gdpr, s.lmt = 0, true }),
			verdict{allow: true, noIFA: true}},
		{"att denied", with(func(s *signals) { s.gdpr, s.atts = 0, 2 }),
			verdict{allow: true, noIFA: true}},
		{"att authorised", with(func(s *signals) { s.gdpr, s.atts = 0, 3 }), verdict{allow: true}},
		{"us_privacy opt-out", with(func(s *signals) {
			s.gdpr, s.usPrivacy = 0, []byte(uspOptOut)
		}), verdict{allow: true, usOptedOut: true}},
		{"us_privacy no opt-out", with(func(s *signals) {
			s.gdpr, s.usPrivacy = 0, []byte(uspNoOptOut)
		}), verdict{allow: true}},
		{"us_privacy unreadable", with(func(s *signals) {
			s.gdpr, s.usPrivacy = 0, []byte("2YYN")
		}), verdict{allow: true, usOptedOut: true}},
		{"sec-gpc", with(func(s *signals) { s.gdpr, s.gpc = 0, true }),
			verdict{allow: true, usOptedOut: true}},
		{"gpp usnat sale opt-out", with(func(s *signals) {
			s.gdpr, s.gpp, s.gppSID = 0, []byte(gppUSNatOut), []int{7}
		}), verdict{allow: true, usOptedOut: true}},
		{"gpp usnat targeting opt-out", with(func(s *signals) {
			s.gdpr, s.gpp, s.gppSID = 0, []byte(gppUSNatAds), []int{7}
		}), verdict{}},
		{"gpp usnat no opt-out", with(func(s *signals) {
			s.gdpr, s.gpp, s.gppSID = 0, []byte(gppUSNatNone), []int{7}
		}), verdict{allow: true}},
		{"gpp undecodable section", with(func(s *signals) {
			s.gdpr, s.gpp, s.gppSID = 0, []byte(gppUndecoded), []int{7}
		}), verdict{}},
		{"gpp sid without string", with(func(s *signals) {
			s.gdpr, s.gppSID = 0, []int{2}
		}), verdict{}},
		{"gpp section not in sid is not read", with(func(s *signals) {
			s.gdpr, s.gpp, s.gppSID = 0, []byte(gppUndecoded), []int{}
		}), verdict{allow: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.decide(&tt.s)
			got.why = ""
			if got != tt.want {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}
