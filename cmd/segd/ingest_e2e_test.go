package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestIngestStreamLimit runs segd with room for one import at a time. While an import
// whose body is still arriving holds the slot, another import and an event batch get 429
// with Retry-After and nothing of theirs is stored; once it ends, both are accepted, and
// the held import's lines were all stored.
func TestIngestStreamLimit(t *testing.T) {
	a := startTestApp(t, t.TempDir(), "--max-ingest-streams", "1")
	defer a.close()
	c := newClient(t, a)
	c.putSources("crm", "web")

	body, feed := io.Pipe()
	held := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(c.admin+"/v1/import?source=crm&format=tsv", "text/plain", body)
		if err != nil {
			t.Error(err)
		}
		held <- resp
	}()
	if _, err := io.WriteString(feed, "uid:held-1\tgold\n"); err != nil {
		t.Fatal(err)
	}
	// The slot is taken before the body is read, so once the line has gone through, or the
	// gauge says so, the import holds it. Bounded, and no sleeping: each look is a request.
	for i := 0; !strings.Contains(string(c.must("GET", c.admin+"/metrics", nil, 200)),
		"\nsegd_ingest_streams 1\n"); i++ {
		if i == 10_000 {
			t.Fatal("the held import never showed in segd_ingest_streams")
		}
	}

	for _, path := range []string{"/v1/import?source=crm&format=tsv", "/v1/events"} {
		line := "uid:refused\tgold\n"
		if path == "/v1/events" {
			line = `{"ids":[{"type":"uid","value":"refused"}],"source":"web","traits":{"page":"/x"}}` + "\n"
		}
		req, _ := http.NewRequest("POST", c.admin+path, strings.NewReader(line))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s while another import runs: %d, Retry-After %q: %s", path,
				resp.StatusCode, resp.Header.Get("Retry-After"), out)
		}
	}

	io.WriteString(feed, "uid:held-2\tgold\n")
	feed.Close()
	resp := <-held
	if resp == nil {
		t.FailNow()
	}
	var res struct{ Accepted, Rejected int }
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 200 || res.Accepted != 2 {
		t.Errorf("the held import: status %d, %+v", resp.StatusCode, res)
	}
	c.must("GET", c.admin+"/v1/profiles?type=uid&id=held-2", nil, 200)
	c.must("GET", c.admin+"/v1/profiles?type=uid&id=refused", nil, 404)
	c.must("POST", c.admin+"/v1/import?source=crm&format=tsv", []byte("uid:after\tgold\n"), 200)
	metrics := string(c.must("GET", c.admin+"/metrics", nil, 200))
	if !strings.Contains(metrics, "\nsegd_ingest_refused_total 2\n") {
		t.Error("the refusals were not counted in segd_ingest_refused_total")
	}
}

// TestIngestRate imports more lines than one second of a low --ingest-rate allows: the
// import is slowed, never cut short, and every line is stored.
func TestIngestRate(t *testing.T) {
	a := startTestApp(t, t.TempDir(), "--ingest-rate", "400")
	defer a.close()
	c := newClient(t, a)
	c.putSources("crm")
	var b strings.Builder
	for i := range 500 {
		b.WriteString("uid:paced-" + strconv.Itoa(i) + "\tgold\n")
	}
	out := c.must("POST", c.admin+"/v1/import?source=crm&format=tsv", []byte(b.String()), 200)
	var res struct{ Accepted, Rejected int }
	if err := json.Unmarshal(out, &res); err != nil || res.Accepted != 500 || res.Rejected != 0 {
		t.Fatalf("paced import: %s", out)
	}
	c.must("GET", c.admin+"/v1/profiles?type=uid&id=paced-499", nil, 200)
}
