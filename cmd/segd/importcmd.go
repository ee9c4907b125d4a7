package main

// This file holds `segd import`, a thin client that streams audience files to the admin API
// of a running segd. The server parses and validates the lines; the client only moves bytes,
// shows progress and prints the server's verdict.

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
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	defaultAdminURL = "http://127.0.0.1:8081"
	adminTokenEnv   = "SEGD_ADMIN_TOKEN"

	maxShownErrors   = 10      // error lines printed per file
	maxResultBody    = 4 << 20 // bytes of a 200 answer decoded at most
	maxErrorBody     = 64 << 10
	ttyRedraw        = 200 * time.Millisecond // at most 5 redraws a second
	plainRedraw      = 2 * time.Second
	defaultTermWidth = 80
)

// importUsage is printed to stderr for -h and after a usage error; the first newline only
// keeps the raw string readable here.
const importUsage = `
Usage: segd import --admin URL --source ID [--format tsv|ndjson] [--token TOKEN] FILE...

Stream each FILE to the admin API of a running segd (POST /v1/import) and print how
many lines it accepted and rejected. A FILE ending in .gz is decompressed on the fly;
- reads standard input. Flags go before the files.

Flags:
  --admin URL      base URL of the admin API (default ` + defaultAdminURL + `)
  --source ID      source the lines are imported into (required)
  --format FORMAT  tsv or ndjson (default: ndjson for .ndjson and .jsonl files, else tsv)
  --token TOKEN    bearer token for the admin API (default $` + adminTokenEnv + `)
`

// errImportUsage marks an error in the arguments of `segd import`. The problem and the usage
// text have already been printed to stderr when it is returned.
var errImportUsage = errors.New("usage")

// contentTypes maps each import format to the Content-Type of its request body.
var contentTypes = map[string]string{
	"tsv":    "text/tab-separated-values",
	"ndjson": "application/x-ndjson",
}

// runImport runs `segd import`; args excludes the subcommand name. It writes the progress
// bar to stderr and the final summary to stdout, and returns an error for a failed run.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &importCommand{
		stdin:  os.Stdin,
		stdout: stdout,
		stderr: stderr,
		client: &http.Client{},
		tty:    isTerminal(stderr),
		width:  terminalWidth(),
	}
	return c.run(ctx, args)
}

// importCommand is one run of `segd import` with its outside world, so tests can replace it.
type importCommand struct {
	stdin  io.Reader // read for the FILE "-"
	stdout io.Writer // the summary
	stderr io.Writer // usage text and progress
	client *http.Client
	tty    bool // stderr is a terminal: redraw one progress line in place
	width  int  // columns of the redrawn progress line
}

// importOptions are the parsed arguments of `segd import`.
type importOptions struct {
	admin  string   // base URL of the admin API
	source string   // source ID the lines go to
	format string   // "tsv", "ndjson", or "" to pick by file name
	token  string   // bearer token; empty sends no Authorization header
	files  []string // files in order; "-" is standard input
	base   *url.URL // admin parsed, set by validate
}

