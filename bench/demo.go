// Package bench is segd's load harness and data generator. Run sends bid requests to a
// target in an open loop (a constant rate, each request timed from its intended send time,
// so a stalled target cannot hide) or a closed loop (as fast as a set of connections
// allows), and reports latency percentiles, errors by class and the share of enriched
// responses, as text, JSON or an HTML page. Generate writes deterministic populations of
// profiles, onboarding files and bid requests from a seed. Only the echo baseline is
// server code; segd's own servers never go here.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/segd/segd/segments"
)

// DemoSources are the sources of the demo dataset.
func DemoSources() []segments.Source {
	return []segments.Source{
		{ID: "crm", Name: "Demo CRM", Party: segments.FirstParty, TTL: 30 * 24 * time.Hour},
		{ID: "partner", Name: "Demo data partner", Party: segments.ThirdParty,
			TTL: 30 * 24 * time.Hour},
	}
}

// DemoSegments are the segments of the demo dataset: IAB Audience Taxonomy 1.1 IDs
// (segtax 4) and proprietary ones.
func DemoSegments() []segments.Segment {
	return []segments.Segment{
		{ID: "loyal", Name: "Loyal customers", Rule: "crm:gold", ExportID: "loyal"},
		{ID: "auto-intenders", Name: "Auto intenders",
			Rule: "partner:auto-intender and not crm:churn-risk", ExportID: "243", Segtax: 4},
		{ID: "travellers", Name: "Travellers", Rule: "partner:travel", ExportID: "647",
			Segtax: 4},
		{ID: "sports-fans", Name: "Sports fans", Rule: "partner:sports or partner:golf",
			ExportID: "483", Segtax: 4},
		{ID: "premium-travellers", Name: "Loyal travellers",
			Rule: "segment:loyal and segment:travellers", ExportID: "premium-travel"},
	}
}

var (
	crmCodes     = []string{"gold", "silver", "churn-risk"}
	partnerCodes = []string{"auto-intender", "travel", "sports", "golf"}
)

// WriteDemoProfiles writes n demo profiles of source src ("crm" or "partner") as TSV
// onboarding lines, the same for the same seed. Profile i has the ID uid:demo-user-<i>
// and, for every third i, an advertising ID. demo-user-1 is always a gold customer who
// travels and wants a car, so the example request matches.
func WriteDemoProfiles(w io.Writer, src string, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, uint64(len(src))))
	codes := crmCodes
	if src == "partner" {
		codes = partnerCodes
	}
	bw := bufio.NewWriter(w)
	for i := 1; i <= n; i++ {
		var picked []string
		switch {
		case i == 1 && src == "crm":
			picked = []string{"gold"}
		case i == 1:
			picked = []string{"travel", "auto-intender"}
		default:
			for _, c := range codes {
				if rng.IntN(4) == 0 {
					picked = append(picked, c)
				}
			}
		}
		if len(picked) == 0 {
			continue
		}
		fmt.Fprintf(bw, "%s\t%s\n", demoIDs(i), join(picked))
	}
	return bw.Flush()
}

func demoIDs(i int) string {
	id := fmt.Sprintf("uid:demo-user-%d", i)
	if i%3 == 0 {
		id += fmt.Sprintf("|ifa:%08x-0000-4000-8000-%012x", i, i)
	}
	return id
}

func join(s []string) string {
	out := ""
	for i, c := range s {
		if i > 0 {
			out += ","
		}
		out += c
	}
	return out
}
