package bidder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/gif"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// fakeRecorder captures the events it is given and answers err.
type fakeRecorder struct {
	mu     sync.Mutex
	events []segments.EventLine
	err    error
}

func (r *fakeRecorder) Record(_ context.Context, ev segments.EventLine) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return r.err
}

func (r *fakeRecorder) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// take returns the events recorded so far and forgets them.
func (r *fakeRecorder) take() []segments.EventLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

// startCollector serves a collect listener on a loopback port until the test ends and
// returns it with its base URL, once it answers.
func startCollector(t *testing.T, cfg bidder.CollectConfig, rec bidder.Recorder) (
	*bidder.Collector, string) {
	t.Helper()
	c, err := bidder.NewCollector(cfg, rec, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	if a := collectCall(t, http.MethodGet, base+"/healthz", ""); a.status != 200 {
		t.Fatalf("healthz: %d %s", a.status, a.body)
	}
	return c, base
}

// collectClient follows no redirects and keeps no cookies: tests send and read them.
var collectClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type collectAnswer struct {
	status int
	header http.Header
	body   []byte
	cookie *http.Cookie // the Set-Cookie of the answer, if any
}

// collectCall sends one request with the given cookie ID, if any.
func collectCall(t *testing.T, method, url, cookieID string) collectAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookieID != "" {
		req.Header.Set("Cookie", "other=1; segd_id="+cookieID)
	}
	resp, err := collectClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := collectAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	if cookies := resp.Cookies(); len(cookies) == 1 {
		a.cookie = cookies[0]
	} else if len(cookies) > 1 {
		t.Fatalf("%d cookies set", len(cookies))
	}
	return a
}

var cookieIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantPixel checks that a is the transparent GIF with a valid cookie ID and returns the ID.
func wantPixel(t *testing.T, a collectAnswer, refused string) string {
	t.Helper()
	if a.status != 200 || a.header.Get("Content-Type") != "image/gif" {
		t.Fatalf("status %d, type %q: %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	if got := a.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if got := a.header.Get("X-Segd-Refused"); got != refused {
		t.Errorf("X-Segd-Refused %q, want %q", got, refused)
	}
	img, err := gif.Decode(bytes.NewReader(a.body))
	if err != nil {
		t.Fatalf("decode gif: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("gif is %v", b)
	}
	if _, _, _, alpha := img.At(0, 0).RGBA(); alpha != 0 {
		t.Errorf("pixel alpha %d, want transparent", alpha)
	}
	return wantCookie(t, a)
}

// wantCookie checks the attributes of the answer's cookie and returns its ID.
func wantCookie(t *testing.T, a collectAnswer) string {
	t.Helper()
	ck := a.cookie
	if ck == nil {
		t.Fatal("no cookie set")
	}
	if ck.Name != "segd_id" || !cookieIDPattern.MatchString(ck.Value) {
		t.Errorf("cookie %s=%s", ck.Name, ck.Value)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteNoneMode || ck.Path != "/" ||
		ck.MaxAge != 390*24*3600 || ck.Domain != "" {
		t.Errorf("cookie attributes: %s", ck.Raw)
	}
	return ck.Value
}

func TestCollectPixel(t *testing.T) {
	rec := &fakeRecorder{}
	c, base := startCollector(t, bidder.CollectConfig{}, rec)

	a := collectCall(t, http.MethodGet, base+"/px?ref=news&page=/pricing&cb=123&page=/pricing",
		"")
	id := wantPixel(t, a, "")
	want := []segments.EventLine{{
		IDs:    []segments.ID{{Type: segments.TypeBUID, Value: id}},
		Source: "web",
		Traits: []string{"page=/pricing", "ref=news"},
	}}
	checkEvents(t, rec.take(), want)

	a = collectCall(t, http.MethodGet, base+"/px", id)
	if got := wantPixel(t, a, ""); got != id {
		t.Errorf("cookie %s replaced by %s", id, got)
	}
	want[0].Traits = nil
	checkEvents(t, rec.take(), want)

	var m strings.Builder
	c.WritePrometheus(&m)
	for _, line := range []string{
		`segd_collect_requests_total{endpoint="px",result="recorded"} 2`,
		`segd_collect_cookies_issued_total 1`,
	} {
		if !strings.Contains(m.String(), line+"\n") {
			t.Errorf("metrics lack %s:\n%s", line, m.String())
		}
	}
}

func checkEvents(t *testing.T, got, want []segments.EventLine) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
}

func TestCollectCookieReplaced(t *testing.T) {
	rec := &fakeRecorder{}
	_, base := startCollector(t, bidder.CollectConfig{IDType: "uid"}, rec)
	for name, cookie := range map[string]string{
		"upper case": "0123456789ABCDEF0123456789abcdef",
		"short":      "0123456789abcdef0123456789abcde",
		"long":       "0123456789abcdef0123456789abcdef0",
		"not hex":    "0123456789abcdef0123456789abcdeg",
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			id := wantPixel(t, collectCall(t, http.MethodGet, base+"/px", cookie), "")
			if id == cookie {
				t.Errorf("cookie %q kept", cookie)
			}
			evs := rec.take()
			if len(evs) != 1 || evs[0].IDs[0] != (segments.ID{Type: "uid", Value: id}) {
				t.Errorf("events %+v", evs)
			}
		})
	}
}