func (c *importCommand) run(ctx context.Context, args []string) error {
	opts, err := parseImportArgs(args, c.stderr)
	if err != nil {
		return err
	}

	var totals importTotals
	var errs []error
	for _, name := range opts.files {
		res, err := c.importFile(ctx, opts, name)
		totals.add(res, err)
		if err != nil {
			fmt.Fprintf(c.stdout, "%s: failed\n", displayName(name))
			errs = append(errs, fmt.Errorf("import %s: %w", displayName(name), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		printResult(c.stdout, displayName(name), res)
	}

	totals.print(c.stdout)
	return errors.Join(errs...)
}

func parseImportArgs(args []string, stderr io.Writer) (importOptions, error) {
	var opts importOptions
	fs := flag.NewFlagSet("segd import", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usageFailure prints the problem and the usage instead
	fs.StringVar(&opts.admin, "admin", defaultAdminURL, "")
	fs.StringVar(&opts.source, "source", "", "")
	fs.StringVar(&opts.format, "format", "", "")
	fs.StringVar(&opts.token, "token", "", "")

	if err := fs.Parse(args); err != nil {
		return importOptions{}, usageFailure(stderr, err)
	}
	opts.files = fs.Args()
	if !isFlagSet(fs, "token") {
		// Read here rather than as the flag default, so the usage never shows the token.
		opts.token = os.Getenv(adminTokenEnv)
	}
	if err := opts.validate(); err != nil {
		return importOptions{}, usageFailure(stderr, err)
	}
	return opts, nil
}

// validate reports every problem of o at once and sets o.base.
func (o *importOptions) validate() error {
	var problems []string
	if o.source == "" {
		problems = append(problems, "--source is required")
	}
	if o.format != "" && contentTypes[o.format] == "" {
		problems = append(problems, fmt.Sprintf("--format %q is not tsv or ndjson", o.format))
	}
	if len(o.files) == 0 {
		problems = append(problems, "no FILE given")
	}
	if countStdin(o.files) > 1 {
		problems = append(problems, "- (standard input) given more than once")
	}

	base, err := parseAdminURL(o.admin)
	if err != nil {
		problems = append(problems, err.Error())
	}
	o.base = base

	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func parseAdminURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q is not an http or https URL", s)
	}
	return u, nil
}

// usageFailure prints err and the usage text, and returns err marked as a usage error. For
// -h it prints only the usage and returns flag.ErrHelp unchanged.
func usageFailure(stderr io.Writer, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, importUsage[1:])
		return err
	}
	fmt.Fprintf(stderr, "segd import: %v\n\n%s", err, importUsage[1:])
	return fmt.Errorf("%w: %w", errImportUsage, err)
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func countStdin(files []string) int {
	n := 0
	for _, f := range files {
		if f == "-" {
			n++
		}
	}
	return n
}

// formatFor returns the import format of the file name: explicit when not empty, else
// ndjson for .ndjson and .jsonl names (before any .gz), else tsv.
func formatFor(name, explicit string) string {
	if explicit != "" {
		return explicit
	}
	name = strings.TrimSuffix(name, ".gz")
	if strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".jsonl") {
		return "ndjson"
	}
	return "tsv"
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// importFile streams one file to the admin API and returns the server's verdict. While the
// server is busy with other imports (429), a file, which can be read again, is sent again
// after the wait it asks for, for up to busyRetries tries; standard input is not.
func (c *importCommand) importFile(ctx context.Context, o importOptions,
	name string) (importResult, error) {
	for try := 1; ; try++ {
		res, err := c.importOnce(ctx, o, name)
		var busy *statusError
		if !errors.As(err, &busy) || busy.code != http.StatusTooManyRequests || name == "-" ||
			try == busyRetries {
			return res, err
		}
		fmt.Fprintf(c.stderr, "%s: the server is busy with other imports; trying again in %s\n",
			displayName(name), busy.retryAfter)
		t := time.NewTimer(busy.retryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return importResult{}, ctx.Err()
		case <-t.C:
		}
	}
}

// busyRetries is how many times importFile sends a file to a busy server.
const busyRetries = 120

// importOnce streams one file to the admin API and returns the server's verdict. The
// progress of the upload is drawn until the answer arrives.
func (c *importCommand) importOnce(ctx context.Context, o importOptions,
	name string) (importResult, error) {
	in, err := c.open(ctx, name, formatFor(name, o.format))
	if err != nil {
		return importResult{}, err
	}
	req, err := newImportRequest(ctx, o, in)
	if err != nil {
		in.Close()
		return importResult{}, err
	}

	bar := startProgress(c.stderr, c.tty, c.width, in)
	defer bar.stop()

	// The transport closes in, possibly after Do returns. On an error Do first waits for
	// the read of the body in progress, which is why in returns early once ctx is done.
	resp, err := c.client.Do(req)
	if err != nil {
		return importResult{}, err
	}
	defer resp.Body.Close()
	return readImportResponse(resp)
}

func newImportRequest(ctx context.Context, o importOptions, in *input) (*http.Request, error) {
	u := o.base.JoinPath("v1", "import")
	u.RawQuery = url.Values{"source": {o.source}, "format": {in.format}}.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), in)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.ContentLength = -1 // unknown: sent chunked, as it is read
	req.Header.Set("Content-Type", contentTypes[in.format])
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	return req, nil
}

