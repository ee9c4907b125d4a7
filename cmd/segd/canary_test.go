package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Canary IDs: raw values that segd must hash on arrival and never write anywhere. Each is
// distinctive enough that finding it in a file or a log line can only mean a leak.
const (
	canaryUID    = "canary-uid-7f3a9c"
	canaryBUID   = "canary-buid-2b8e41"
	canaryIFA    = "C4A7A11E-5EED-4BAD-9F3A-7F3A9C2B8E41"
	canaryEID    = "canary-eid-d41c07"
	canaryNDJSON = "canary-ndjson-5e9b13"
	canaryEvent  = "canary-event-a8c2f0"
	canarySync   = "canary-sync-3c71de"
	canaryBid    = "canary-bid-91f4ab"
	canaryBad    = "canary-badline-6e2d90"
	canaryCookie = "ca7a11e5eedc0ffee0ddba11facade42" // a cookie ID as segd mints them
)

// lockedBuffer is a log sink that listeners may write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// TestCanaryIDsNeverStored sends canary IDs through every way into segd (admin imports and
// events, the collect pixel, ID sync and opt-out, bid requests, profile lookups and
// deletions, malformed requests that carry them), closes segd, and checks that no canary
// appears in any file of the data folder or in the debug log.
//
// Badger compresses its table blocks with Snappy (its default, which store.Open keeps),
// so a raw scan of the .sst files alone could miss a value split by compression; the
// write-ahead .mem and .vlog files are raw. The test therefore also reads every key and
// value back through Badger, all versions included.
func TestCanaryIDsNeverStored(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(logs), zapcore.DebugLevel))
	cfg, err := loadConfig([]string{"--data-dir", dir, "--bid-addr", "127.0.0.1:0",
		"--admin-addr", "127.0.0.1:0", "--collect-addr", "127.0.0.1:0",
		"--id-secret", testSecret}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := startApp(context.Background(), cfg, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, a)
	collect := "http://" + a.lis.collectAddr

	canaries := []string{canaryUID, canaryBUID, canaryIFA, strings.ToLower(canaryIFA),
		canaryEID, canaryNDJSON, canaryEvent, canarySync, canaryBid, canaryBad, canaryCookie}
	canaries = append(canaries, feedAdmin(t, c)...)
	canaries = append(canaries, feedCollect(t, collect)...)
	feedBid(t, c)
	feedMalformed(t, a.lis.bidAddr, a.lis.collectAddr)
	for _, q := range []string{"type=uid&id=" + canaryUID, "type=uid&id=" + canaryNDJSON,
		"type=uid&id=" + canaryEvent, "type=eid:id5-sync.com&id=" + canaryEID} {
		c.must("GET", c.admin+"/v1/profiles?"+q, nil, 200)
		c.must("DELETE", c.admin+"/v1/profiles?"+q, nil, 200)
	}
	c.must("DELETE", c.admin+"/v1/profiles?type=uid&id="+canaryBid, nil, 200)
	a.close()

	scanFiles(t, dir, canaries)
	scanBadger(t, dir, canaries)
	for line := range bytes.Lines(logs.Bytes()) {
		if leaked := found(line, canaries); len(leaked) > 0 {
			t.Errorf("log line holds raw IDs %v:\n%s", leaked, line)
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"level":"debug"`)) {
		t.Error("no debug line logged: the log was not at debug level")
	}
}

// feedAdmin defines sources and segments and sends the canaries through imports and
// events. It returns no further canaries: every value it uses is a constant.
func feedAdmin(t *testing.T, c testClient) []string {
	t.Helper()
	c.must("PUT", c.admin+"/v1/sources/crm",
		[]byte(`{"name":"CRM","party":"first","ttl":"720h"}`), 200)
	c.must("PUT", c.admin+"/v1/sources/web",
		[]byte(`{"name":"Web","party":"first","ttl":"720h"}`), 200)
	c.must("PUT", c.admin+"/v1/segments/gold", []byte(`{"name":"Gold","rule":"crm:gold"}`), 200)
	c.must("PUT", c.admin+"/v1/segments/visitors",
		[]byte(`{"name":"Visitors","rule":"web:visit"}`), 200)

	tsv := "uid:" + canaryUID + "|buid:" + canaryBUID + "\tgold\n" +
		"ifa:" + canaryIFA + "\tgold\n" +
		"eid:id5-sync.com:" + canaryEID + "\tgold\n" +
		"uid:" + canaryBad + " no tab here\n"
	c.must("POST", c.admin+"/v1/import?source=crm&format=tsv", []byte(tsv), 200)
	ndjson := `{"ids":[{"type":"uid","value":"` + canaryNDJSON + `"}],"add":["gold"]}` + "\n" +
		`{"ids":[{"type":"uid","value":"` + canaryBad + `"}],"add":["gold"],"ttl":"x"}` + "\n"
	c.must("POST", c.admin+"/v1/import?source=crm&format=ndjson", []byte(ndjson), 200)
	events := `{"ids":[{"type":"uid","value":"` + canaryEvent + `"}],"source":"web",` +
		`"traits":{"geo":"london"}}` + "\n" +
		`{"ids":[{"type":"uid","value":"` + canaryBad + `"}],"source":"nope"}` + "\n"
	c.must("POST", c.admin+"/v1/events", []byte(events), 200)
	return nil
}

// feedCollect sends pixels, an ID sync and an opt-out to the collect listener, and
// returns the cookie ID it minted for a browser without one.
func feedCollect(t *testing.T, base string) []string {
	t.Helper()
	call := func(method, path, cookie string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			req.Header.Set("Cookie", "segd_id="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Segd-Refused") != "" {
			t.Fatalf("%s %s: status %d, refused %q", method, path, resp.StatusCode,
				resp.Header.Get("X-Segd-Refused"))
		}
		return resp
	}
	call("GET", "/px?page=/pricing", canaryCookie)
	call("GET", "/sync?partner=acme&uid="+canarySync, canaryCookie)
	var minted string
	for _, ck := range call("GET", "/px?page=/home", "").Cookies() {
		minted = ck.Value
	}
	if len(minted) != 32 {
		t.Fatalf("minted cookie %q", minted)
	}
	call("GET", "/optout", canaryCookie)
	return []string{minted}
}

// feedBid sends bid requests that carry the canaries in every ID field segd reads.
func feedBid(t *testing.T, c testClient) {
	t.Helper()
	reqs := []string{
		`{"id":"1","imp":[{"id":"1"}],"user":{"id":"` + canaryUID + `","buyeruid":"` +
			canaryBUID + `"}}`,
		`{"id":"2","imp":[{"id":"1"}],"device":{"ifa":"` + canaryIFA + `"}}`,
		`{"id":"3","imp":[{"id":"1"}],"user":{"eids":[{"source":"id5-sync.com","uids":[` +
			`{"id":"` + canaryEID + `"}]}]}}`,
		`{"id":"4","imp":[{"id":"1"}],"user":{"ext":{"eids":[{"source":"acme","uids":[` +
			`{"id":"` + canarySync + `"}]}]}}}`,
		`{"id":"5","imp":[{"id":"1"}],"user":{"id":"` + canaryBid + `"}}`,
		`{"id":"6","imp":[{"id":"1"}],"user":{"id":"` + canaryNDJSON + `"},"regs":{"coppa":1}}`,
	}
	for _, r := range reqs {
		c.must("POST", c.bid+"/openrtb2/enrich", []byte(r), 200)
		c.must("POST", c.bid+"/openrtb2/segments", []byte(r), 200)
	}
	if out := c.must("POST", c.bid+"/openrtb2/enrich", []byte(reqs[0]), 200); !bytes.Contains(
		out, []byte(`"segment":[{"id":"gold"}]`)) {
		t.Errorf("canary profile not enriched, so its IDs were not linked: %s", out)
	}
	c.do("POST", c.bid+"/openrtb2/enrich", []byte(`{"user":{"id":"`+canaryBid+`"`))
}

// feedMalformed sends requests that the HTTP servers themselves refuse, with canaries in
// the request line and headers, where a server's own error messages might quote them.
func feedMalformed(t *testing.T, bidAddr, collectAddr string) {
	t.Helper()
	raw := []struct{ addr, req string }{
		{collectAddr, "GET /sync?partner=acme&uid=" + canarySync + " HTTP/1.1\r\nHost: x\r\n" +
			"Cookie: segd_id=" + canaryCookie + "\r\nBad header without colon\r\n\r\n"},
		{collectAddr, "GET /px HTTP/1.1\r\nHost: x\r\nCookie: segd_id=" + canaryCookie +
			"\r\nContent-Length: nope\r\n\r\n"},
		{bidAddr, "POST /openrtb2/enrich HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n" +
			"Bad header without colon\r\n\r\n" + `{"user":{"id":"` + canaryBid + `"}}`},
		{bidAddr, "POST /openrtb2/enrich HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" +
			`{"user":{"id":"` + canaryUID + `"}}`},
	}
	for _, r := range raw {
		conn, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, r.req)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		bufio.NewReader(conn).ReadString('\n') // the status line, or EOF
		conn.Close()
	}
}

// scanFiles reads every file under dir, raw, and reports the canaries found in it.
func scanFiles(t *testing.T, dir string, canaries []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if leaked := found(b, canaries); len(leaked) > 0 {
			t.Errorf("%s holds raw IDs %v", filepath.Base(path), leaked)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files in the data folder")
	}
}

// scanBadger reads every version of every key and value back through Badger, which
// decompresses the tables.
func scanBadger(t *testing.T, dir string, canaries []string) {
	t.Helper()
	bdb, err := badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	keys := 0
	err = bdb.View(func(tx *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.AllVersions = true
		it := tx.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			keys++
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if leaked := found(append(item.KeyCopy(nil), v...), canaries); len(leaked) > 0 {
				t.Errorf("key %q holds raw IDs %v", item.Key(), leaked)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys < 10 {
		t.Fatalf("only %d keys in Badger: the data did not land", keys)
	}
}

func found(b []byte, canaries []string) []string {
	var out []string
	for _, c := range canaries {
		if bytes.Contains(b, []byte(c)) {
			out = append(out, c)
		}
	}
	return out
}
