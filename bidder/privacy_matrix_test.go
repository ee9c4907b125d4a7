package bidder

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// The privacy matrix sends every combination of the privacy signals below through the bid
// listener and checks the answer against an oracle written from the policy's contract, not
// from its code: a request that may not be enriched must come back byte for byte, and one
// that may must carry exactly the segments its signals and the sources' rights allow.

// The index of the matrix holds two profiles: one reached only by a cookie ID (user.id),
// one only by the device's advertising ID, each in one segment per source.
const (
	matrixCookie = "cookie-7f3a"
	matrixIFA    = "5b0c9f2e-1d4a-4e8b-9c6d-2a7f0e3b8d15"
)

// matrixSource is a source of the matrix index with the rights the oracle expects of it.
type matrixSource struct {
	src         segments.Source
	segtax      int  // taxonomy of its segments
	consentOnly bool // served only with a TCF consent for segd
	underOptOut bool // served despite a US opt-out of sale or sharing
}

var matrixSources = []matrixSource{
	// First party with default rights: usable under a US opt-out.
	{src: segments.Source{ID: "crm", Name: "CRM", Party: segments.FirstParty},
		segtax: 4, underOptOut: true},
	// Third party with default rights: not usable under a US opt-out.
	{src: segments.Source{ID: "dmp", Name: "DMP", Party: segments.ThirdParty},
		segtax: 4},
	// Second party that says outright: consent only, and usable under a US opt-out.
	{src: segments.Source{ID: "pub", Name: "Publisher", Party: segments.SecondParty,
		Uses: segments.Uses{ConsentOnly: true, UnderUSOptOut: new(true)}},
		underOptOut: true, consentOnly: true},
}

// matrixSegment is one segment of the matrix index: source src's trait of the profile
// reached by the cookie ID or by the IFA.
type matrixSegment struct {
	src   *matrixSource
	byIFA bool
}

func (g matrixSegment) trait() string {
	if g.byIFA {
		return g.src.src.ID + ":device"
	}
	return g.src.src.ID + ":cookie"
}

// exportID is what the segment is called in user.data, such as "dmp-device".
func (g matrixSegment) exportID() string { return strings.Replace(g.trait(), ":", "-", 1) }

func matrixSegments() []matrixSegment {
	var gs []matrixSegment
	for i := range matrixSources {
		for _, byIFA := range []bool{false, true} {
			gs = append(gs, matrixSegment{src: &matrixSources[i], byIFA: byIFA})
		}
	}
	return gs
}

// matrixIndex builds the ready index of the matrix.
func matrixIndex(t *testing.T) *segments.Index {
	t.Helper()
	ix := segments.New(segments.NewHasher([]byte("matrix-secret-0123456789")),
		segments.Provider{ID: "segd", Name: "segd"})
	now := time.Now()
	txn := ix.Begin(now)
	defer txn.Rollback()
	for _, s := range matrixSources {
		src := s.src
		src.TTL = 48 * time.Hour
		if err := txn.PutSource(src); err != nil {
			t.Fatalf("source %s: %v", src.ID, err)
		}
	}
	for _, g := range matrixSegments() {
		def := segments.Segment{ID: g.exportID(), Name: g.exportID(), Rule: g.trait(),
			ExportID: g.exportID(), Segtax: g.src.segtax}
		if err := txn.PutSegment(def); err != nil {
			t.Fatalf("segment %s: %v", def.ID, err)
		}
	}
	h := ix.Hasher()
	cookie := txn.Resolve([]uint64{h.Hash(segments.ID{Type: segments.TypeUID,
		Value: matrixCookie})})
	device := txn.Resolve([]uint64{h.Hash(segments.ID{Type: segments.TypeIFA,
		Value: matrixIFA})})
	until := uint32(now.Add(24 * time.Hour).Unix())
	for _, g := range matrixSegments() {
		p := cookie
		if g.byIFA {
			p = device
		}
		txn.Add(p, g.trait(), until)
	}
	txn.Commit()
	ix.MarkReady()
	return ix
}

// gdprOption is where a request says whether GDPR applies and where its consent string
// goes.
type gdprOption struct {
	name string
	flag string // the flag's JSON value, "" for none
	v25  bool   // OpenRTB 2.5: regs.ext.gdpr, user.ext.consent, regs.ext.us_privacy
}