// input is one FILE opened for upload. It is the request body: Read yields the lines to
// send (decompressed for .gz) until ctx is done, and Close closes the file, never standard
// input.
type input struct {
	ctx    context.Context // held, as a reader has no other way to see it
	name   string          // as shown in progress and summary
	format string
	size   int64           // bytes in the file, compressed for .gz; 0 when unknown
	src    *countingReader // counts the bytes read from the file
	body   *countingReader // counts the bytes and lines sent; src unless gzip
	file   io.Closer       // nil for standard input
}

func (c *importCommand) open(ctx context.Context, name, format string) (*input, error) {
	in := &input{ctx: ctx, name: displayName(name), format: format}
	var r io.Reader
	if name == "-" {
		r = &stdinReader{ctx: ctx, r: c.stdin, done: make(chan readResult, 1)}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err // already names the operation and the path
		}
		in.file, in.size, r = f, regularSize(f), f
	}
	in.src = &countingReader{r: r}
	in.body = in.src
	if !strings.HasSuffix(name, ".gz") {
		return in, nil
	}

	zr, err := gzip.NewReader(in.src)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("read gzip header: %w", err)
	}
	in.body = &countingReader{r: zr}
	return in, nil
}

func (in *input) Read(p []byte) (int, error) {
	if err := in.ctx.Err(); err != nil {
		return 0, err
	}
	return in.body.Read(p)
}

func (in *input) Close() error {
	if in.file == nil {
		return nil
	}
	return in.file.Close()
}

// regularSize returns the size of f when it is a regular file, else 0 (unknown).
func regularSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	return st.Size()
}

// stdinReader reads r in a goroutine per call, so that a Read blocked on a pipe or a
// terminal returns once ctx is done. The abandoned goroutine ends when its read of r
// returns; that is acceptable for standard input only, owned by a process about to exit.
// Read must be called from one goroutine at a time.
type stdinReader struct {
	ctx  context.Context
	r    io.Reader
	buf  []byte          // read into by the goroutine, copied out by Read
	done chan readResult // capacity 1, so an abandoned read never blocks its goroutine
}

type readResult struct {
	n   int
	err error
}

func (s *stdinReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err // also keeps buf away from a read abandoned before
	}
	if len(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	buf := s.buf[:len(p)]
	go func() {
		n, err := s.r.Read(buf)
		s.done <- readResult{n, err}
	}()

	select {
	case res := <-s.done:
		return copy(p, buf[:res.n]), res.err
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
}

// countingReader counts the bytes and lines read through r. Read must be called from one
// goroutine at a time; the counts may be loaded from any goroutine at any time. A last line
// without a newline is counted when r reports io.EOF.
type countingReader struct {
	r      io.Reader
	nbytes atomic.Int64
	nlines atomic.Int64
	last   byte // the last byte read, owned by the reading goroutine
	atEOF  bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.nbytes.Add(int64(n))
		c.nlines.Add(int64(bytes.Count(p[:n], []byte{'\n'})))
		c.last = p[n-1]
	}
	if err == io.EOF && !c.atEOF {
		c.atEOF = true
		if c.nbytes.Load() > 0 && c.last != '\n' {
			c.nlines.Add(1)
		}
	}
	return n, err
}

// importResult is the answer of the admin API to an import that ran.
type importResult struct {
	Accepted int64       `json:"accepted"`
	Rejected int64       `json:"rejected"`
	Errors   []lineError `json:"errors"` // the first rejected lines, at most 100
}

