package bidder_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/segd/segd/bidder"
)

// badInput is one malformed request of the corpus.
type badInput struct {
	kind string // the family it belongs to, for the counts
	body []byte
}

// malformedBase is a request that segd enriches, with every field that segd reads.
const malformedBase = `{"id":"r1","tmax":500,"imp":[{"id":"1","banner":{"w":300,"h":250}}],` +
	`"device":{"ifa":"ab-cd-ef","ua":"x"},"regs":{"coppa":0},"user":{"id":"u1",` +
	`"buyeruid":"b1","data":[{"id":"dp","segment":[{"id":"7"}]},{"id":"segd","segment":[]}],` +
	`"eids":[{"source":"id5-sync.com","uids":[{"id":"E5"}]}],"ext":{"eids":[` +
	`{"source":"id5-sync.com","uids":[{"id":"E5"}]}]}}}`

// fieldSlots put a value in place of %s at each field that segd reads, and in the
// containers around them.
var fieldSlots = []string{
	`{"id":"r","tmax":%s,"user":{"id":"u1"}}`,
	`{"id":"r","user":%s}`,
	`{"id":"r","device":%s,"user":{"id":"u1"}}`,
	`{"id":"r","device":{"ifa":%s}}`,
	`{"id":"r","regs":%s,"user":{"id":"u1"}}`,
	`{"id":"r","regs":{"coppa":%s},"user":{"id":"u1"}}`,
	`{"user":{"id":%s}}`,
	`{"user":{"buyeruid":%s}}`,
	`{"user":{"id":"u1","data":%s}}`,
	`{"user":{"id":"u1","data":[%s]}}`,
	`{"user":{"id":"u1","data":[{"id":%s,"segment":[]}]}}`,
	`{"user":{"id":"u1","data":[{"id":"segd","segment":%s}]}}`,
	`{"user":{"eids":%s}}`,
	`{"user":{"eids":[%s]}}`,
	`{"user":{"eids":[{"source":%s,"uids":[{"id":"E5"}]}]}}`,
	`{"user":{"eids":[{"source":"id5-sync.com","uids":%s}]}}`,
	`{"user":{"eids":[{"source":"id5-sync.com","uids":[%s]}]}}`,
	`{"user":{"eids":[{"source":"id5-sync.com","uids":[{"id":%s}]}]}}`,
	`{"user":{"ext":%s}}`,
	`{"user":{"ext":{"eids":%s}}}`,
	`{"user":{"ext":{"eids":[{"source":"id5-sync.com","uids":[{"id":%s}]}]}}}`,
	`{"imp":%s,"user":{"id":"u1"}}`,
	`{%s:1,"user":{"id":"u1"}}`,
	`%s`,
}