// tcfOption is a consent string and, written out by hand, what it grants.
type tcfOption struct {
	name      string
	present   bool // the consent field is sent, perhaps empty
	value     string
	valid     bool // a TCF v2 string that decodes
	purpose1  bool // consent to purpose 1, storage: cookie IDs may be read
	purpose34 bool // consent to purposes 3 and 4, personalised ads profile and selection
	ourVendor bool // consent to vendor ourVendor
}

type uspOption struct {
	name, value string // value "" for absent
	optOut      bool
}

type gppOption struct {
	name      string
	value     string // "" for absent, and then no gpp_sid either
	saleOut   bool
	adsOut    bool // targeted advertising
	undecoded bool
}

var (
	matrixGDPR = []gdprOption{
		{name: "gdpr=0", flag: "0"},
		{name: "gdpr=1", flag: "1"},
		{name: "gdpr absent"},
		{name: "ext.gdpr=0", flag: "0", v25: true},
		{name: "ext.gdpr=1", flag: "1", v25: true},
		{name: "ext.gdpr absent", v25: true},
	}
	matrixTCF = []tcfOption{
		{name: "tcf 1,3,4+vendor", present: true, value: tcfFull,
			valid: true, purpose1: true, purpose34: true, ourVendor: true},
		{name: "tcf 3,4+vendor", present: true, value: tcfNoP1,
			valid: true, purpose34: true, ourVendor: true},
		{name: "tcf no 3,4", present: true, value: tcfNoP3P4,
			valid: true, purpose1: true, ourVendor: true},
		{name: "tcf no vendor", present: true, value: tcfNoVendor,
			valid: true, purpose1: true, purpose34: true},
		{name: "tcf empty", present: true, value: ""},
		{name: "tcf malformed", present: true, value: tcfMalformed},
		{name: "tcf absent"},
	}
	// device.ext.atts as JSON, "" for absent. The string "2" is a denial of the wrong
	// type, which must not read as no answer at all.
	matrixATT = []string{"", "2", "3", `"2"`}
	matrixUSP = []uspOption{
		{name: "usp absent"},
		{name: "usp 1YYN", value: uspOptOut, optOut: true},
		{name: "usp 1YNN", value: uspNoOptOut},
	}
	matrixGPP = []gppOption{
		{name: "gpp absent"},
		{name: "gpp usnat no opt-out", value: gppUSNatNone},
		{name: "gpp usnat sale opt-out", value: gppUSNatOut, saleOut: true},
		{name: "gpp usnat ads opt-out", value: gppUSNatAds, adsOut: true},
		{name: "gpp usnat undecodable", value: gppUndecoded, undecoded: true},
	}
)

// matrixCase is one combination of signals.
type matrixCase struct {
	gdpr       gdprOption
	tcf        tcfOption
	coppa, lmt bool
	att        string // device.ext.atts as JSON, "" for absent
	usp        uspOption
	gpp        gppOption
	gpc        bool // Sec-GPC: 1
}