type lineError struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

// statusError is an answer other than 200 from the admin API.
type statusError struct {
	status     string // such as "400 Bad Request"
	code       int
	message    string        // the server's "error" field, or the start of its body
	retryAfter time.Duration // the server's Retry-After, in whole seconds; 1s without one
}

func (e *statusError) Error() string {
	if e.message == "" {
		return "server answered " + e.status
	}
	return "server answered " + e.status + ": " + e.message
}

func readImportResponse(resp *http.Response) (importResult, error) {
	if resp.StatusCode != http.StatusOK {
		return importResult{}, readStatusError(resp)
	}
	var res importResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResultBody)).Decode(&res); err != nil {
		return importResult{}, fmt.Errorf("decode answer: %w", err)
	}
	return res, nil
}

func readStatusError(resp *http.Response) error {
	// A body cut short still says something; the status alone is reported otherwise.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(body))
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Error != "" {
		msg = answer.Error
	}
	wait := time.Second
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n >= 0 {
		wait = time.Duration(min(n, 60)) * time.Second
	}
	return &statusError{status: resp.Status, code: resp.StatusCode, message: msg,
		retryAfter: wait}
}

func printResult(w io.Writer, name string, res importResult) {
	fmt.Fprintf(w, "%s: accepted %d, rejected %d\n", name, res.Accepted, res.Rejected)
	shown := min(len(res.Errors), maxShownErrors)
	for _, e := range res.Errors[:shown] {
		fmt.Fprintf(w, "  line %d: %s\n", e.Line, e.Error)
	}
	// The server lists only the first rejected lines; Rejected counts them all.
	if more := max(res.Rejected, int64(len(res.Errors))) - int64(shown); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}

// importTotals sums the results of the files of one run.
type importTotals struct {
	files, failed      int
	accepted, rejected int64
}

func (t *importTotals) add(res importResult, err error) {
	t.files++
	if err != nil {
		t.failed++
		return
	}
	t.accepted += res.Accepted
	t.rejected += res.Rejected
}

func (t *importTotals) print(w io.Writer) {
	if t.files > 1 {
		failed := ""
		if t.failed > 0 {
			failed = fmt.Sprintf(" (%d failed)", t.failed)
		}
		fmt.Fprintf(w, "total: %d files%s, accepted %d, rejected %d\n",
			t.files, failed, t.accepted, t.rejected)
	}
	if t.rejected > 0 {
		fmt.Fprintf(w, "note: %d line(s) rejected and not imported\n", t.rejected)
	}
}

// progressBar draws the progress of one upload until stop is called: redrawn in place
// on a terminal, else as a plain line now and then, and a last time when it stops.
type progressBar struct {
	w       io.Writer
	tty     bool
	width   int
	in      *input
	start   time.Time
	done    chan struct{}
	stopped chan struct{}
}

