package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// ticket is one request a worker is allowed to send.
type ticket struct {
	seq      uint64    // picks the body
	at       time.Time // intended send time; latency counts from here
	measured bool      // false during the warm-up
}

// pacer hands out the requests of a run to its workers. It is safe for concurrent use.
type pacer interface {
	// next returns the next request for a worker whose clock reads now, or false when
	// the worker should stop.
	next(now time.Time) (ticket, bool)
}

// Schedule is the open-loop plan of a run: request i is meant to leave at Start + i/Rate,
// whatever happened to the requests before it, and is measured from that moment.
type Schedule struct {
	Start time.Time
	Rate  int // requests per second, at least 1
}

// At returns the intended send time of request i: Start plus i/Rate seconds, rounded down
// to the nanosecond. The product i*1e9 is taken in 128 bits, so it never wraps; i/Rate
// must stay below 292 years.
func (s Schedule) At(i uint64) time.Time {
	hi, lo := bits.Mul64(i, uint64(time.Second))
	ns, _ := bits.Div64(hi, lo, uint64(s.Rate))
	return s.Start.Add(time.Duration(ns))
}

// Before returns how many requests are intended in the first d of the schedule: the first
// i with At(i) >= Start+d. d and Rate must be small enough that d*Rate/1e9 fits in 64 bits.
func (s Schedule) Before(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(s.Rate))
	q, r := bits.Div64(hi, lo, uint64(time.Second))
	if r != 0 {
		q++
	}
	return q
}

// openLoop paces an open-loop run: workers take requests in order and wait for their
// intended time; a worker that is late sends at once and the lateness is charged to the
// target.
type openLoop struct {
	sched       Schedule
	first, last uint64    // the measured requests are [first, last)
	end         time.Time // nothing is sent at or after end
	taken       atomic.Uint64
}

func newOpenLoop(sched Schedule, warmup, duration time.Duration, maxRequests int64) *openLoop {
	p := &openLoop{sched: sched, end: sched.Start.Add(warmup + duration)}
	p.first = sched.Before(warmup)
	p.last = sched.Before(warmup + duration)
	if maxRequests > 0 {
		p.last = min(p.last, p.first+uint64(maxRequests))
	}
	return p
}

func (p *openLoop) next(now time.Time) (ticket, bool) {
	i := p.taken.Add(1) - 1
	if i >= p.last || !now.Before(p.end) {
		return ticket{}, false
	}
	return ticket{seq: i, at: p.sched.At(i), measured: i >= p.first}, true
}

// due is how many measured requests the schedule holds.
func (p *openLoop) due() int64 { return int64(p.last - p.first) }

// closedLoop paces a closed-loop run: every worker sends its next request as soon as the
// last one ended, until end or until maxRequests were measured.
type closedLoop struct {
	measureFrom, end time.Time
	maxRequests      uint64 // 0: no limit
	measured, warm   atomic.Uint64
}

func (p *closedLoop) next(now time.Time) (ticket, bool) {
	if !now.Before(p.end) {
		return ticket{}, false
	}
	if now.Before(p.measureFrom) {
		return ticket{seq: p.warm.Add(1) - 1, at: now}, true
	}
	n := p.measured.Add(1)
	if p.maxRequests > 0 && n > p.maxRequests {
		return ticket{}, false
	}
	return ticket{seq: n - 1, at: now, measured: true}, true
}