func TestCollectPixelRefused(t *testing.T) {
	many := make([]string, segments.MaxEventTraits+1)
	for i := range many {
		many[i] = fmt.Sprintf("k%d=v", i)
	}
	tests := []struct {
		name, query string
		err         error // what the recorder answers
		want        string
		recorded    bool // whether the recorder saw the event
	}{
		{name: "upper-case key", query: "Page=x", want: "bad_trait"},
		{name: "dotted key", query: "a.b=x", want: "bad_trait"},
		{name: "empty value", query: "page=", want: "bad_trait"},
		{name: "no value", query: "page", want: "bad_trait"},
		{name: "space", query: "page=a+b", want: "bad_trait"},
		{name: "quote", query: "page=%22", want: "bad_trait"},
		{name: "comma", query: "ok=1&page=a,b", want: "bad_trait"},
		{name: "too many", query: strings.Join(many, "&"), want: "too_many_traits"},
		{name: "unknown source", query: "page=x", recorded: true,
			err:  fmt.Errorf("source %q: %w", "web", segments.ErrUnknownSource),
			want: "unknown_source"},
		{name: "unknown source as text", query: "page=x", recorded: true,
			err: errors.New(`event refused: source "web": unknown source`), want: "unknown_source"},
		{name: "timeout", query: "page=x", err: context.DeadlineExceeded, recorded: true,
			want: "timeout"},
		{name: "store failed", query: "page=x", err: errors.New("disk on fire"), recorded: true,
			want: "failed"},
	}
	rec := &fakeRecorder{}
	_, base := startCollector(t, bidder.CollectConfig{}, rec)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.setErr(tt.err)
			wantPixel(t, collectCall(t, http.MethodGet, base+"/px?"+tt.query, ""), tt.want)
			if n := len(rec.take()); n != 0 != tt.recorded {
				t.Errorf("%d events recorded", n)
			}
		})
	}
}

func TestCollectSync(t *testing.T) {
	rec := &fakeRecorder{}
	cfg := bidder.CollectConfig{RedirectHosts: []string{"sync.acme.com", ".Partner.example"}}
	_, base := startCollector(t, cfg, rec)
	const id = "00112233445566778899aabbccddeeff"

	a := collectCall(t, http.MethodGet, base+"/sync?partner=acme&uid=A-1", id)
	if wantPixel(t, a, "") != id {
		t.Errorf("cookie replaced")
	}
	want := []segments.EventLine{{
		IDs:    []segments.ID{{Type: "buid", Value: id}, {Type: "eid:acme", Value: "A-1"}},
		Source: "web", Traits: []string{"sync=acme"}, NoVisit: true,
	}}
	checkEvents(t, rec.take(), want)

	for _, tt := range []struct{ redirect, want string }{
		{"https://sync.acme.com/s?x=1", "https://sync.acme.com/s?x=1"},
		{"http://SYNC.acme.com./s", "http://SYNC.acme.com./s"},
		{"https://a.b.partner.example:8443/s?segd=${SEGD_ID}&y=2",
			"https://a.b.partner.example:8443/s?segd=" + id + "&y=2"},
	} {
		u := base + "/sync?partner=acme&uid=A-1&redirect=" + url.QueryEscape(tt.redirect)
		a := collectCall(t, http.MethodGet, u, id)
		if a.status != http.StatusFound || a.header.Get("Location") != tt.want {
			t.Errorf("redirect %s: status %d, Location %q", tt.redirect, a.status,
				a.header.Get("Location"))
		}
		if wantCookie(t, a) != id {
			t.Errorf("cookie replaced")
		}
		checkEvents(t, rec.take(), want)
	}

	a = collectCall(t, http.MethodHead, base+"/sync?partner=acme&uid=A-1", id)
	if a.status != 200 || len(rec.take()) != 0 {
		t.Errorf("HEAD: status %d, or it recorded", a.status)
	}
}

