package bidder

import (
	"io"
	"math"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segd/segd/segments"
)

// outcome is how a bid request ended.
type outcome uint8

const (
	outEnriched    outcome = iota // segments added
	outNoID                       // no usable ID in the request
	outNoMatch                    // IDs found, no served segment
	outPrivacy                    // a privacy signal forbade enrichment
	outNotReady                   // the index is still loading
	outSkipped                    // duplicate or mistyped fields: left alone
	outInvalid                    // 4xx: not JSON, too large
	outPanic                      // the handler panicked and answered unchanged
	outUpstreamErr                // proxy mode: the upstream failed
	outOverBudget                 // the scan and lookup ran past the budget: unchanged
	outOverload                   // beyond MaxInflight: answered at once, unchanged
	outCaller                     // an unknown API key, or none where one is required
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"enriched", "no_id", "no_match", "privacy", "not_ready", "skipped", "invalid", "panic",
	"upstream_error", "over_budget", "overload", "unknown_caller",
}

// endpoint is a bid-listener route, for metrics.
type endpoint uint8

const (
	epEnrich endpoint = iota
	epSegments
	epAuction
	numEndpoints
)

var endpointNames = [numEndpoints]string{"enrich", "segments", "auction"}

// latencyBounds are the histogram's upper bounds in seconds.
var latencyBounds = [...]float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25,
}

// Metrics counts what segd does, for /metrics. Updates are atomic and allocation-free; the
// zero value is ready to use.
type Metrics struct {
	requests     [numEndpoints][numOutcomes]atomic.Uint64
	buckets      [numEndpoints][len(latencyBounds) + 1]atomic.Uint64
	latencySumNs [numEndpoints]atomic.Uint64
	importLines  [2]atomic.Uint64 // accepted, rejected
	importFails  atomic.Uint64
	ingesting    atomic.Int64  // imports and event batches running
	ingestBusy   atomic.Uint64 // those refused with 429
}

func (m *Metrics) observe(ep endpoint, oc outcome, d time.Duration) {
	m.requests[ep][oc].Add(1)
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	m.buckets[ep][i].Add(1)
	m.latencySumNs[ep].Add(uint64(d))
}

// Imported counts the lines of one import.
func (m *Metrics) Imported(r segments.ImportResult, failed bool) {
	m.importLines[0].Add(uint64(r.Accepted))
	m.importLines[1].Add(uint64(r.Rejected))
	if failed {
		m.importFails.Add(1)
	}
}

// WritePrometheus writes every metric in the Prometheus text format, with the index's
// sizes taken from st.
func (m *Metrics) WritePrometheus(w io.Writer, st segments.Stats, ready bool) {
	b := make([]byte, 0, 8<<10)
	b = append(b, "# HELP segd_requests_total Bid requests by endpoint and outcome.\n"...)
	b = append(b, "# TYPE segd_requests_total counter\n"...)
	for ep := range numEndpoints {
		for oc := range numOutcomes {
			b = appendSample(b, "segd_requests_total", `endpoint="`+endpointNames[ep]+
				`",outcome="`+outcomeNames[oc]+`"`, float64(m.requests[ep][oc].Load()))
		}
	}
	b = m.appendLatency(b)
	b = m.appendHitRate(b)
	b = appendGauge(b, "segd_index_profiles", "Profiles in the index.", float64(st.Profiles))
	b = appendGauge(b, "segd_index_ids", "ID hashes linked to profiles.", float64(st.IDs))
	b = appendGauge(b, "segd_index_traits", "Distinct traits.", float64(st.Traits))
	b = appendGauge(b, "segd_index_segments", "Defined segments.", float64(st.Segments))
	b = appendGauge(b, "segd_ready", "1 when the index is loaded and serving.", boolFloat(ready))
	b = append(b, "# HELP segd_import_lines_total Onboarding lines by result.\n"...)
	b = append(b, "# TYPE segd_import_lines_total counter\n"...)
	b = appendSample(b, "segd_import_lines_total", `result="accepted"`,
		float64(m.importLines[0].Load()))
	b = appendSample(b, "segd_import_lines_total", `result="rejected"`,
		float64(m.importLines[1].Load()))
	b = append(b, "# HELP segd_import_failures_total Imports stopped by an error.\n"...)
	b = append(b, "# TYPE segd_import_failures_total counter\n"...)
	b = appendSample(b, "segd_import_failures_total", "", float64(m.importFails.Load()))
	b = appendGauge(b, "segd_ingest_streams", "Imports and event batches running.",
		float64(m.ingesting.Load()))
	b = append(b, "# HELP segd_ingest_refused_total Imports and event batches refused "+
		"with 429: too many at once.\n# TYPE segd_ingest_refused_total counter\n"...)
	b = appendSample(b, "segd_ingest_refused_total", "", float64(m.ingestBusy.Load()))
	b = appendMemory(b)
	w.Write(b)
}

