package bench

import (
	"math"
	"time"
)

// Result is what one load run measured. Latencies are in microseconds, each counted from
// the request's intended send time. They cover the requests that got a response (any
// status) or timed out; failed connections and other errors are counted but not timed.
type Result struct {
	Target      string    `json:"target"`
	Mode        string    `json:"mode"`           // "open" (at a constant rate) or "closed"
	Rate        int       `json:"rate,omitempty"` // intended requests per second, open loop
	Connections int       `json:"connections"`
	Started     time.Time `json:"started"`
	WarmupS     float64   `json:"warmup_s"`
	// ElapsedS is the measured window in seconds: from the end of the warm-up to the end
	// of the last measured response.
	ElapsedS float64 `json:"elapsed_s"`
	// Requests is how many measured requests were sent, failed ones included.
	Requests int64 `json:"requests"`
	// RateAchieved is Requests per second of ElapsedS.
	RateAchieved float64 `json:"rate_achieved"`
	OK           int64   `json:"ok"` // 2xx responses
	Errors       Errors  `json:"errors"`
	// Enriched is how many 2xx responses carry segments that their request did not.
	Enriched      int64   `json:"enriched"`
	EnrichedShare float64 `json:"enriched_share"` // Enriched / OK
	Latency       Latency `json:"latency_us"`
	// SendLag is how late the harness itself sent, from the intended send time: a busy
	// connection pool, a slow timer or a pause of this process. Every latency includes it,
	// so it is the floor under them. Always near zero in a closed loop.
	SendLag     Latency      `json:"send_lag_us"`
	Timeline    []Point      `json:"timeline"`
	Percentiles []CurvePoint `json:"percentiles"`
	Interrupted bool         `json:"interrupted,omitempty"` // stopped early by a signal
}

// Errors counts the failed measured requests by class.
type Errors struct {
	Connect   int64 `json:"connect"`
	Timeout   int64 `json:"timeout"`
	Status4xx int64 `json:"status_4xx"`
	Status5xx int64 `json:"status_5xx"`
	Other     int64 `json:"other"` // other I/O errors, 1xx and 3xx statuses
	// Unsent are open-loop requests that fell due in the measured window but were never
	// sent, because every connection was busy until the window closed. They are not in
	// Requests.
	Unsent int64 `json:"unsent"`
}

// Total is the number of failed requests, unsent ones included.
func (e Errors) Total() int64 {
	return e.Connect + e.Timeout + e.Status4xx + e.Status5xx + e.Other + e.Unsent
}

// Latency summarises the latency distribution, in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Point is one interval of the timeline: the requests intended in it.
type Point struct {
	AtS      float64 `json:"t_s"` // start of the interval, from the end of the warm-up
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
	Max      float64 `json:"max_us"`
}

// CurvePoint is one point of the latency-by-percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"percentile"` // 0 to 100
	Latency    float64 `json:"latency_us"`
}

// Report is the outcome of `segd bench run`: the target's result and, when asked for,
// a baseline's (an echo server) under the same load.
type Report struct {
	Target   *Result     `json:"target"`
	Baseline *Result     `json:"baseline,omitempty"`
	Ratio    *Comparison `json:"ratio,omitempty"` // target over baseline
	// InProcessEcho says that the baseline is the echo server that the harness started in
	// its own process, rather than a server elsewhere.
	InProcessEcho bool `json:"in_process_echo,omitempty"`
}

// Comparison holds the target's figures divided by the baseline's.
type Comparison struct {
	Rate float64 `json:"rate"`
	P99  float64 `json:"p99"`
}

// NewReport returns the report of target and, if not nil, baseline.
func NewReport(target, baseline *Result) *Report {
	rep := &Report{Target: target, Baseline: baseline}
	if baseline != nil {
		rep.Ratio = &Comparison{
			Rate: ratio(target.RateAchieved, baseline.RateAchieved),
			P99:  ratio(target.Latency.P99, baseline.Latency.P99),
		}
	}
	return rep
}

// ratio returns a/b rounded to 3 decimals, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

func micros(d time.Duration) float64 { return float64(d) / 1e3 }

// result builds the Result of the finished run.
func (r *run) result(interrupted bool) *Result {
	rec := r.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	res := &Result{
		Target:      r.cfg.Target,
		Mode:        "closed",
		Connections: r.cfg.Connections,
		Started:     r.started.UTC().Round(0),
		WarmupS:     r.cfg.Warmup.Seconds(),
		ElapsedS:    rec.lastDone.Seconds(),
		Requests:    rec.measured(),
		OK:          rec.classes[classOK],
		Enriched:    rec.enriched,
		Latency:     summarise(&rec.total),
		SendLag:     summarise(&rec.lag),
		Timeline:    rec.points(),
		Percentiles: curve(&rec.total),
		Interrupted: interrupted,
	}
	if r.open != nil {
		res.Mode, res.Rate = "open", r.cfg.Rate
	}
	if res.ElapsedS > 0 {
		res.RateAchieved = math.Round(float64(res.Requests)/res.ElapsedS*10) / 10
	}
	if res.OK > 0 {
		res.EnrichedShare = float64(res.Enriched) / float64(res.OK)
	}
	res.Errors = Errors{
		Connect: rec.classes[classConnect], Timeout: rec.classes[classTimeout],
		Status4xx: rec.classes[class4xx], Status5xx: rec.classes[class5xx],
		Other: rec.classes[classOther],
	}
	if r.open != nil && !interrupted {
		res.Errors.Unsent = r.open.due() - res.Requests
	}
	return res
}

func summarise(h *Histogram) Latency {
	return Latency{
		P50:  micros(h.Quantile(0.50)),
		P90:  micros(h.Quantile(0.90)),
		P99:  micros(h.Quantile(0.99)),
		P999: micros(h.Quantile(0.999)),
		Max:  micros(h.Max()),
		Mean: micros(h.Mean()),
	}
}

// points returns the timeline; rec.mu must be held.
func (rec *recorder) points() []Point {
	pts := make([]Point, len(rec.timeline))
	for i, iv := range rec.timeline {
		pts[i] = Point{
			AtS:      (time.Duration(i) * rec.step).Seconds(),
			Requests: iv.requests,
			Errors:   iv.errors,
			P50:      micros(iv.hist.Quantile(0.50)),
			P99:      micros(iv.hist.Quantile(0.99)),
			Max:      micros(iv.hist.Max()),
		}
	}
	return pts
}

// curveStep is the spacing of the percentile curve in nines: ten points from 0 to 90 %,
// ten more to 99 %, and so on.
const curveStep = 0.1

// curve returns the latency at percentiles 1 - 10^-x for x = 0, 0.1, 0.2 ... up to the
// finest percentile that h's count resolves, then 100 (the maximum).
func curve(h *Histogram) []CurvePoint {
	n := h.Count()
	if n == 0 {
		return nil
	}
	limit := math.Log10(float64(n))
	var pts []CurvePoint
	for k := 0; float64(k)*curveStep < limit; k++ {
		q := 1 - math.Pow(10, -float64(k)*curveStep)
		pts = append(pts, CurvePoint{
			Percentile: math.Round(q*1e7) / 1e5,
			Latency:    micros(h.Quantile(q)),
		})
	}
	return append(pts, CurvePoint{Percentile: 100, Latency: micros(h.Max())})
}

// BaselineName is the name of the baseline's column: "echo" for the in-process echo
// server, "baseline" for any other.
func (rep *Report) BaselineName() string {
	if rep.InProcessEcho {
		return "echo"
	}
	return "baseline"
}