func TestCollectSyncNewCookie(t *testing.T) {
	rec := &fakeRecorder{err: errors.New("store closed")}
	_, base := startCollector(t, bidder.CollectConfig{RedirectHosts: []string{"p.example"}}, rec)
	redirect := url.QueryEscape("https://p.example/s?id=${SEGD_ID}")
	a := collectCall(t, http.MethodGet, base+"/sync?partner=p&uid=1&redirect="+redirect, "")
	id := wantCookie(t, a)
	if a.status != http.StatusFound || a.header.Get("Location") != "https://p.example/s?id="+id {
		t.Errorf("status %d, Location %q", a.status, a.header.Get("Location"))
	}
	if got := a.header.Get("X-Segd-Refused"); got != "failed" {
		t.Errorf("X-Segd-Refused %q", got)
	}
	if evs := rec.take(); len(evs) != 1 || evs[0].IDs[0].Value != id {
		t.Errorf("events %+v", evs)
	}
}

func TestCollectSyncBadRequests(t *testing.T) {
	rec := &fakeRecorder{}
	cfg := bidder.CollectConfig{RedirectHosts: []string{"p.example", ".q.example"}}
	_, base := startCollector(t, cfg, rec)
	long := strings.Repeat("x", segments.MaxIDValueLen+1)
	for name, query := range map[string]string{
		"no partner":       "uid=1",
		"bad partner":      "partner=Acme&uid=1",
		"no uid":           "partner=p",
		"empty uid":        "partner=p&uid=",
		"long uid":         "partner=p&uid=" + long,
		"empty redirect":   "partner=p&uid=1&redirect=",
		"relative":         "partner=p&uid=1&redirect=/s",
		"scheme-relative":  "partner=p&uid=1&redirect=//p.example/s",
		"javascript":       "partner=p&uid=1&redirect=javascript:alert(1)",
		"ftp":              "partner=p&uid=1&redirect=ftp://p.example/",
		"host not allowed": "partner=p&uid=1&redirect=https://evil.example/",
		"suffix trick":     "partner=p&uid=1&redirect=https://evilp.example/",
		"suffix apex":      "partner=p&uid=1&redirect=https://q.example/",
		"user info":        "partner=p&uid=1&redirect=https://evil.example@p.example/",
		"backslash": "partner=p&uid=1&redirect=" +
			url.QueryEscape(`https://evil.example\@p.example/`),
		"newline": "partner=p&uid=1&redirect=" + url.QueryEscape("https://p.example/\r\nX: 1"),
	} {
		t.Run(name, func(t *testing.T) {
			a := collectCall(t, http.MethodGet, base+"/sync?"+query, "")
			if a.status != 400 || a.header.Get("Content-Type") != "application/json" ||
				!bytes.HasPrefix(a.body, []byte(`{"error":"`)) {
				t.Errorf("status %d, %s", a.status, a.body)
			}
			if a.cookie != nil || a.header.Get("Location") != "" {
				t.Errorf("cookie %v, Location %q", a.cookie, a.header.Get("Location"))
			}
			if evs := rec.take(); len(evs) != 0 {
				t.Errorf("recorded %+v", evs)
			}
		})
	}
}

func TestCollectRoutes(t *testing.T) {
	rec := &fakeRecorder{}
	_, base := startCollector(t, bidder.CollectConfig{}, rec)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/healthz", 200},
		{http.MethodHead, "/px?page=x", 200},
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/px/", 404},
		{http.MethodGet, "/openrtb2/enrich", 404},
		{http.MethodPost, "/px", 405},
		{http.MethodPut, "/sync?partner=p&uid=1", 405},
		{http.MethodDelete, "/healthz", 405},
	}
	for _, tt := range tests {
		a := collectCall(t, tt.method, base+tt.path, "")
		if a.status != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, a.status, tt.status)
		}
		if tt.status == 405 && a.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, a.header.Get("Allow"))
		}
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Errorf("recorded %+v", evs)
	}
}