func (c *matrixCase) String() string {
	att := "atts absent"
	if c.att != "" {
		att = "atts=" + c.att
	}
	return strings.Join([]string{c.gdpr.name, c.tcf.name, "coppa=" + b01(c.coppa),
		"lmt=" + b01(c.lmt), att, c.usp.name, c.gpp.name, "gpc=" + b01(c.gpc)}, ", ")
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// want is the oracle: the export IDs the answer must carry, none meaning the request
// must come back unchanged.
func (c *matrixCase) want() []string {
	if c.coppa || c.gpp.undecoded || c.gpp.adsOut {
		return nil
	}

	// Without a flag, GDPR applies exactly when a consent string is sent.
	applies := c.gdpr.flag == "1" || c.gdpr.flag == "" && c.tcf.value != ""
	cookies, consented := true, false
	if applies {
		t := c.tcf
		if !t.valid || !t.purpose34 || !t.ourVendor {
			return nil
		}
		consented, cookies = true, t.purpose1
	}
	// Only ATT's "authorised", 3, or no ATT status at all lets the IFA be used.
	device := !c.lmt && (c.att == "" || c.att == "3")
	optOut := c.usp.optOut || c.gpp.saleOut || c.gpc

	var ids []string
	for _, g := range matrixSegments() {
		reached := g.byIFA && device || !g.byIFA && cookies
		if !reached || optOut && !g.src.underOptOut || g.src.consentOnly && !consented {
			continue
		}
		ids = append(ids, g.exportID())
	}
	slices.Sort(ids)
	return ids
}

// otherData is a user.data entry of another provider, which must survive enrichment.
const otherData = `{"id":"other-dp","segment":[{"id":"o1"}]}`

// body renders the request of case n, its fields in a fixed order.
func (c *matrixCase) body(n int) []byte {
	obj := func(members []string) string { return "{" + strings.Join(members, ",") + "}" }
	str := func(s string) string { return strconv.Quote(s) }

	user := []string{`"id":` + str(matrixCookie)}
	var userExt []string
	if c.tcf.present {
		if c.gdpr.v25 {
			userExt = append(userExt, `"consent":`+str(c.tcf.value))
		} else {
			user = append(user, `"consent":`+str(c.tcf.value))
		}
	}
	if len(userExt) > 0 {
		user = append(user, `"ext":`+obj(userExt))
	}
	user = append(user, `"data":[`+otherData+`]`)

	device := []string{`"os":"iOS"`, `"ifa":` + str(matrixIFA), `"lmt":` + b01(c.lmt)}
	if c.att != "" {
		device = append(device, `"ext":{"atts":`+c.att+`}`)
	}

	regs := []string{`"coppa":` + b01(c.coppa)}
	var regsExt []string
	if c.gdpr.flag != "" {
		if c.gdpr.v25 {
			regsExt = append(regsExt, `"gdpr":`+c.gdpr.flag)
		} else {
			regs = append(regs, `"gdpr":`+c.gdpr.flag)
		}
	}
	if c.usp.value != "" {
		if c.gdpr.v25 {
			regsExt = append(regsExt, `"us_privacy":`+str(c.usp.value))
		} else {
			regs = append(regs, `"us_privacy":`+str(c.usp.value))
		}
	}
	if c.gpp.value != "" {
		regs = append(regs, `"gpp":`+str(c.gpp.value), `"gpp_sid":[7]`)
	}
	if len(regsExt) > 0 {
		regs = append(regs, `"ext":`+obj(regsExt))
	}

	return []byte(obj([]string{
		`"id":"m` + strconv.Itoa(n) + `"`,
		`"imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]`,
		`"site":{"domain":"example.com","page":"https://example.com/a?b=c"}`,
		`"device":` + obj(device),
		`"user":` + obj(user),
		`"regs":` + obj(regs),
	}))
}

// matrixCases is the full product of the options.
func matrixCases() []matrixCase {
	cs := []matrixCase{{}}
	// times replaces cs with n copies of each case, set to option i in copy i.
	times := func(n int, set func(c *matrixCase, i int)) {
		var out []matrixCase
		for _, c := range cs {
			for i := range n {
				set(&c, i)
				out = append(out, c)
			}
		}
		cs = out
	}
	times(len(matrixGDPR), func(c *matrixCase, i int) { c.gdpr = matrixGDPR[i] })
	times(len(matrixTCF), func(c *matrixCase, i int) { c.tcf = matrixTCF[i] })
	times(2, func(c *matrixCase, i int) { c.coppa = i == 1 })
	times(2, func(c *matrixCase, i int) { c.lmt = i == 1 })
	times(len(matrixATT), func(c *matrixCase, i int) { c.att = matrixATT[i] })
	times(len(matrixUSP), func(c *matrixCase, i int) { c.usp = matrixUSP[i] })
	times(len(matrixGPP), func(c *matrixCase, i int) { c.gpp = matrixGPP[i] })
	times(2, func(c *matrixCase, i int) { c.gpc = i == 1 })
	return cs
}

// matrixServer serves the bid listener on a loopback port until the test ends and returns
// the enrich URL.
func matrixServer(t *testing.T, ix *segments.Index) string {
	t.Helper()
	cfg := Config{Privacy: PrivacyConfig{GVLVendorID: ourVendor},
		// A slow run must not turn an enrichment into an unchanged answer.
		MaxBudget: time.Minute}
	srv, err := NewServer(cfg, ix, &Metrics{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/openrtb2/enrich"
}

func TestPrivacyMatrix(t *testing.T) {
	url := matrixServer(t, matrixIndex(t))
	workers := max(4, runtime.GOMAXPROCS(0))
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	cases := matrixCases()
	var (
		enriched, unchanged atomic.Int64
		failed              atomic.Int64
		mu                  sync.Mutex
		served              = make(map[string]bool) // export IDs seen in some answer
	)
	fail := func(c *matrixCase, body []byte, format string, args ...any) {
		if failed.Add(1) <= 20 {
			t.Errorf("%s\nrequest %s\n"+format, append([]any{c, body}, args...)...)
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := range next {
				c := &cases[n]
				body := c.body(n)
				got, err := matrixPost(hc, url, body, c.gpc)
				if err != nil {
					fail(c, body, "%v", err)
					continue
				}
				want := c.want()
				if len(want) == 0 {
					unchanged.Add(1)
					if !bytes.Equal(got, body) {
						fail(c, body, "changed, want it byte for byte:\n%s", got)
					}
					continue
				}
				enriched.Add(1)
				if msg := checkEnriched(body, got, want); msg != "" {
					fail(c, body, "answer %s\n%s", got, msg)
				}
				mu.Lock()
				for _, id := range want {
					served[id] = true
				}
				mu.Unlock()
			}
		})
	}
	for n := range cases {
		next <- n
	}
	close(next)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d cases failed", n, len(cases))
	}
	t.Logf("%d cases: %d enriched, %d unchanged", len(cases), enriched.Load(), unchanged.Load())
	// The oracle must not have collapsed to one answer.
	if enriched.Load() == 0 || unchanged.Load() == 0 {
		t.Errorf("the matrix has %d enriched and %d unchanged cases; want both",
			enriched.Load(), unchanged.Load())
	}
	for _, g := range matrixSegments() {
		if !served[g.exportID()] {
			t.Errorf("no case expects segment %s", g.exportID())
		}
	}
}

// matrixPost posts body, with Sec-GPC: 1 when gpc, and returns the answer of a 200.
func matrixPost(hc *http.Client, url string, body []byte, gpc bool) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if gpc {
		req.Header.Set("Sec-GPC", "1")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.StatusCode, out}
	}
	return out, nil
}

