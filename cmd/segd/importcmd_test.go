package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// fakeAdmin stands in for the admin API of segd. It reads the whole streamed body, records
// the request and rejects the lines that contain "bad", or gives the fixed answer when
// status is set.
type fakeAdmin struct {
	status int    // answer with this status and answer instead of judging; 0 judges
	answer string // body of the fixed answer
	busy   int    // answer this many requests first with 429 and Retry-After: 0

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method string
	path   string
	query  url.Values
	header http.Header
	body   []byte
}

// startFakeAdmin serves f on 127.0.0.1 until the test ends and returns its base URL.
func startFakeAdmin(t *testing.T, f *fakeAdmin) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":"read body"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{
		method: r.Method, path: r.URL.Path, query: r.URL.Query(),
		header: r.Header.Clone(), body: body,
	})
	busy := len(f.seen) <= f.busy
	f.mu.Unlock()

	if busy {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"4 imports or event batches are running, the most at once"}`)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		io.WriteString(w, f.answer)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(judgeLines(body))
}

// requests returns the requests seen so far.
func (f *fakeAdmin) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// onlyRequest returns the single request seen, failing the test when there were others.
func (f *fakeAdmin) onlyRequest(t *testing.T) seenRequest {
	t.Helper()
	seen := f.requests()
	if len(seen) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(seen))
	}
	return seen[0]
}

// judgeLines accepts every line of body except those containing "bad", listing the first 100
// rejected ones the way segd does.
func judgeLines(body []byte) importResult {
	var res importResult
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	for i, line := range lines {
		if !strings.Contains(line, "bad") {
			res.Accepted++
			continue
		}
		res.Rejected++
		if len(res.Errors) < 100 {
			res.Errors = append(res.Errors, lineError{Line: int64(i + 1), Error: "bad user id"})
		}
	}
	return res
}

func writeImportFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runImportStdin runs the command the way runImport does, with stdin in place of os.Stdin.
func runImportStdin(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	c := &importCommand{
		stdin: stdin, stdout: &stdout, stderr: &stderr,
		client: &http.Client{}, width: 79,
	}
	err := c.run(ctx, args)
	return stdout.String(), stderr.String(), err
}

func runImportTest(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runImport(t.Context(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestImportTSVFile(t *testing.T) {
	admin := &fakeAdmin{}
	base := startFakeAdmin(t, admin)
	data := []byte("u1\tsports\nu2-bad\tnews\nu3\tcars\nu4\tsports\n")
	path := writeImportFile(t, "users.tsv", data)

	stdout, stderr, err := runImportTest(t, "--admin", base, "--source", "crm", "--token", "s3cret",
		path)
	if err != nil {
		t.Fatalf("import: %v", err)
	}

	req := admin.onlyRequest(t)
	if req.method != http.MethodPost || req.path != "/v1/import" {
		t.Errorf("request %s %s, want POST /v1/import", req.method, req.path)
	}
	if !bytes.Equal(req.body, data) {
		t.Errorf("server received %q, want the file %q", req.body, data)
	}
	checkImportQuery(t, req, "crm", "tsv")
	checkImportHeader(t, req, "Content-Type", "text/tab-separated-values")
	checkImportHeader(t, req, "Authorization", "Bearer s3cret")

	want := path + ": accepted 3, rejected 1\n" +
		"  line 2: bad user id\n" +
		"note: 1 line(s) rejected and not imported\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	wantProgress := path + "  100.0%  4 lines  "
	if !strings.HasPrefix(stderr, wantProgress) || strings.Contains(stderr, "\r") {
		t.Errorf("stderr %q, want plain lines starting %q", stderr, wantProgress)
	}
}

func checkImportQuery(t *testing.T, req seenRequest, source, format string) {
	t.Helper()
	if got := req.query.Get("source"); got != source {
		t.Errorf("source=%q, want %q", got, source)
	}
	if got := req.query.Get("format"); got != format {
		t.Errorf("format=%q, want %q", got, format)
	}
}

func checkImportHeader(t *testing.T, req seenRequest, name, want string) {
	t.Helper()
	if got := req.header.Get(name); got != want {
		t.Errorf("header %s: %q, want %q", name, got, want)
	}
}

func TestImportToken(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want string // Authorization header
	}{
		{name: "from env", env: "envtoken", want: "Bearer envtoken"},
		{name: "flag over env", env: "envtoken", args: []string{"--token", "flag"},
			want: "Bearer flag"},
		{name: "empty flag over env", env: "envtoken", args: []string{"--token", ""}},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(adminTokenEnv, tt.env)
			admin := &fakeAdmin{}
			base := startFakeAdmin(t, admin)
			path := writeImportFile(t, "users.tsv", []byte("u1\tsports\n"))

			args := append([]string{"--admin", base, "--source", "crm"}, tt.args...)
			if _, _, err := runImportTest(t, append(args, path)...); err != nil {
				t.Fatalf("import: %v", err)
			}
			checkImportHeader(t, admin.onlyRequest(t), "Authorization", tt.want)
		})
	}
}

func TestImportGzipNDJSON(t *testing.T) {
	admin := &fakeAdmin{}
	base := startFakeAdmin(t, admin)
	data := []byte(`{"id":"u1","segments":["a"]}` + "\n" + `{"id":"u2","segments":["b"]}`)
	path := writeImportFile(t, "users.ndjson.gz", gzipped(t, data))

	stdout, stderr, err := runImportTest(t, "--admin", base, "--source", "crm", path)
	if err != nil {
		t.Fatalf("import: %v", err)
	}

	req := admin.onlyRequest(t)
	if !bytes.Equal(req.body, data) {
		t.Errorf("server received %q, want the decompressed file %q", req.body, data)
	}
	checkImportQuery(t, req, "crm", "ndjson")
	checkImportHeader(t, req, "Content-Type", "application/x-ndjson")
	if want := path + ": accepted 2, rejected 0\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	// The last line has no newline and still counts.
	if want := path + "  100.0%  2 lines  "; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want it to start %q", stderr, want)
	}
}

func TestImportStdin(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	admin := &fakeAdmin{}
	base := startFakeAdmin(t, admin)
	data := "u1\tsports\nu2\tnews\n"

	stdout, stderr, err := runImportStdin(t.Context(), strings.NewReader(data),
		"--admin", base+"/segd/", "--source", "crm", "--format", "ndjson", "-")
	if err != nil {
		t.Fatalf("import: %v", err)
	}

	req := admin.onlyRequest(t)
	if string(req.body) != data {
		t.Errorf("server received %q, want %q", req.body, data)
	}
	if req.path != "/segd/v1/import" {
		t.Errorf("path %q, want the admin URL's path joined with /v1/import", req.path)
	}
	checkImportQuery(t, req, "crm", "ndjson")
	checkImportHeader(t, req, "Authorization", "")
	if want := "stdin: accepted 2, rejected 0\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if want := "stdin  18 B  2 lines  "; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want it to start %q", stderr, want)
	}
}

func TestImportSeveralFiles(t *testing.T) {
	admin := &fakeAdmin{}
	base := startFakeAdmin(t, admin)
	good := writeImportFile(t, "good.tsv", []byte("u1\ta\nu2\tb\n"))
	var mixed strings.Builder
	for i := range 15 {
		if i%5 == 0 {
			fmt.Fprintf(&mixed, "u%d\tok\n", i)
		}
		fmt.Fprintf(&mixed, "bad%d\tx\n", i)
	}
	mixedPath := writeImportFile(t, "mixed.tsv", []byte(mixed.String()))
	missing := filepath.Join(t.TempDir(), "missing.tsv")

	stdout, _, err := runImportTest(t, "--admin", base, "--source", "crm",
		good, missing, mixedPath)
	if err == nil || !strings.Contains(err.Error(), "missing.tsv") {
		t.Errorf("error %v, want one naming the missing file", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
	if n := len(admin.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2: the files after a failed one still go", n)
	}

	want := good + ": accepted 2, rejected 0\n" +
		missing + ": failed\n" +
		mixedPath + ": accepted 3, rejected 15\n" +
		"  line 2: bad user id\n  line 3: bad user id\n  line 4: bad user id\n" +
		"  line 5: bad user id\n  line 6: bad user id\n  line 8: bad user id\n" +
		"  line 9: bad user id\n  line 10: bad user id\n  line 11: bad user id\n" +
		"  line 12: bad user id\n" +
		"  ... and 5 more\n" +
		"total: 3 files (1 failed), accepted 5, rejected 15\n" +
		"note: 15 line(s) rejected and not imported\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestImportServerError(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		answer  string
		wantMsg string
	}{
		{name: "json", status: http.StatusBadRequest, answer: `{"error":"unknown source \"x\""}`,
			wantMsg: `server answered 400 Bad Request: unknown source "x"`},
		{name: "text", status: http.StatusBadGateway, answer: "upstream down\n",
			wantMsg: "server answered 502 Bad Gateway: upstream down"},
		{name: "empty", status: http.StatusUnauthorized,
			wantMsg: "server answered 401 Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startFakeAdmin(t, &fakeAdmin{status: tt.status, answer: tt.answer})
			path := writeImportFile(t, "users.tsv", []byte("u1\tsports\n"))

			stdout, _, err := runImportTest(t, "--admin", base, "--source", "x", path)
			var se *statusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *statusError", err)
			}
			if want := "import " + path + ": " + tt.wantMsg; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if want := path + ": failed\n"; stdout != want {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
		})
	}
}

func TestImportUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	path := writeImportFile(t, "users.tsv", []byte("u1\tsports\n"))

	_, _, err := runImportTest(t, "--admin", srv.URL, "--source", "crm", path)
	if err == nil {
		t.Fatal("import to a closed server succeeded")
	}
	var se *statusError
	if errors.As(err, &se) {
		t.Errorf("error %v is a status error, want a network error", err)
	}
}

func TestImportCancel(t *testing.T) {
	var once sync.Once
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var first [1]byte
		if _, err := io.ReadFull(r.Body, first[:]); err == nil {
			once.Do(func() { close(started) })
		}
		io.Copy(io.Discard, r.Body) // until the client goes away
	}))
	defer srv.Close()

	stdin, feed := io.Pipe()
	defer feed.Close() // lets the transport's body reader end
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		feed.Write([]byte("u1\tsports\n"))
		<-started
		cancel()
	}()

	_, _, err := runImportStdin(ctx, stdin, "--admin", srv.URL, "--source", "crm", "-")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestImportUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{name: "nothing", want: "--source is required; no FILE given"},
		{name: "no source", args: []string{"a.tsv"}, want: "--source is required"},
		{name: "no file", args: []string{"--source", "crm"}, want: "no FILE given"},
		{name: "bad format", args: []string{"--source", "crm", "--format", "csv", "a.csv"},
			want: `--format "csv" is not tsv or ndjson`},
		{name: "bad admin", args: []string{"--admin", "localhost:8081", "--source", "s", "a"},
			want: `--admin "localhost:8081" is not an http or https URL`},
		{name: "stdin twice", args: []string{"--source", "crm", "-", "-"},
			want: "- (standard input) given more than once"},
		{name: "unknown flag", args: []string{"--sauce", "crm", "a.tsv"},
			want: "flag provided but not defined: -sauce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runImportTest(t, tt.args...)
			if !errors.Is(err, errImportUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error containing %q", err, tt.want)
			}
			if !strings.HasPrefix(stderr, "segd import: "+tt.want) ||
				!strings.Contains(stderr, "\nUsage: segd import ") {
				t.Errorf("stderr %q, want the problem, then the usage text", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestImportHelp(t *testing.T) {
	t.Setenv(adminTokenEnv, "do-not-print")
	_, stderr, err := runImportTest(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("error %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr, "--source ID") || strings.Contains(stderr, "do-not-print") {
		t.Errorf("stderr %q, want the usage text without the token", stderr)
	}
}

func TestFormatFor(t *testing.T) {
	tests := []struct{ name, explicit, want string }{
		{"users.tsv", "", "tsv"},
		{"users.txt", "", "tsv"},
		{"users.ndjson", "", "ndjson"},
		{"users.jsonl", "", "ndjson"},
		{"users.jsonl.gz", "", "ndjson"},
		{"users.tsv.gz", "", "tsv"},
		{"-", "", "tsv"},
		{"users.ndjson", "tsv", "tsv"},
		{"-", "ndjson", "ndjson"},
	}
	for _, tt := range tests {
		if got := formatFor(tt.name, tt.explicit); got != tt.want {
			t.Errorf("formatFor(%q, %q) = %q, want %q", tt.name, tt.explicit, got, tt.want)
		}
	}
}

func TestFormatProgress(t *testing.T) {
	tests := []struct {
		name  string
		p     progress
		width int
		want  string
	}{{
		name: "known size",
		p: progress{name: "users.tsv", size: 1_000_000, read: 250_000, sent: 250_000,
			lines: 5_000, elapsed: 2 * time.Second},
		want: "users.tsv  25.0%  5.0k lines  2.5k lines/s  125.0 kB/s  ETA 00:06",
	}, {
		name: "gzip: percentage and ETA from the file, rate from the body",
		p: progress{name: "u.tsv.gz", size: 3_000_000_000, read: 1_000_000_000,
			sent: 4_000_000_000, lines: 120_000_000, elapsed: 1000 * time.Second},
		want: "u.tsv.gz  33.3%  120.00M lines  120.0k lines/s  4.0 MB/s  ETA 33:20",
	}, {
		name: "hours",
		p: progress{name: "big", size: 10_000_000, read: 1_000,
			sent: 1_000, lines: 10, elapsed: time.Second},
		want: "big  0.0%  10 lines  10 lines/s  1.0 kB/s  ETA 2:46:39",
	}, {
		name: "unknown size",
		p: progress{name: "stdin", read: 2_500_000, sent: 2_500_000, lines: 1_232,
			elapsed: 4 * time.Second},
		want: "stdin  2.5 MB  1.2k lines  308 lines/s  625.0 kB/s",
	}, {
		name: "not started",
		p:    progress{name: "users.tsv", size: 100},
		want: "users.tsv  0.0%  0 lines  0 lines/s  0 B/s  ETA --:--",
	}, {
		name: "ETA beyond 99 hours",
		p:    progress{name: "x", size: 1e12, read: 1, sent: 1, elapsed: time.Second},
		want: "x  0.0%  0 lines  0 lines/s  1 B/s  ETA --:--",
	}, {
		name: "done",
		p: progress{name: "users.tsv", size: 100, read: 100, sent: 100, lines: 4,
			elapsed: time.Second},
		want: "users.tsv  100.0%  4 lines  4 lines/s  100 B/s  ETA 00:00",
	}, {
		name:  "padded to width",
		p:     progress{name: "a", read: 5, sent: 5, lines: 1, elapsed: time.Second},
		width: 40,
		want:  "a  5 B  1 lines  1 lines/s  5 B/s       ",
	}, {
		name: "name shortened to fit",
		p: progress{name: "/data/exports/2024/users.tsv", read: 5, sent: 5, lines: 1,
			elapsed: time.Second},
		width: 50,
		want:  ".../2024/users.tsv  5 B  1 lines  1 lines/s  5 B/s",
	}, {
		name: "stats cut when even the name does not fit",
		p: progress{name: "users.tsv", read: 5, sent: 5, lines: 1,
			elapsed: time.Second},
		width: 20,
		want:  "...  5 B  1 lines  1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatProgress(tt.p, tt.width); got != tt.want {
				t.Errorf("formatProgress() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestCountingReader(t *testing.T) {
	tests := []struct {
		in    string
		lines int64
	}{
		{"", 0},
		{"\n", 1},
		{"a", 1},
		{"a\n", 1},
		{"a\nb", 2},
		{"a\n\nb\n", 3},
	}
	for _, tt := range tests {
		c := &countingReader{r: iotest.OneByteReader(strings.NewReader(tt.in))}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != tt.in {
			t.Fatalf("read %q: got %q, %v", tt.in, got, err)
		}
		io.ReadAll(c) // a second EOF must not count the last line again
		if n := c.nlines.Load(); n != tt.lines {
			t.Errorf("%q: %d lines, want %d", tt.in, n, tt.lines)
		}
		if n := c.nbytes.Load(); n != int64(len(tt.in)) {
			t.Errorf("%q: %d bytes, want %d", tt.in, n, len(tt.in))
		}
	}
}

func TestProgressBarStop(t *testing.T) {
	src := &countingReader{r: strings.NewReader("u1\tsports\n")}
	io.Copy(io.Discard, src)
	in := &input{name: "users.tsv", size: 10, src: src, body: src}

	var tty bytes.Buffer
	startProgress(&tty, true, 60, in).stop()
	out := tty.String()
	last := out[strings.LastIndex(out, "\r")+1:]
	if !strings.HasPrefix(out, "\r") || len(last) != 61 || !strings.HasSuffix(last, "\n") {
		t.Errorf("terminal output %q, want lines redrawn with \\r, the last 60 wide and ended",
			out)
	}

	var plain bytes.Buffer
	startProgress(&plain, false, 60, in).stop()
	out = plain.String()
	if strings.Contains(out, "\r") || !strings.HasPrefix(out, "users.tsv  100.0%  1 lines") ||
		!strings.HasSuffix(out, "\n") {
		t.Errorf("plain output %q, want whole lines", out)
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}

// TestImportBusyServer checks that a file refused with 429 is sent again, whole, until the
// server takes it, and that standard input, which cannot be read twice, is not.
func TestImportBusyServer(t *testing.T) {
	f := &fakeAdmin{busy: 2}
	base := startFakeAdmin(t, f)
	data := []byte("uid:a\tsports\nuid:b\tnews\n")
	path := writeImportFile(t, "users.tsv", data)
	stdout, stderr, err := runImportTest(t, "--admin", base, "--source", "crm", path)
	if err != nil {
		t.Fatalf("import: %v (stderr %q)", err, stderr)
	}
	seen := f.requests()
	if len(seen) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(seen))
	}
	for i, r := range seen {
		if !bytes.Equal(r.body, data) {
			t.Errorf("request %d carried %q, want the whole file", i, r.body)
		}
	}
	if !strings.Contains(stderr, "busy") || !strings.Contains(stdout, "accepted 2, rejected 0") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}

	f = &fakeAdmin{busy: 1}
	base = startFakeAdmin(t, f)
	_, _, err = runImportStdin(t.Context(), bytes.NewReader(data), "--admin", base,
		"--source", "crm", "-")
	var se *statusError
	if !errors.As(err, &se) || se.code != http.StatusTooManyRequests {
		t.Errorf("standard input to a busy server: %v, want its 429", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("standard input was sent %d times", n)
	}
}
