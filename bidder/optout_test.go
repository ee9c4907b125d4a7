package bidder_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// fakeDeleter is a Recorder that also deletes, remembering what it was asked to delete.
type fakeDeleter struct {
	fakeRecorder
	dmu     sync.Mutex
	deleted []segments.ID
	derr    error
}

func (d *fakeDeleter) DeleteProfile(_ context.Context, id segments.ID) (int, error) {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	d.deleted = append(d.deleted, id)
	return 1, d.derr
}

func (d *fakeDeleter) takeDeleted() []segments.ID {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	out := d.deleted
	d.deleted = nil
	return out
}

const testCookieID = "0123456789abcdef0123456789abcdef"

// wantCleared checks that a clears the cookie with the attributes it was set with.
func wantCleared(t *testing.T, a collectAnswer) {
	t.Helper()
	ck := a.cookie
	if ck == nil {
		t.Fatal("cookie not cleared")
	}
	if ck.Name != "segd_id" || ck.Value != "" || ck.MaxAge >= 0 || ck.Path != "/" ||
		!ck.Secure || !ck.HttpOnly || !strings.Contains(ck.Raw, "max-age=0") {
		t.Errorf("clearing cookie: %s", ck.Raw)
	}
}

func TestCollectOptout(t *testing.T) {
	del := &fakeDeleter{}
	c, base := startCollector(t, bidder.CollectConfig{IDType: "uid"}, del)

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		a := collectCall(t, method, base+"/optout", testCookieID)
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") ||
			!strings.Contains(string(a.body), "deleted") {
			t.Errorf("%s: status %d, type %q: %s", method, a.status,
				a.header.Get("Content-Type"), a.body)
		}
		wantCleared(t, a)
		got := del.takeDeleted()
		if len(got) != 1 || got[0] != (segments.ID{Type: "uid", Value: testCookieID}) {
			t.Errorf("%s: deleted %+v", method, got)
		}
	}

	a := collectCall(t, http.MethodGet, base+"/optout", "")
	if a.status != 200 || !strings.Contains(string(a.body), "Nothing to delete") ||
		a.cookie != nil {
		t.Errorf("no cookie: status %d, cookie %v: %s", a.status, a.cookie, a.body)
	}
	a = collectCall(t, http.MethodGet, base+"/optout", "not-ours")
	if a.status != 200 || !strings.Contains(string(a.body), "Nothing to delete") {
		t.Errorf("foreign cookie: status %d: %s", a.status, a.body)
	}
	wantCleared(t, a)
	if a = collectCall(t, http.MethodHead, base+"/optout", testCookieID); a.status != 200 {
		t.Errorf("HEAD: status %d", a.status)
	}
	a = collectCall(t, http.MethodPut, base+"/optout", testCookieID)
	if a.status != 405 || a.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT: status %d, Allow %q", a.status, a.header.Get("Allow"))
	}
	if got := del.takeDeleted(); len(got) != 0 {
		t.Errorf("deleted %+v without a cookie ID, by HEAD or by PUT", got)
	}

	del.dmu.Lock()
	del.derr = errors.New("disk on fire")
	del.dmu.Unlock()
	a = collectCall(t, http.MethodGet, base+"/optout", testCookieID)
	if a.status != 503 || a.cookie != nil {
		t.Errorf("store failed: status %d, cookie %v; want 503 keeping the cookie", a.status,
			a.cookie)
	}

	var m strings.Builder
	c.WritePrometheus(&m)
	for _, line := range []string{
		`segd_collect_requests_total{endpoint="optout",result="recorded"} 4`,
		`segd_collect_requests_total{endpoint="optout",result="head"} 1`,
		`segd_collect_requests_total{endpoint="optout",result="bad_request"} 1`,
		`segd_collect_requests_total{endpoint="optout",result="failed"} 1`,
	} {
		if !strings.Contains(m.String(), line+"\n") {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// TestCollectOptoutWithoutDeleter checks that a recorder that cannot delete gets 501, and
// that the cookie stays.
func TestCollectOptoutWithoutDeleter(t *testing.T) {
	_, base := startCollector(t, bidder.CollectConfig{}, &fakeRecorder{})
	a := collectCall(t, http.MethodGet, base+"/optout", testCookieID)
	if a.status != 501 || a.cookie != nil {
		t.Errorf("status %d, cookie %v; want 501 without clearing", a.status, a.cookie)
	}
}

// TestCollectOptoutStore opts a browser out through a real store: its cookie ID and the
// partner ID synced to it are deleted and suppressed, and later hits with the old cookie
// are refused as opted out.
func TestCollectOptoutStore(t *testing.T) {
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
	err = db.PutSource(segments.Source{ID: "web", Name: "Web", Party: segments.FirstParty,
		TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, base := startCollector(t, bidder.CollectConfig{}, db)

	cookie := wantPixel(t, collectCall(t, http.MethodGet, base+"/px?page=/pricing", ""), "")
	wantPixel(t, collectCall(t, http.MethodGet, base+"/sync?partner=acme&uid=ACME-9", cookie),
		"")
	partner := segments.ID{Type: "eid:acme", Value: "ACME-9"}
	if p := lookup(t, ix, partner); p.IDs != 2 {
		t.Fatalf("synced profile %+v", p)
	}

	a := collectCall(t, http.MethodPost, base+"/optout", cookie)
	if a.status != 200 {
		t.Fatalf("optout: status %d: %s", a.status, a.body)
	}
	wantCleared(t, a)
	for _, id := range []segments.ID{{Type: "buid", Value: cookie}, partner} {
		if _, ok := ix.LookupProfile(ix.Hasher().Hash(id), time.Now()); ok {
			t.Errorf("%s still linked after opt-out", id.Type)
		}
	}
	wantPixel(t, collectCall(t, http.MethodGet, base+"/px?page=/home", cookie), "opted_out")
	wantCount(t, ix, "web:visit in 30d", 0)
}
