package bidder

import (
	"reflect"
	"testing"
)

// FuzzConsent feeds arbitrary TCF, GPP and US Privacy strings to the decoders the policy
// uses. None may panic; a string that does not decode grants nothing; the cache answers as
// the decoder does; and a GPP string that names a TCF section grants no more than that
// section's string alone.
func FuzzConsent(f *testing.F) {
	for _, s := range []string{tcfFull, tcfNoP1, tcfNoP3P4, tcfNoVendor, "", "CP", "not consent"} {
		f.Add(s, gppUSNat(1, 2), "1YN-")
	}
	f.Add(tcfFull, gppUSNat(2, 1), "1NN-")
	f.Add("", "DBABMA~"+tcfFull, "1---")
	f.Add("", "DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN", "bad")

	p := newPolicy(PrivacyConfig{GVLVendorID: ourVendor})
	f.Fuzz(func(t *testing.T, consent, gppStr, usp string) {
		tv := decodeTCF(consent, ourVendor)
		if !tv.valid && tv != (tcfVerdict{}) {
			t.Errorf("TCF %q did not decode yet grants %+v", consent, tv)
		}
		for range 2 { // the second answer comes from the cache
			if got := p.tcfVerdict([]byte(consent)); got != tv {
				t.Errorf("TCF %q: the policy says %+v, the decoder %+v", consent, got, tv)
			}
		}

		g := decodeGPP(gppStr, ourVendor)
		if !g.valid && (len(g.present) > 0 || g.hasTCF) {
			t.Errorf("GPP %q did not decode yet has sections %+v", gppStr, g)
		}
		if g.hasTCF && !g.tcf.valid && g.tcf != (tcfVerdict{}) {
			t.Errorf("GPP %q: its TCF section did not decode yet grants %+v", gppStr, g.tcf)
		}
		if got := p.gppVerdict([]byte(gppStr)); !reflect.DeepEqual(got, g) {
			t.Errorf("GPP %q: the policy says %+v, the decoder %+v", gppStr, got, g)
		}

		if u := uspString(usp); u.valid && len(usp) != 4 || !u.valid && u != (usVerdict{}) {
			t.Errorf("US Privacy %q read as %+v", usp, u)
		}
	})
}
