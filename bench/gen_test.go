package bench_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/segd/segd/bench"
	"github.com/segd/segd/segments"
)

var smallPopulation = bench.GenConfig{Seed: 42, Profiles: 2000, Segments: 40,
	Memberships: 7000}

// readTree returns every file under dir by its relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	other := smallPopulation
	other.Seed++
	for dir, cfg := range map[string]bench.GenConfig{a: smallPopulation, b: smallPopulation,
		c: other} {
		if _, err := bench.Generate(dir, cfg); err != nil {
			t.Fatal(err)
		}
	}
	ta, tb, tc := readTree(t, a), readTree(t, b), readTree(t, c)
	if len(ta) != 10 {
		t.Errorf("%d files written, want 10: %v", len(ta), keys(ta))
	}
	for name, data := range ta {
		if !bytes.Equal(data, tb[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if bytes.Equal(ta["ids.txt"], tc["ids.txt"]) ||
		bytes.Equal(ta["onboard/crm.tsv"], tc["onboard/crm.tsv"]) {
		t.Error("another seed wrote the same population")
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestGenerateContents checks the population against what segd accepts: every onboarding
// line parses, segments and sources validate, the requests are OpenRTB, and the counts
// add up.
func TestGenerateContents(t *testing.T) {
	dir := t.TempDir()
	st, err := bench.Generate(dir, smallPopulation)
	if err != nil {
		t.Fatal(err)
	}
	if st.Memberships != smallPopulation.Memberships {
		t.Errorf("%d memberships, want %d", st.Memberships, smallPopulation.Memberships)
	}
	sources, defs := checkDefinitions(t, dir)
	rules := map[string]bool{}
	for _, g := range defs {
		rules[g.Rule] = true
	}

	memberships, lines, users := 0, 0, map[string]bool{}
	for _, s := range sources {
		forLines(t, filepath.Join(dir, bench.OnboardDir, s.ID+".tsv"), func(line string) {
			l, err := segments.ParseTSVLine([]byte(line))
			if err != nil {
				t.Fatalf("%s line %q: %v", s.ID, line, err)
			}
			for _, code := range l.Add {
				if !rules[s.ID+":"+code] {
					t.Errorf("%s code %s has no segment", s.ID, code)
				}
			}
			memberships += len(l.Add)
			lines++
			users[l.IDs[0].Value] = true
		})
	}
	ids, err := bench.ReadPopulation(dir)
	if err != nil {
		t.Fatal(err)
	}
	if memberships != st.Memberships || lines != st.Lines || len(ids) != st.Profiles ||
		len(users) != st.Profiles {
		t.Errorf("files hold %d memberships, %d lines, %d ids, %d users; stats say %+v",
			memberships, lines, len(ids), len(users), st)
	}
	checkRequests(t, filepath.Join(dir, bench.RequestsDir))
}

func checkDefinitions(t *testing.T, dir string) ([]segments.Source, []segments.Segment) {
	t.Helper()
	var sources []segments.Source
	var defs []segments.Segment
	readJSON(t, filepath.Join(dir, bench.SourcesFile), &sources)
	readJSON(t, filepath.Join(dir, bench.SegmentsFile), &defs)
	for _, s := range sources {
		if err := s.Validate(); err != nil {
			t.Errorf("source %s: %v", s.ID, err)
		}
	}
	for _, g := range defs {
		if err := g.Validate(); err != nil {
			t.Errorf("segment %s: %v", g.ID, err)
		}
	}
	if len(sources) != 3 || len(defs) != smallPopulation.Segments {
		t.Errorf("%d sources and %d segments", len(sources), len(defs))
	}
	return sources, defs
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func forLines(t *testing.T, path string, f func(string)) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f(sc.Text())
	}
}

func checkRequests(t *testing.T, dir string) {
	t.Helper()
	reqs, err := bench.LoadCorpus([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var ifa, eids int
	for _, b := range reqs {
		var req openrtb2.BidRequest
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("request %s: %v", b, err)
		}
		if req.User == nil || req.User.ID != bench.PlaceholderUserID || len(req.Imp) == 0 {
			t.Errorf("request %s: want imps and the placeholder user.id", req.ID)
		}
		if req.Device != nil && req.Device.IFA != "" {
			ifa++
		}
		eids += len(req.User.EIDs)
	}
	if ifa == 0 || eids == 0 {
		t.Errorf("requests have %d IFAs and %d EIDs, want some of each", ifa, eids)
	}
}

func TestGenConfigValidate(t *testing.T) {
	cfg := bench.GenConfig{Profiles: 0, Segments: 0, Memberships: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"profiles", "segments", "memberships"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	dense := bench.GenConfig{Profiles: 10, Segments: 3, Memberships: 30}
	st, err := bench.Generate(t.TempDir(), dense)
	if err != nil || st.Memberships != 30 || st.Profiles != 10 {
		t.Errorf("every profile in every segment: %+v, %v", st, err)
	}
}
