package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/segd/segd/bench"
	"github.com/segd/segd/segments"
)

const benchCorpus = "../../testdata/requests/bench-2k.json"

// benchRun runs `segd bench run` with args and returns its stdout and stderr.
func benchRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"bench", "run"}, args...), &stdout,
		&stderr)
	return stdout.String(), stderr.String(), err
}

// benchRunJSON runs `segd bench run --json` with args and decodes the report.
func benchRunJSON(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	out, errOut, err := benchRun(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("bench run: %v\n%s", err, errOut)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	return &rep
}

func startBenchEcho(t *testing.T) string {
	t.Helper()
	e, err := bench.StartEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return "http://" + e.Addr() + "/openrtb2/enrich"
}

func TestBenchRunClosedLoop(t *testing.T) {
	rep := benchRunJSON(t, "--target", startBenchEcho(t), "--connections", "4",
		"--warmup", "0", "--duration", "1m", "--max-requests", "200", "--corpus", benchCorpus)
	r := rep.Target
	if r.Mode != "closed" || r.Requests != 200 || r.OK != 200 || r.Errors.Total() != 0 {
		t.Errorf("mode %s, %d requests, %d ok, errors %+v; want closed, 200, 200, none",
			r.Mode, r.Requests, r.OK, r.Errors)
	}
	if r.Enriched != 0 || rep.Baseline != nil {
		t.Errorf("an echo enriched %d responses, or a baseline ran unasked", r.Enriched)
	}
}

func TestBenchRunOpenLoopWithBaseline(t *testing.T) {
	page := filepath.Join(t.TempDir(), "report.html")
	out, errOut, err := benchRun(t, "--target", startBenchEcho(t), "--rate", "500",
		"--warmup", "0", "--duration", "1m", "--max-requests", "100", "--corpus",
		"../../testdata/requests", "--baseline", "echo", "--html", page)
	if err != nil {
		t.Fatalf("bench run: %v\n%s", err, errOut)
	}
	for _, want := range []string{"open loop at 500/s", "target/echo", "(in-process fasthttp echo)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	row := rowOf(out, "requests")
	if len(row) != 2 || row[0] != "100" || row[1] != "100" {
		t.Errorf("requests row %q, want 100 for the target and 100 for the echo", row)
	}
	html, err := os.ReadFile(page)
	if err != nil || bytes.Count(html, []byte("<svg")) != 2 {
		t.Errorf("HTML report: %v, %d charts", err, bytes.Count(html, []byte("<svg")))
	}
}

// rowOf returns the cells after label in a text report.
func rowOf(out, label string) []string {
	for line := range strings.Lines(out) {
		if cells, ok := strings.CutPrefix(strings.TrimSpace(line), label+" "); ok {
			return strings.Fields(cells)
		}
	}
	return nil
}

func TestBenchRunRefusesRemoteTarget(t *testing.T) {
	_, _, err := benchRun(t, "--target", "http://192.0.2.10:8080/openrtb2/enrich",
		"--corpus", benchCorpus, "--max-requests", "1")
	if !errors.Is(err, bench.ErrRemoteTarget) || !strings.Contains(err.Error(), "--allow-remote") {
		t.Errorf("remote target: %v, want ErrRemoteTarget naming --allow-remote", err)
	}
	_, _, err = benchRun(t, "--target", "http://127.0.0.1:1/x", "--baseline",
		"http://192.0.2.10:9090/x", "--corpus", benchCorpus, "--max-requests", "1")
	if !errors.Is(err, bench.ErrRemoteTarget) {
		t.Errorf("remote baseline: %v, want ErrRemoteTarget", err)
	}
}

func TestBenchRunBaselineURL(t *testing.T) {
	rep := benchRunJSON(t, "--target", startBenchEcho(t), "--baseline", startBenchEcho(t),
		"--connections", "2", "--warmup", "0", "--duration", "1m", "--max-requests", "50",
		"--corpus", benchCorpus)
	if rep.Baseline == nil || rep.Baseline.Requests != 50 || rep.InProcessEcho ||
		rep.Ratio == nil {
		t.Errorf("baseline %+v, in-process %v, ratio %+v; want 50 requests to the URL",
			rep.Baseline, rep.InProcessEcho, rep.Ratio)
	}
}

func TestBenchRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"--corpus", benchCorpus}, "--target is required"},
		{"no corpus", []string{"--target", "http://127.0.0.1:1/"}, "--corpus is required"},
		{"hit rate alone", []string{"--target", "http://127.0.0.1:1/", "--corpus", benchCorpus,
			"--hit-rate", "0.5"}, "--hit-rate needs --population"},
		{"bad baseline", []string{"--target", "http://127.0.0.1:1/", "--corpus", benchCorpus,
			"--baseline", "nginx"}, "--baseline: want echo or a URL"},
		{"several", []string{"--rate", "-1", "--connections", "0"}, "--connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := benchRun(t, tt.args...)
			if !errors.Is(err, errUsage) || !strings.Contains(stderr, tt.want) {
				t.Errorf("err %v, stderr %q; want a usage error saying %q", err, stderr, tt.want)
			}
		})
	}
}