func startProgress(w io.Writer, tty bool, width int, in *input) *progressBar {
	b := &progressBar{
		w: w, tty: tty, width: width, in: in, start: time.Now(),
		done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go b.loop()
	return b
}

// stop draws the last line and returns once the drawing goroutine has ended. It must be
// called exactly once.
func (b *progressBar) stop() {
	close(b.done)
	<-b.stopped
}

func (b *progressBar) loop() {
	defer close(b.stopped)
	interval := plainRedraw
	if b.tty {
		interval = ttyRedraw
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()

	for {
		select {
		case <-tick.C:
			b.draw(false)
		case <-b.done:
			b.draw(true)
			return
		}
	}
}

func (b *progressBar) draw(last bool) {
	p := progress{
		name:    b.in.name,
		size:    b.in.size,
		read:    b.in.src.nbytes.Load(),
		sent:    b.in.body.nbytes.Load(),
		lines:   b.in.body.nlines.Load(),
		elapsed: time.Since(b.start),
	}
	if !b.tty {
		fmt.Fprintln(b.w, formatProgress(p, 0))
		return
	}
	end := ""
	if last {
		end = "\n"
	}
	fmt.Fprint(b.w, "\r"+formatProgress(p, b.width)+end)
}

// progress is a snapshot of one upload, the input of formatProgress.
type progress struct {
	name    string
	size    int64 // bytes in the file, compressed for .gz; 0 when unknown
	read    int64 // bytes of the file read so far, compressed for .gz
	sent    int64 // bytes of the body sent so far
	lines   int64 // lines sent so far
	elapsed time.Duration
}

// formatProgress renders p as one line: the name, the percentage read and the ETA when the
// size is known (else the bytes sent), the lines sent and the rates. A width above 0 makes
// the line exactly that many columns, shortening the name first; 0 leaves it as it is.
func formatProgress(p progress, width int) string {
	secs := p.elapsed.Seconds()
	var b strings.Builder
	if p.size > 0 {
		fmt.Fprintf(&b, "%.1f%%", 100*float64(min(p.read, p.size))/float64(p.size))
	} else {
		b.WriteString(formatBytes(float64(p.sent)))
	}
	fmt.Fprintf(&b, "  %s lines  %s lines/s  %s/s", formatCount(float64(p.lines)),
		formatCount(rate(p.lines, secs)), formatBytes(rate(p.sent, secs)))
	if p.size > 0 {
		b.WriteString("  ETA " + formatETA(p, secs))
	}
	return fitWidth(p.name, b.String(), width)
}

func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

// formatETA estimates the time left from the rate the file has been read at so far.
func formatETA(p progress, secs float64) string {
	readRate := rate(p.read, secs)
	if readRate <= 0 {
		return "--:--"
	}
	left := float64(max(p.size-p.read, 0)) / readRate
	if left >= 100*3600 {
		return "--:--"
	}
	s := int(left + 0.5)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// formatCount renders n with a k, M or G suffix above 999.
func formatCount(n float64) string {
	switch {
	case n < 1e3:
		return strconv.FormatFloat(n, 'f', 0, 64)
	case n < 1e6:
		return strconv.FormatFloat(n/1e3, 'f', 1, 64) + "k"
	case n < 1e9:
		return strconv.FormatFloat(n/1e6, 'f', 2, 64) + "M"
	}
	return strconv.FormatFloat(n/1e9, 'f', 2, 64) + "G"
}

// formatBytes renders n bytes in decimal units: B, kB, MB, GB, TB.
func formatBytes(n float64) string {
	if n < 1e3 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	unit := 0
	for n >= 1e3 && unit < 4 {
		n /= 1e3
		unit++
	}
	return strconv.FormatFloat(n, 'f', 1, 64) + " " + byteUnits[unit]
}

var byteUnits = [...]string{"B", "kB", "MB", "GB", "TB"}

// fitWidth joins name and stats into one line. A width above 0 makes the line exactly width
// columns: the name loses its start to "..." first, then the line its end, then spaces pad it.
func fitWidth(name, stats string, width int) string {
	line := name + "  " + stats
	if width <= 0 {
		return line
	}
	if over := utf8.RuneCountInString(line) - width; over > 0 {
		line = shortenName(name, over) + "  " + stats
	}
	r := []rune(line)
	if len(r) > width {
		r = r[:width]
	}
	return string(r) + strings.Repeat(" ", width-len(r))
}

// shortenName drops at least cut runes from the start of name and marks the cut with "...".
func shortenName(name string, cut int) string {
	r := []rune(name)
	keep := len(r) - cut - len("...")
	if keep <= 0 {
		return "..."
	}
	return "..." + string(r[len(r)-keep:])
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// terminalWidth returns the columns of a redrawn progress line: one less than $COLUMNS, so
// the cursor never wraps, or a conservative width when it is not set. The real width would
// need an ioctl this command does without.
func terminalWidth() int {
	cols, err := strconv.Atoi(os.Getenv("COLUMNS"))
	if err != nil || cols < 20 {
		cols = defaultTermWidth
	}
	return cols - 1
}
