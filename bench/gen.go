package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segd/segd/segments"
)

// The files that Generate writes, relative to its folder.
const (
	IDsFile      = "ids.txt"       // user.id values of the profiles with a membership
	SourcesFile  = "sources.json"  // the sources, as PUT /v1/sources/{id} takes them
	SegmentsFile = "segments.json" // the segments, as PUT /v1/segments/{id} takes them
	OnboardDir   = "onboard"       // one TSV onboarding file per source
	RequestsDir  = "requests"      // bid requests with placeholder IDs, for --corpus
	LoadScript   = "load.sh"       // loads the population into a running segd
)

// GenConfig sizes a generated population.
type GenConfig struct {
	Seed        uint64 // the same seed writes the same bytes
	Profiles    int    // profiles, 1 to 20 million
	Segments    int    // segments, 1 to 100000
	Memberships int    // segment memberships in all, at most Profiles*Segments
}

// Validate reports every problem with c at once.
func (c *GenConfig) Validate() error {
	var errs []error
	if c.Profiles < 1 || c.Profiles > 20_000_000 {
		errs = append(errs, fmt.Errorf("profiles %d: want 1 to 20000000", c.Profiles))
	}
	if c.Segments < 1 || c.Segments > 100_000 {
		errs = append(errs, fmt.Errorf("segments %d: want 1 to 100000", c.Segments))
	}
	if c.Memberships < 0 || int64(c.Memberships) > int64(c.Profiles)*int64(c.Segments) {
		errs = append(errs, fmt.Errorf("memberships %d: want 0 to profiles*segments",
			c.Memberships))
	}
	return errors.Join(errs...)
}

// GenStats says what Generate wrote.
type GenStats struct {
	Profiles    int // profiles with at least one membership, listed in ids.txt
	Memberships int
	Lines       int // onboarding lines, all sources together
}

// genSources returns the sources of a generated population; segment i belongs to source
// i mod len(genSources()).
func genSources() []segments.Source {
	return []segments.Source{
		{ID: "crm", Name: "Bench CRM", Party: segments.FirstParty, TTL: 30 * 24 * time.Hour},
		{ID: "coop", Name: "Bench data co-op", Party: segments.SecondParty,
			TTL: 30 * 24 * time.Hour},
		{ID: "partner", Name: "Bench data partner", Party: segments.ThirdParty,
			TTL: 14 * 24 * time.Hour},
	}
}

// genSourceCount is len(genSources()).
const genSourceCount = 3

// genSegment is segment i of a population: its definition and the trait code it is built
// from.
func genSegment(i int) segments.Segment {
	n := strconv.Itoa(i + 1)
	g := segments.Segment{ID: "bench-" + n, Name: "Bench segment " + n,
		Rule: genSources()[i%genSourceCount].ID + ":" + genCode(i), ExportID: "bench-" + n}
	if i%2 == 0 { // half of them in the IAB Audience Taxonomy
		g.ExportID, g.Segtax = strconv.Itoa(100+i), 4
	}
	return g
}

func genCode(i int) string { return "seg-" + strconv.Itoa(i+1) }