// oddValues are values of every JSON type, and tokens that are not JSON.
var oddValues = []string{
	`0`, `1`, `-1`, `1.5`, `-0`, `1e999`, `-1e999`, `1e-999`, `123456789012345678901234567890`,
	`""`, `"str"`, `"u1"`, `"\u0000"`, `"\ud800"`, `"\udc00x"`, `"\ud800\ud800"`, `"\\"`,
	`true`, `false`, `null`, `[]`, `[1,"a",null]`, `{}`, `{"id":"u1"}`, `[[[[[]]]]]`,
	`tru`, `nul`, `01`, `1.`, `.5`, `+1`, `NaN`, `Infinity`, `'x'`, `"open`, `0x10`, `1e`,
	`--1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `"\x"`, `"\u12"`, `/*c*/1`, ``, `,`, `]`,
	`}`, "\"tab\tin\"", "\"nl\nin\"", "\x00", "\"\xff\"",
}

// malformedCorpus generates the corpus deterministically.
func malformedCorpus(t *testing.T, limit int) []badInput {
	sample, err := os.ReadFile("testdata/request-2k.json")
	if err != nil {
		t.Fatal(err)
	}
	var in []badInput
	add := func(kind string, body []byte) { in = append(in, badInput{kind, body}) }

	for n := range len(sample) {
		add("truncated", sample[:n])
	}
	for _, slot := range fieldSlots {
		for _, v := range oddValues {
			add("wrong type", []byte(strings.Replace(slot, "%s", v, 1)))
		}
	}
	for _, b := range duplicateKeys() {
		add("duplicate key", b)
	}
	for _, b := range deepNesting(limit) {
		add("deep nesting", b)
	}
	for _, b := range badUTF8() {
		add("invalid UTF-8", b)
	}
	for _, b := range hugeStrings(limit) {
		add("huge", b)
	}
	for _, b := range oddEncodings() {
		add("encoding", b)
	}
	for _, b := range nulBytes() {
		add("NUL", b)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	base := []byte(malformedBase)
	for range 400 {
		b := bytes.Clone(base)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		add("byte flips", b)
	}
	return in
}

func duplicateKeys() [][]byte {
	var out [][]byte
	for _, s := range []string{
		`{"user":{"id":"u1"},"user":{"id":"u1"}}`,
		`{"user":{"id":"u1","id":"u1"}}`,
		`{"user":{"buyeruid":"b","buyeruid":"b","id":"u1"}}`,
		`{"tmax":100,"tmax":200,"user":{"id":"u1"}}`,
		`{"regs":{"coppa":0},"regs":{"coppa":0},"user":{"id":"u1"}}`,
		`{"regs":{"coppa":0,"coppa":1},"user":{"id":"u1"}}`,
		`{"device":{"ifa":"ab-cd-ef"},"device":{"ifa":"x"}}`,
		`{"device":{"ifa":"ab-cd-ef","ifa":"ab-cd-ef"}}`,
		`{"user":{"id":"u1","data":[],"data":[]}}`,
		`{"user":{"eids":[],"eids":[{"source":"id5-sync.com","uids":[{"id":"E5"}]}]}}`,
		`{"user":{"eids":[{"source":"a","source":"id5-sync.com","uids":[{"id":"E5"}]}]}}`,
		`{"user":{"eids":[{"source":"id5-sync.com","uids":[{"id":"E5","id":"x"}]}]}}`,
		`{"user":{"ext":{},"ext":{"eids":[]},"id":"u1"}}`,
		`{"user":{"ext":{"eids":[],"eids":[]},"id":"u1"}}`,
		`{"user":{"id":"u1","data":[{"id":"segd","id":"dp","segment":[]}]}}`,
		`{"u\u0073er":{"id":"u1"},"user":{"id":"u1"}}`,
		`{"user":{"\u0069d":"u1","id":"u1"}}`,
		`{"id":"a","id":"b","user":{"id":"u1"}}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// deepNesting nests arrays and objects around and inside the fields segd reads, to depths