type statusError struct {
	status int
	body   []byte
}

func (e *statusError) Error() string {
	return "status " + strconv.Itoa(e.status) + ": " + string(e.body)
}

// checkEnriched compares an enriched answer with its request: everything but user.data
// equal as JSON, the other provider's entry kept, and segd's entries (one per taxonomy)
// holding exactly the want export IDs, each in its source's taxonomy. It returns what is
// wrong, or "".
func checkEnriched(req, resp []byte, want []string) string {
	var in, out map[string]any
	if err := json.Unmarshal(req, &in); err != nil {
		return "request is not JSON: " + err.Error()
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return "answer is not JSON: " + err.Error()
	}
	user, ok := out["user"].(map[string]any)
	if !ok {
		return "answer has no user object"
	}
	data, ok := user["data"].([]any)
	if !ok {
		return "answer has no user.data array"
	}
	delete(user, "data")
	delete(in["user"].(map[string]any), "data")
	if !reflect.DeepEqual(in, out) {
		return "the answer differs from the request outside user.data"
	}

	segtaxOf := make(map[string]float64)
	for _, g := range matrixSegments() {
		segtaxOf[g.exportID()] = float64(g.src.segtax)
	}
	var others []any
	var got []string
	taxonomies := make(map[float64]bool)
	for _, e := range data {
		entry, _ := e.(map[string]any)
		if entry["id"] != "segd" {
			others = append(others, e)
			continue
		}
		if entry["name"] != "segd" {
			return "a segd entry is not named segd"
		}
		var tax float64
		if ext, ok := entry["ext"].(map[string]any); ok {
			tax, _ = ext["segtax"].(float64)
		}
		if taxonomies[tax] {
			return "two segd entries for segtax " + strconv.Itoa(int(tax))
		}
		taxonomies[tax] = true
		segs, _ := entry["segment"].([]any)
		for _, s := range segs {
			id, _ := s.(map[string]any)["id"].(string)
			if segtaxOf[id] != tax {
				return "segment " + id + " is under segtax " + strconv.Itoa(int(tax))
			}
			got = append(got, id)
		}
	}
	var kept []any
	if err := json.Unmarshal([]byte("["+otherData+"]"), &kept); err != nil {
		return err.Error()
	}
	if !reflect.DeepEqual(others, kept) {
		return "the other provider's user.data entry was not kept as it was"
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return "segments " + strings.Join(got, ",") + ", want " + strings.Join(want, ",")
	}
	return ""
}
