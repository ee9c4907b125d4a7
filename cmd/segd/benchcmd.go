package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/segd/segd/bench"
)

const benchUsage = `Usage:
  segd bench run --target URL [flags]   send load, report latency, errors and enrichment
  segd bench gen --out DIR [flags]      write a deterministic population and bid requests
  segd bench echo [--addr ADDR]         serve a fasthttp echo baseline until interrupted

'segd bench run -h' and 'segd bench gen -h' list their flags.
`

// runBench runs `segd bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	switch args[0] {
	case "run":
		return runBenchRun(ctx, args[1:], stdout, stderr)
	case "gen":
		return runBenchGen(args[1:], stdout, stderr)
	case "echo":
		return runBenchEcho(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	fmt.Fprint(stderr, benchUsage)
	return errUsage
}

// runOptions are the flags of `segd bench run`.
type runOptions struct {
	target      string
	rate        int
	conns       int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	maxRequests int64
	corpus      stringList
	population  string
	hitRate     float64
	hitRateSet  bool
	pool        int
	seed        uint64
	providerID  string
	baseline    string
	jsonOut     bool
	htmlPath    string
	allowRemote bool
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func bindRunFlags(fs *flag.FlagSet, o *runOptions) {
	fs.StringVar(&o.target, "target", "", "URL to POST bid requests to (required)")
	fs.IntVar(&o.rate, "rate", 0,
		"open loop: requests per second, each timed from its intended send time; 0: closed loop")
	fs.IntVar(&o.conns, "connections", 32,
		"closed loop: concurrent senders; open loop: the most connections in use")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load sent before and not measured")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "per request; later counts as a timeout")
	fs.Int64Var(&o.maxRequests, "max-requests", 0, "stop after this many measured requests; 0: none")
	fs.Var(&o.corpus, "corpus",
		"bid request file (.json: one; .jsonl: one a line) or folder; repeatable (required)")
	fs.StringVar(&o.population, "population", "",
		"folder from 'segd bench gen' (its ids.txt) or a file of user IDs, one a line")
	fs.Float64Var(&o.hitRate, "hit-rate", 0.8,
		"share of requests whose user.id comes from --population; the rest are never-seen IDs")
	fs.IntVar(&o.pool, "pool", 4096, "prepared request bodies with --population")
	fs.Uint64Var(&o.seed, "seed", 1, "picks the IDs of the prepared bodies")
	fs.StringVar(&o.providerID, "provider-id", "segd",
		"user.data id whose presence marks a response as enriched")
	fs.StringVar(&o.baseline, "baseline", "",
		"'echo': run the same load against an echo server in this process and compare;\n"+
			"or the URL of a baseline started apart, such as 'segd bench echo', which\n"+
			"does not share this process's CPU and so makes a fairer ceiling")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON on stdout instead of a table")
	fs.StringVar(&o.htmlPath, "html", "", "write a self-contained HTML report to this file")
	fs.BoolVar(&o.allowRemote, "allow-remote", false,
		"allow a target beyond loopback: only a host you own that may take the load")
}

// validate reports every problem with the flags at once.
func (o *runOptions) validate() error {
	var errs []error
	add := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	add(o.target != "", "--target is required")
	add(len(o.corpus) > 0, "--corpus is required")
	add(o.rate >= 0 && o.rate <= bench.MaxRate, "--rate: want 0 to 10000000")
	add(o.conns >= 1 && o.conns <= 10_000, "--connections: want 1 to 10000")
	add(o.duration > 0, "--duration must be positive")
	add(o.warmup >= 0, "--warmup must not be negative")
	add(o.warmup+o.duration <= bench.MaxDuration, "--duration and --warmup: at most 24h together")
	add(o.timeout > 0, "--timeout must be positive")
	add(o.maxRequests >= 0, "--max-requests must not be negative")
	add(o.hitRate >= 0 && o.hitRate <= 1, "--hit-rate: want 0 to 1")
	add(!o.hitRateSet || o.population != "", "--hit-rate needs --population")
	add(o.pool >= 1, "--pool must be positive")
	add(o.providerID != "", "--provider-id must not be empty")
	add(o.baseline == "" || o.baseline == "echo" || strings.HasPrefix(o.baseline, "http://") ||
		strings.HasPrefix(o.baseline, "https://"), "--baseline: want echo or a URL")
	return errors.Join(errs...)
}

func parseRunArgs(args []string, stderr io.Writer) (runOptions, error) {
	var o runOptions
	fs := flag.NewFlagSet("segd bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bindRunFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.hitRateSet = isFlagSet(fs, "hit-rate")
	err := o.validate()
	if fs.NArg() > 0 {
		err = errors.Join(err, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err != nil {
		fmt.Fprintf(stderr, "segd bench run: %v\n\nRun 'segd bench run -h' for the flags.\n",
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return o, errUsage
	}
	return o, nil
}

// runBenchRun runs `segd bench run`: the report goes to stdout, progress to stderr.
func runBenchRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRunArgs(args, stderr)
	if err != nil {
		return err
	}
	target, err := bench.ParseTarget(o.target, o.allowRemote)
	if err != nil {
		return err
	}
	var baseline *url.URL
	if o.baseline != "" && o.baseline != "echo" {
		if baseline, err = bench.ParseTarget(o.baseline, o.allowRemote); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	bodies, err := loadBodies(o)
	if err != nil {
		return err
	}
	rep, err := runLoads(ctx, o, target, baseline, bodies, stderr)
	if err != nil {
		return err
	}
	if err := writeReports(o, rep, stdout, stderr); err != nil {
		return err
	}
	if rep.Target.OK == 0 && !rep.Target.Interrupted {
		return fmt.Errorf("bench %s: no request got a 2xx response", target.Redacted())
	}
	return nil
}

// loadBodies reads the corpus and, with a population, prepares bodies with its user IDs.
func loadBodies(o runOptions) ([][]byte, error) {
	corpus, err := bench.LoadCorpus(o.corpus)
	if err != nil {
		return nil, err
	}
	if o.population == "" {
		return corpus, nil
	}
	ids, err := bench.ReadPopulation(o.population)
	if err != nil {
		return nil, err
	}
	return bench.PrepareBodies(corpus, bench.Mix{IDs: ids, HitRate: o.hitRate, Size: o.pool,
		Seed: o.seed})
}

// runLoads runs the load against the target and then, with --baseline, the same load
// against the baseline: the URL given, or an echo server started for the purpose.
func runLoads(ctx context.Context, o runOptions, target, baseline *url.URL, bodies [][]byte,
	stderr io.Writer) (*bench.Report, error) {
	res, err := runLoad(ctx, o, target, bodies, "target", stderr)
	if err != nil || o.baseline == "" || res.Interrupted {
		return bench.NewReport(res, nil), err
	}
	if baseline != nil {
		base, err := runLoad(ctx, o, baseline, bodies, "baseline", stderr)
		if err != nil {
			return nil, err
		}
		return bench.NewReport(res, base), nil
	}
	echo, err := bench.StartEcho("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	echoURL := *target
	echoURL.Scheme, echoURL.Host, echoURL.User = "http", echo.Addr(), nil
	base, err := runLoad(ctx, o, &echoURL, bodies, "echo", stderr)
	if cerr := echo.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	rep := bench.NewReport(res, base)
	rep.InProcessEcho = true
	return rep, nil
}

// runLoad sends one run of load to u, showing progress on stderr.
func runLoad(ctx context.Context, o runOptions, u *url.URL, bodies [][]byte, label string,
	stderr io.Writer) (*bench.Result, error) {
	t := bench.NewHTTPTarget(u, o.conns)
	defer t.Close()
	marker, _ := json.Marshal(o.providerID) // a string always marshals
	p := &progressLine{w: stderr, label: label, tty: isTerminal(stderr)}
	res, err := bench.Run(ctx, bench.Config{
		Target:      u.Redacted(),
		NewSender:   t.NewSender,
		Bodies:      bodies,
		Rate:        o.rate,
		Connections: o.conns,
		Duration:    o.duration,
		Warmup:      o.warmup,
		MaxRequests: o.maxRequests,
		Timeout:     o.timeout,
		Marker:      append([]byte(`{"id":`), marker...),
		Progress:    p.show,
	})
	p.end()
	return res, err
}

// progressLine shows a run's progress on stderr: redrawn in place on a terminal, a line a
// second elsewhere.
type progressLine struct {
	w     io.Writer
	label string
	tty   bool
	drawn bool
}

func (p *progressLine) show(pr bench.Progress) {
	line := p.label + "  " + pr.String()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.drawn = true
}

// end finishes a redrawn line so the next output starts on a line of its own.
func (p *progressLine) end() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// writeReports prints the report, as a table or JSON, and writes the HTML page if asked.
func writeReports(o runOptions, rep *bench.Report, stdout, stderr io.Writer) error {
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("json report: %w", err)
		}
	} else if err := bench.WriteText(stdout, rep); err != nil {
		return err
	}
	if o.htmlPath == "" {
		return nil
	}
	if err := writeHTMLFile(o.htmlPath, rep); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "HTML report written to %s\n", o.htmlPath)
	return nil
}

func writeHTMLFile(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := bench.WriteHTML(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

// runBenchGen runs `segd bench gen`.
func runBenchGen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("segd bench gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.GenConfig
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed writes the same bytes")
	fs.IntVar(&cfg.Profiles, "profiles", 100_000, "profiles")
	fs.IntVar(&cfg.Segments, "segments", 200, "segments, with Zipf-distributed sizes")
	fs.IntVar(&cfg.Memberships, "memberships", 500_000, "segment memberships in all")
	out := fs.String("out", "", "folder to write, created if missing (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "segd bench gen: want --out DIR and no arguments")
		return errUsage
	}
	st, err := bench.Generate(*out, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d profiles with %d memberships of %d segments, "+
		"%d onboarding lines\n", *out, st.Profiles, st.Memberships, cfg.Segments, st.Lines)
	fmt.Fprintf(stdout, "load it:  SEGD=bin/segd sh %s/%s\n", *out, bench.LoadScript)
	fmt.Fprintf(stdout, "bench it: segd bench run --target URL --corpus %s/%s "+
		"--population %s\n", *out, bench.RequestsDir, *out)
	return nil
}

// runBenchEcho runs `segd bench echo`.
func runBenchEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("segd bench echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	echo, err := bench.StartEcho(*addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "echo baseline listening on %s\n", echo.Addr())
	<-ctx.Done()
	return echo.Close()
}