// on both sides of the limit of 64 and far past it.
func deepNesting(limit int) [][]byte {
	var out [][]byte
	for _, depth := range []int{62, 63, 64, 65, 66, 100, 1000, 10000, limit/2 - 64} {
		arr := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		obj := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
		for _, s := range []string{
			`{"x":` + arr + `,"user":{"id":"u1"}}`,
			`{"user":{"id":"u1","ext":` + obj + `}}`,
			`{"user":{"id":"u1","data":[{"id":"dp","segment":` + arr + `}]}}`,
			`{"user":{"eids":[{"source":"id5-sync.com","uids":[{"id":"E5","ext":` + obj + `}]}]}}`,
			arr,
			strings.Repeat("[", depth), // never closed
		} {
			if len(s) <= limit {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

func badUTF8() [][]byte {
	var out [][]byte
	for _, bad := range []string{
		"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xed\xbf\xbf",
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
		"\xc3", "\xe2\x82", "\xf0\x9f\x98", "a\xc3(b",
	} {
		for _, slot := range []string{
			`{"user":{"id":"%s"}}`, `{"user":{"id":"u1","x":"%s"}}`, `{"%s":1,"user":{"id":"u1"}}`,
			`{"device":{"ifa":"ab-cd-ef%s"}}`,
			`{"user":{"eids":[{"source":"id5-sync.com%s","uids":[{"id":"E5"}]}]}}`,
			`{"user":{"id":"u1"}}%s`, `%s{"user":{"id":"u1"}}`,
		} {
			out = append(out, []byte(strings.Replace(slot, "%s", bad, 1)))
		}
	}
	return out
}

// hugeStrings fill bodies up to the size limit, and one byte past it.
func hugeStrings(limit int) [][]byte {
	fill := func(prefix, unit, suffix string, size int) []byte {
		n := (size - len(prefix) - len(suffix)) / len(unit)
		return []byte(prefix + strings.Repeat(unit, n) + suffix)
	}
	return [][]byte{
		fill(`{"user":{"id":"`, "a", `"}}`, limit),
		fill(`{"user":{"id":"`, "a", `"}}`, limit+1),
		fill(`{"user":{"id":"`, `\u00e9`, `"}}`, limit),
		fill(`{"user":{"id":"u1","x":"`, `\"`, `"}}`, limit),
		fill(`{"user":{"eids":[{"source":"id5-sync.com","uids":[{"id":"`, "E", `"}]}]}}`, limit),
		fill(`{"`, "k", `":1,"user":{"id":"u1"}}`, limit),
		fill(`{"user":{"id":"u1"},"x":[`, `1,`, `1]}`, limit),
		fill(`{"user":{"id":"u1"},"eids":[`, `{"source":"s","uids":[{"id":"i"}]},`, `{}]}`, limit),
		fill(`{"user":{"eids":[`, `{"source":"s","uids":[{"id":"i"}]},`, `{}]}}`, limit),
		fill(`{"user":{"id":"u1"}`, " ", `}`, limit),
		fill(`{"user":{"id":"u1"}}`, " ", ``, limit+1),
		fill(`{"user":{"id":"`, "a", ``, limit),
		fill(`{"x":"`, `\u`, `"}`, limit),
	}
}

// oddEncodings are valid requests in encodings other than UTF-8, or with a byte order mark.
func oddEncodings() [][]byte {
	const req = `{"user":{"id":"u1"}}`
	u16 := utf16.Encode([]rune(req))
	le := []byte{0xff, 0xfe}
	be := []byte{0xfe, 0xff}
	for _, u := range u16 {
		le = binary.LittleEndian.AppendUint16(le, u)
		be = binary.BigEndian.AppendUint16(be, u)
	}
	var le32 []byte
	for _, r := range "\ufeff" + req {
		le32 = binary.LittleEndian.AppendUint32(le32, uint32(r))
	}
	return [][]byte{le, be, le[2:], be[2:], le32, []byte("\xef\xbb\xbf" + req),
		[]byte(req + "\xef\xbb\xbf"), []byte(`{"user":{"id":"\xef\xbb\xbfu1"}}`)}
}

func nulBytes() [][]byte {
	const req = `{"user":{"id":"u1"},"x":"y"}`
	var out [][]byte
	for i := 0; i <= len(req); i++ {
		out = append(out, []byte(req[:i]+"\x00"+req[i:]))
	}
	return append(out, []byte(`{"user":{"id":"u1\u0000"}}`), bytes.Repeat([]byte{0}, 1024))
}

// answerOK reports what is wrong with an answer, or "": a 4xx with a JSON error, or 200
// with the request unchanged, or 200 with the valid request enriched and nothing else
// changed. /openrtb2/segments answers with a JSON array instead.
func answerOK(path string, in []byte, status int, out []byte) string {
	switch {
	case status >= 400 && status < 500:
		var e struct{ Error string }
		if json.Unmarshal(out, &e) != nil || e.Error == "" {
			return fmt.Sprintf("status %d without a JSON error: %q", status, out)
		}
		return ""
	case status != http.StatusOK:
		return fmt.Sprintf("status %d", status)
	case path == "/openrtb2/segments":
		var arr []struct{ ID string }
		if json.Unmarshal(out, &arr) != nil {
			return fmt.Sprintf("segments answer is not a JSON array: %q", out)
		}
		return ""
	case bytes.Equal(in, out):
		return ""
	case !json.Valid(in):
		return fmt.Sprintf("invalid request changed: %q", out)
	}
	return sameButSegd(in, out)
}

// sameButSegd checks that out is in with segd's user.data objects added, and no other
// change.
func sameButSegd(in, out []byte) string {
	a, errIn := decodeNumbers(in)
	b, errOut := decodeNumbers(out)
	if errIn != nil || errOut != nil {
		return fmt.Sprintf("enriched answer is not JSON (%v, %v): %q", errIn, errOut, out)
	}
	if !dropSegd(b, a) {
		return fmt.Sprintf("answer has no segd user.data: %q", out)
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("answer changed more than user.data:\nin  %q\nout %q", in, out)
	}
	return ""
}

// decodeNumbers decodes JSON keeping numbers as written, so that 1e999 decodes too.
func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// dropSegd removes segd's user.data objects from out, and what segd created to hold them
// when in lacks it, and reports whether there were any. in loses segd's objects too: an
// enriched request replaces them.
func dropSegd(out, in any) bool {
	ro, _ := out.(map[string]any)
	ri, _ := in.(map[string]any)
	uo, _ := ro["user"].(map[string]any)
	if uo == nil {
		return false
	}
	ui, _ := ri["user"].(map[string]any)
	found := false
	keep := func(data []any, mark bool) []any {
		var kept []any
		for _, d := range data {
			if m, _ := d.(map[string]any); m != nil && m["id"] == "segd" {
				found = found || mark
				continue
			}
			kept = append(kept, d)
		}
		return kept
	}
	do, _ := uo["data"].([]any)
	uo["data"] = keep(do, true)
	di, had := ui["data"]
	switch {
	case !had && len(uo["data"].([]any)) == 0:
		delete(uo, "data")
	case di == nil && len(uo["data"].([]any)) == 0:
		uo["data"] = nil // segd fills a null user.data
	case had:
		di, _ := di.([]any)
		ui["data"] = keep(di, false)
	}
	if _, had := ri["user"]; !had && len(uo) == 0 {
		delete(ro, "user")
	} else if ri["user"] == nil && len(uo) == 0 {
		ro["user"] = nil
	}
	return found
}

// TestMalformedCorpus sends every request of the corpus through a real listener and
// checks that none gets a 5xx, that the server keeps serving, and that its heap stays
// bounded.
func TestMalformedCorpus(t *testing.T) {
	const limit = 64 << 10 // a smaller body limit keeps the run short
	base := startServer(t, bidder.Config{MaxBodySize: limit}, readyIndex(t, testIDs...))
	corpus := malformedCorpus(t, limit)
	if len(corpus) < 1000 {
		t.Fatalf("only %d inputs", len(corpus))
	}
	httpc := &http.Client{Timeout: 30 * time.Second}
	counts := map[string]int{}
	statuses := map[int]int{}
	for i, in := range corpus {
		for _, path := range []string{"/openrtb2/enrich", "/openrtb2/segments"} {
			if path == "/openrtb2/segments" && i%3 != 0 {
				continue // a third of them is enough for the second endpoint
			}
			status, out, err := sendMalformed(httpc, base+path, in.body)
			if err != nil && len(in.body) > limit {
				continue // the server may close before it has read an oversize body
			}
			if err != nil {
				t.Fatalf("%s %d (%s): %v", in.kind, i, path, err)
			}
			statuses[status]++
			if msg := answerOK(path, in.body, status, out); msg != "" {
				t.Errorf("%s %d to %s, body %.200q: %s", in.kind, i, path, in.body, msg)
			}
		}
		counts[in.kind]++
		if i%250 == 0 {
			checkServing(t, base)
		}
	}
	raw := sendRawHTTP(t, strings.TrimPrefix(base, "http://"), limit)
	checkServing(t, base)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const bound = 256 << 20
	if ms.HeapInuse > bound {
		t.Errorf("heap in use %d MiB after the corpus, want under %d MiB", ms.HeapInuse>>20,
			bound>>20)
	}
	t.Logf("%d bodies %v, %d raw HTTP requests; answers by status %v; heap in use %d MiB",
		len(corpus), counts, raw, statuses, ms.HeapInuse>>20)
}

func sendMalformed(c *http.Client, url string, body []byte) (int, []byte, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes(), err
}

// checkServing checks that the server still answers health checks and enriches.
func checkServing(t *testing.T, base string) {
	t.Helper()
	if status, _, body := call(t, http.MethodGet, base+"/healthz", nil); status != 200 {
		t.Fatalf("healthz: %d %s", status, body)
	}
	if out := post(t, base+"/openrtb2/enrich", malformedBase); !strings.Contains(out,
		`{"id":"segd"`) {
		t.Fatalf("a good request was not enriched: %s", out)
	}
}

// sendRawHTTP writes broken HTTP requests on raw connections and checks that none is
// answered with a 5xx; closing the connection is an answer too. It returns how many it
// sent.
func sendRawHTTP(t *testing.T, addr string, limit int) int {
	t.Helper()
	const post = "POST /openrtb2/enrich HTTP/1.1\r\nHost: x\r\n"
	body := `{"user":{"id":"u1"}}`
	reqs := []string{
		post + "Content-Length: 5\r\n\r\n" + body,
		post + "Content-Length: 500\r\n\r\n" + body,
		post + "Content-Length: -1\r\n\r\n" + body,
		post + "Content-Length: 99999999999999999999\r\n\r\n" + body,
		post + fmt.Sprintf("Content-Length: %d\r\n\r\n", limit+1) + body,
		post + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + "\r\n0\r\n\r\n",
		post + "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
		post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}\r\n0\r\n\r\n",
		post + "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		post + "Transfer-Encoding: gzip\r\n\r\n" + body,
		post + "Content-Encoding: gzip\r\nContent-Length: 20\r\n\r\n" + body,
		post + "X-Big: " + strings.Repeat("h", 16<<10) + "\r\n\r\n",
		post + "Bad Header Line\r\n\r\n",
		post + "X-Nul: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
		"POST /openrtb2/enrich\r\n\r\n",
		"POST /openrtb2/enrich HTTP/9.9\r\nHost: x\r\n\r\n",
		"POST  HTTP/1.1\r\nHost: x\r\n\r\n",
		"BREW /openrtb2/enrich HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /openrtb2/enrich HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /openrtb2/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /" + strings.Repeat("a", 16<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02\x03\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", // a TLS hello
		"",
	}
	for i, raw := range reqs {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte(raw))
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("raw request %d %.60q: status %d", i, raw, resp.StatusCode)
			}
		}
		conn.Close()
	}
	return len(reqs)
}