func TestCollectConfig(t *testing.T) {
	bad := bidder.CollectConfig{
		Source:        "Web",
		IDType:        "ifa",
		CookieName:    "a;b",
		CookieDomain:  "exa mple.com",
		CookieTTL:     401 * 24 * time.Hour,
		RedirectHosts: []string{"ok.example", ".", "https://x.example"},
		RecordTimeout: -1,
		MaxHeaderSize: -1,
	}
	_, err := bidder.NewCollector(bad, &fakeRecorder{}, zap.NewNop())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"source", "id type", "cookie name", "cookie domain",
		"cookie ttl", `redirect host "."`, `redirect host "https://x.example"`, "timeouts",
		"header limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	good := bidder.CollectConfig{Source: "site", IDType: "eid:example.com",
		CookieDomain: ".example.com", RedirectHosts: []string{".a.example", "127.0.0.1"}}
	if _, err := bidder.NewCollector(good, &fakeRecorder{}, zap.NewNop()); err != nil {
		t.Error(err)
	}
}

// TestCollectStore records through a real store and checks what the index learned:
// the trait, the synced partner ID, and two cookies merged by a shared partner ID.
func TestCollectStore(t *testing.T) {
	ix := segments.New(segments.NewHasher([]byte("collect test secret")),
		segments.Provider{ID: "segd", Name: "segd"})
	db, err := store.Open(store.Config{Dir: t.TempDir(), MemTableSize: 8 << 20,
		BlockCacheSize: 8 << 20}, ix, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, base := startCollector(t, bidder.CollectConfig{}, db)

	wantPixel(t, collectCall(t, http.MethodGet, base+"/px?page=/pricing", ""), "unknown_source")
	err = db.PutSource(segments.Source{ID: "web", Name: "Web", Party: segments.FirstParty,
		TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	err = db.PutSegment(segments.Segment{ID: "pricing", Name: "Pricing page",
		Rule: "web:page=/pricing in 30d"})
	if err != nil {
		t.Fatal(err)
	}

	cookieA := wantPixel(t, collectCall(t, http.MethodGet, base+"/px?page=/pricing", ""), "")
	a := lookup(t, ix, segments.ID{Type: "buid", Value: cookieA})
	if a.IDs != 1 || !slices.Contains(a.Segments, "pricing") {
		t.Errorf("profile of cookie A: %+v", a)
	}
	partnerID := segments.ID{Type: "eid:acme", Value: "ACME-7"}
	sync := base + "/sync?partner=acme&uid=ACME-7"
	wantPixel(t, collectCall(t, http.MethodGet, sync, cookieA), "")
	if p := lookup(t, ix, partnerID); p.Profile != a.Profile || p.IDs != 2 {
		t.Errorf("partner ID in %+v, cookie A in %+v", p, a)
	}

	cookieB := wantPixel(t, collectCall(t, http.MethodGet, base+"/px?page=/home", ""), "")
	if b := lookup(t, ix, segments.ID{Type: "buid", Value: cookieB}); b.Profile == a.Profile {
		t.Fatalf("a new cookie joined profile %d", a.Profile)
	}
	wantCount(t, ix, "web:visit in 30d", 2)

	wantPixel(t, collectCall(t, http.MethodGet, sync, cookieB), "")
	wantCount(t, ix, "web:visit in 30d", 1)
	wantCount(t, ix, "web:sync=acme in 1d", 1)
	want := lookup(t, ix, partnerID)
	for _, id := range []segments.ID{{Type: "buid", Value: cookieA},
		{Type: "buid", Value: cookieB}} {
		p := lookup(t, ix, id)
		if p.Profile != want.Profile || p.IDs != 3 || !slices.Contains(p.Segments, "pricing") {
			t.Errorf("%s: %+v, want profile %d with 3 IDs and pricing", id.Value, p, want.Profile)
		}
	}
}

func lookup(t *testing.T, ix *segments.Index, id segments.ID) segments.Profile {
	t.Helper()
	p, ok := ix.LookupProfile(ix.Hasher().Hash(id), time.Now())
	if !ok {
		t.Fatalf("no profile for %s", id.Type)
	}
	return p
}

func wantCount(t *testing.T, ix *segments.Index, rule string, want uint64) {
	t.Helper()
	n, err := ix.Count(rule)
	if err != nil || n != want {
		t.Errorf("count %s: %d, %v; want %d", rule, n, err, want)
	}
}