func TestBenchRunNoSuccessFails(t *testing.T) {
	_, _, err := benchRun(t, "--target", "http://127.0.0.1:1/openrtb2/enrich", "--warmup",
		"0", "--connections", "1", "--max-requests", "2", "--corpus", benchCorpus)
	if err == nil || !strings.Contains(err.Error(), "no request got a 2xx response") {
		t.Errorf("a run against a closed port: %v, want a failure", err)
	}
}

func TestBenchGenUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "gen", "--profiles", "10"}, &stdout,
		&stderr)
	if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "--out") {
		t.Errorf("gen without --out: %v, %q", err, stderr.String())
	}
}

// TestBenchPopulationHitRate generates a population, loads it into a real segd through
// the admin API, and benches segd's bid listener with half the requests from the
// population: exactly the hits come back enriched.
func TestBenchPopulationHitRate(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "gen", "--seed", "3", "--profiles",
		"300", "--segments", "12", "--memberships", "900", "--out", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench gen: %v\n%s", err, stderr.String())
	}
	a := startTestApp(t, t.TempDir())
	defer a.close()
	c := newClient(t, a)
	loadPopulation(t, c, dir)

	const pool, hitRate = 400, 0.5
	rep := benchRunJSON(t, "--target", c.bid+"/openrtb2/enrich", "--connections", "4",
		"--warmup", "0", "--duration", "1m", "--max-requests", strconv.Itoa(pool),
		"--corpus", filepath.Join(dir, bench.RequestsDir), "--population", dir,
		"--hit-rate", strconv.FormatFloat(hitRate, 'f', -1, 64), "--pool", strconv.Itoa(pool))
	r := rep.Target
	want := int64(math.Round(hitRate * pool))
	if r.Requests != pool || r.OK != pool || r.Enriched != want {
		t.Errorf("%d requests, %d ok, %d enriched; want %d, %d, %d", r.Requests, r.OK,
			r.Enriched, pool, pool, want)
	}
}

// loadPopulation defines a generated population's sources and segments and imports its
// onboarding files.
func loadPopulation(t *testing.T, c testClient, dir string) {
	t.Helper()
	var sources []segments.Source
	var defs []segments.Segment
	for path, v := range map[string]any{bench.SourcesFile: &sources,
		bench.SegmentsFile: &defs} {
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, path)), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sources {
		body, _ := json.Marshal(s)
		c.must("PUT", c.admin+"/v1/sources/"+s.ID, body, 200)
	}
	for _, g := range defs {
		body, _ := json.Marshal(g)
		c.must("PUT", c.admin+"/v1/segments/"+g.ID, body, 200)
	}
	for _, s := range sources {
		tsv := readFile(t, filepath.Join(dir, bench.OnboardDir, s.ID+".tsv"))
		out := c.must("POST", c.admin+"/v1/import?source="+s.ID+"&format=tsv", tsv, 200)
		if !bytes.Contains(out, []byte(`"rejected": 0`)) {
			t.Fatalf("import %s: %s", s.ID, out)
		}
	}
}