// Generate writes a population to dir, created if missing: profiles whose segment
// memberships follow a Zipf law (a few segments are large, most are small), as TSV
// onboarding files per source, with the sources, the segments, the user IDs, bid requests
// and a script that loads it all. The same config writes the same bytes.
func Generate(dir string, cfg GenConfig) (GenStats, error) {
	if err := cfg.Validate(); err != nil {
		return GenStats{}, fmt.Errorf("generate: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, OnboardDir),
		filepath.Join(dir, RequestsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return GenStats{}, fmt.Errorf("generate: %w", err)
		}
	}
	defs := make([]segments.Segment, cfg.Segments)
	for i := range defs {
		defs[i] = genSegment(i)
	}
	if err := writeDefinitions(dir, defs); err != nil {
		return GenStats{}, err
	}
	if err := writeRequests(filepath.Join(dir, RequestsDir)); err != nil {
		return GenStats{}, err
	}
	if err := writeLoadScript(filepath.Join(dir, LoadScript), defs); err != nil {
		return GenStats{}, err
	}
	return writeProfiles(dir, cfg)
}

func writeDefinitions(dir string, defs []segments.Segment) error {
	if err := writeJSONFile(filepath.Join(dir, SourcesFile), genSources()); err != nil {
		return err
	}
	return writeJSONFile(filepath.Join(dir, SegmentsFile), defs)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("generate %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// popWriter writes the onboarding files and ids.txt of a population.
type popWriter struct {
	files []*os.File
	out   []*bufio.Writer // one per source, then ids.txt
	stats GenStats
}

func writeProfiles(dir string, cfg GenConfig) (GenStats, error) {
	w, err := createPopFiles(dir)
	if err != nil {
		return GenStats{}, err
	}
	w.profiles(cfg)
	return w.stats, w.close()
}

func createPopFiles(dir string) (*popWriter, error) {
	w := &popWriter{}
	paths := make([]string, 0, genSourceCount+1)
	for _, s := range genSources() {
		paths = append(paths, filepath.Join(dir, OnboardDir, s.ID+".tsv"))
	}
	for _, p := range append(paths, filepath.Join(dir, IDsFile)) {
		f, err := os.Create(p)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("generate: %w", err)
		}
		w.files = append(w.files, f)
		w.out = append(w.out, bufio.NewWriterSize(f, 64<<10))
	}
	return w, nil
}

// close flushes and closes every file and returns the first error.
func (w *popWriter) close() error {
	var errs []error
	for i, f := range w.files {
		errs = append(errs, w.out[i].Flush(), f.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// profiles writes every profile. Three random streams, one each for the number of
// memberships per profile, the segments picked and the IDs, keep each part of the output
// independent of how the others are drawn.
func (w *popWriter) profiles(cfg GenConfig) {
	counts := membershipCounts(rand.New(rand.NewPCG(cfg.Seed, 1)), cfg)
	segRNG := rand.New(rand.NewPCG(cfg.Seed, 2))
	idRNG := rand.New(rand.NewPCG(cfg.Seed, 3))
	p := picker{rng: segRNG, zipf: rand.NewZipf(segRNG, 1.1, 1, uint64(cfg.Segments-1)),
		mark: make([]uint32, cfg.Segments)}
	for i, n := range counts {
		ids := "uid:" + randomUUID(idRNG)
		uid := ids[len("uid:"):]
		if idRNG.IntN(3) == 0 {
			ids += "|ifa:" + randomUUID(idRNG)
		}
		picked := p.pick(int(n), uint32(i+1))
		if len(picked) == 0 {
			continue
		}
		w.profile(ids, uid, picked)
	}
}

// profile writes the lines of one profile with memberships of the segments picked.
func (w *popWriter) profile(ids, uid string, picked []int) {
	for s := range genSourceCount {
		var codes []string
		for _, g := range picked {
			if g%genSourceCount == s {
				codes = append(codes, genCode(g))
			}
		}
		if len(codes) == 0 {
			continue
		}
		fmt.Fprintf(w.out[s], "%s\t%s\n", ids, strings.Join(codes, ","))
		w.stats.Lines++
	}
	fmt.Fprintln(w.out[genSourceCount], uid)
	w.stats.Profiles++
	w.stats.Memberships += len(picked)
}

// membershipCounts deals the memberships to profiles uniformly at random. A profile that
// is already in every segment passes its draw to the next one that is not, so the total
// is exact; Validate ensures there is always one.
func membershipCounts(rng *rand.Rand, cfg GenConfig) []uint32 {
	counts := make([]uint32, cfg.Profiles)
	full := uint32(cfg.Segments)
	for range cfg.Memberships {
		p := rng.IntN(cfg.Profiles)
		for counts[p] >= full {
			p = (p + 1) % cfg.Profiles
		}
		counts[p]++
	}
	return counts
}

// picker draws distinct segments for one profile at a time, by Zipf popularity.
type picker struct {
	rng    *rand.Rand
	zipf   *rand.Zipf
	mark   []uint32 // mark[g] == stamp: g is picked for the current profile
	picked []int
}

// pick returns k distinct segments in ascending order, valid until the next call. stamp
// must differ from the previous call's. Popular segments are drawn first; if they keep
// repeating, the rest are taken in order from a random one on, so the count is exact.
func (p *picker) pick(k int, stamp uint32) []int {
	p.picked = p.picked[:0]
	if k == 0 {
		return nil
	}
	for try := 0; len(p.picked) < k && try < 4*k+16; try++ {
		p.take(int(p.zipf.Uint64()), stamp)
	}
	for g := p.rng.IntN(len(p.mark)); len(p.picked) < k; g = (g + 1) % len(p.mark) {
		p.take(g, stamp)
	}
	slices.Sort(p.picked)
	return p.picked
}

func (p *picker) take(g int, stamp uint32) {
	if p.mark[g] != stamp {
		p.mark[g] = stamp
		p.picked = append(p.picked, g)
	}
}

// randomUUID returns a version 4 UUID drawn from rng.
func randomUUID(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0x0fff|0x4000,
		b>>48&0x3fff|0x8000, b&0xffff_ffff_ffff)
}
