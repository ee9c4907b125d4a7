package bench

import (
	"sync"
	"time"
)

// class is what became of one request.
type class uint8

const (
	classOK      class = iota // a 2xx response
	classConnect              // no connection could be made
	classTimeout              // no whole response before the request timeout
	class4xx
	class5xx
	classOther // any other failure, and 1xx or 3xx statuses
)

// timed reports whether a request of class c waited for an answer, so its latency belongs
// in the histograms. Connect and other failures are fast and would flatter them.
func (c class) timed() bool {
	return c == classOK || c == classTimeout || c == class4xx || c == class5xx
}

// sample is the outcome of one measured request.
type sample struct {
	at       time.Duration // intended send time, from the start of measurement
	latency  time.Duration // from the intended send time to the end of the response
	lag      time.Duration // from the intended send time to the actual one
	class    class
	enriched bool
}

// maxIntervals bounds the points of a timeline: longer runs get longer intervals, so the
// per-interval histograms never take more than about 9 MiB.
const maxIntervals = 300

// interval is one point of the timeline: the requests intended in it.
type interval struct {
	hist     Histogram
	requests int64
	errors   int64
}

// recorder collects the samples of a run. It is safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	step     time.Duration // length of a timeline interval
	total    Histogram
	lag      Histogram // send lag of every measured request
	recent   Histogram // completed since the last progress tick
	timeline []*interval
	classes  [classOther + 1]int64
	enriched int64
	lastDone time.Duration // latest completion, from the start of measurement
}

// newRecorder returns a recorder whose timeline covers a measured window of d.
func newRecorder(d time.Duration) *recorder {
	step := time.Second
	if n := time.Duration(maxIntervals); d > n*step {
		step = (d + n - 1) / n
		step = (step + time.Second - 1) / time.Second * time.Second
	}
	return &recorder{step: step}
}

// add records a measured sample that completed at done, from the start of measurement.
func (r *recorder) add(s sample, done time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.classes[s.class]++
	if s.enriched {
		r.enriched++
	}
	r.lastDone = max(r.lastDone, done)
	r.lag.Record(s.lag)
	iv := r.interval(s.at)
	iv.requests++
	if s.class != classOK {
		iv.errors++
	}
	if s.class.timed() {
		r.total.Record(s.latency)
		r.recent.Record(s.latency)
		iv.hist.Record(s.latency)
	}
}

// interval returns the timeline interval of intended time at, growing the timeline.
func (r *recorder) interval(at time.Duration) *interval {
	i := min(int(max(at, 0)/r.step), maxIntervals-1)
	for len(r.timeline) <= i {
		r.timeline = append(r.timeline, &interval{})
	}
	return r.timeline[i]
}

// measured is how many measured requests ended, whatever their class.
func (r *recorder) measured() int64 {
	var n int64
	for _, c := range r.classes {
		n += c
	}
	return n
}

// tick returns the number of failed measured requests and the 99th percentile of the
// recent histogram, and empties the recent histogram.
func (r *recorder) tick() (errs int64, p99 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p99 = r.recent.Quantile(0.99)
	r.recent.Reset()
	return r.measured() - r.classes[classOK], p99
}