// memorySamples are the Go runtime's memory figures that /metrics reports, in the order
// of memoryGauges.
var memorySamples = [...]string{"/gc/heap/live:bytes", "/memory/classes/total:bytes"}

var memoryGauges = [len(memorySamples)][2]string{
	{"segd_go_heap_live_bytes", "Heap bytes that were live at the end of the last GC: " +
		"the index, mostly."},
	{"segd_go_memory_bytes", "All memory the Go runtime has mapped, free heap included."},
}

// appendMemory writes the Go runtime's memory gauges. Badger's memory-mapped tables are
// not in them: the process's resident size counts those too.
func appendMemory(b []byte) []byte {
	var samples [len(memorySamples)]metrics.Sample
	for i, name := range memorySamples {
		samples[i].Name = name
	}
	metrics.Read(samples[:])
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			b = appendGauge(b, memoryGauges[i][0], memoryGauges[i][1], float64(s.Value.Uint64()))
		}
	}
	return b
}

func (m *Metrics) appendLatency(b []byte) []byte {
	const name = "segd_request_duration_seconds"
	b = append(b, "# HELP "+name+" Time to answer a bid request, proxying included.\n"...)
	b = append(b, "# TYPE "+name+" histogram\n"...)
	for ep := range numEndpoints {
		lbl := `endpoint="` + endpointNames[ep] + `"`
		var cum uint64
		for i := range m.buckets[ep] {
			cum += m.buckets[ep][i].Load()
			le := "+Inf"
			if i < len(latencyBounds) {
				le = strconv.FormatFloat(latencyBounds[i], 'g', -1, 64)
			}
			b = appendSample(b, name+"_bucket", lbl+`,le="`+le+`"`, float64(cum))
		}
		b = appendSample(b, name+"_sum", lbl, float64(m.latencySumNs[ep].Load())/1e9)
		b = appendSample(b, name+"_count", lbl, float64(cum))
	}
	return b
}

// appendHitRate writes the share of answered requests that were enriched.
func (m *Metrics) appendHitRate(b []byte) []byte {
	var hits, total uint64
	for ep := range numEndpoints {
		for oc := range numOutcomes {
			n := m.requests[ep][oc].Load()
			if outcome(oc) == outEnriched {
				hits += n
			}
			if outcome(oc) != outInvalid {
				total += n
			}
		}
	}
	rate := 0.0
	if total > 0 {
		rate = float64(hits) / float64(total)
	}
	return appendGauge(b, "segd_enrichment_hit_ratio",
		"Share of valid bid requests that got segments, since start.", rate)
}

func appendGauge(b []byte, name, help string, v float64) []byte {
	b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" gauge\n"...)
	return appendSample(b, name, "", v)
}

func appendSample(b []byte, name, labels string, v float64) []byte {
	b = append(b, name...)
	if labels != "" {
		b = append(b, '{')
		b = append(b, labels...)
		b = append(b, '}')
	}
	b = append(b, ' ')
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		b = strconv.AppendInt(b, int64(v), 10)
	} else {
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '\n')
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
