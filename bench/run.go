package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Sender sends request bodies to the system under test and waits for the answers. Each
// worker of a run has its own, so a Sender is used by one goroutine at a time.
type Sender interface {
	// Send posts body, which it must neither change nor keep, and returns the response
	// status and body. The response body is valid until the next call. An error means that
	// no whole response arrived within timeout.
	Send(body []byte, timeout time.Duration) (status int, resp []byte, err error)
}

// Clock tells the time and waits for it. Tests give a run a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns once t has come, or early with ctx's error when ctx is done.
	SleepUntil(ctx context.Context, t time.Time) error
}

// Config is one load run. The zero value of each field means its default.
type Config struct {
	// Target names the system under test in the result, usually by its URL.
	Target string
	// NewSender returns the Sender of one worker; required.
	NewSender func() Sender
	// Bodies are the request bodies, sent in turn; required. They must not change while
	// the run lasts.
	Bodies [][]byte
	// Rate is the open-loop rate in requests per second; 0 runs a closed loop.
	Rate int
	// Connections is how many requests may be in flight at once: the closed loop's
	// workers, or the open loop's pool; default 32.
	Connections int
	// Duration is the measured window; default 10s.
	Duration time.Duration
	// Warmup comes before the measured window: its requests are sent and not counted.
	// Default none.
	Warmup time.Duration
	// MaxRequests ends the run once that many measured requests were sent; 0: no limit.
	MaxRequests int64
	// Timeout bounds each request, after which it counts as a timeout; default 1s.
	Timeout time.Duration
	// Marker marks a 2xx response as enriched when it holds these bytes and its request
	// did not; nil counts none.
	Marker []byte
	// Clock is the time source; nil means the real one.
	Clock Clock
	// Progress, if set, is called about once a second from another goroutine while the
	// run lasts.
	Progress func(Progress)
}

// Limits of a Config, far beyond what one machine can send, so schedule arithmetic never
// overflows.
const (
	MaxRate     = 10_000_000
	MaxDuration = 24 * time.Hour
)

// Progress is a snapshot of a run in flight.
type Progress struct {
	Elapsed time.Duration // since the run started, warm-up included
	Warmup  bool          // still in the warm-up
	Sent    int64         // requests sent, warm-up included
	Rate    float64       // requests sent per second since the last snapshot
	Errors  int64         // measured requests that failed
	P99     time.Duration // of the requests completed since the last snapshot
}

func (c *Config) setDefaults() {
	if c.Connections == 0 {
		c.Connections = 32
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NewSender == nil {
		errs = append(errs, errors.New("no sender"))
	}
	if len(c.Bodies) == 0 {
		errs = append(errs, errors.New("no request bodies"))
	}
	if c.Rate < 0 || c.Rate > MaxRate {
		errs = append(errs, fmt.Errorf("rate %d: want 0 to %d", c.Rate, MaxRate))
	}
	if c.Connections < 0 || c.Connections > 10_000 {
		errs = append(errs, fmt.Errorf("connections %d: want 1 to 10000", c.Connections))
	}
	if c.Duration < 0 || c.Warmup < 0 || c.Duration+c.Warmup > MaxDuration {
		errs = append(errs, fmt.Errorf("duration and warm-up: want at most %s together",
			MaxDuration))
	}
	if c.MaxRequests < 0 {
		errs = append(errs, errors.New("max-requests must not be negative"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// run is one load run in progress.
type run struct {
	cfg         Config
	pacer       pacer
	open        *openLoop // nil in a closed loop
	rec         *recorder
	sent        atomic.Int64 // requests handed to a Sender, warm-up included
	marked      []bool       // bodies that hold the marker before they are sent
	started     time.Time
	measureFrom time.Time
}

// Run sends load as cfg says and returns what it measured. It returns when the duration
// is over or MaxRequests were sent, and the requests in flight ended; or, with a partial
// result marked Interrupted, soon after ctx is done. Every goroutine it starts has ended
// when it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	r := newRun(cfg)
	stopProgress := r.startProgress()

	var wg sync.WaitGroup
	for range cfg.Connections {
		s := cfg.NewSender()
		wg.Go(func() { r.work(ctx, s) })
	}
	wg.Wait()
	stopProgress()
	return r.result(ctx.Err() != nil), nil
}

func newRun(cfg Config) *run {
	r := &run{cfg: cfg, rec: newRecorder(cfg.Duration), started: cfg.Clock.Now()}
	r.measureFrom = r.started.Add(cfg.Warmup)
	if cfg.Rate > 0 {
		r.open = newOpenLoop(Schedule{Start: r.started, Rate: cfg.Rate}, cfg.Warmup,
			cfg.Duration, cfg.MaxRequests)
		r.pacer = r.open
	} else {
		r.pacer = &closedLoop{measureFrom: r.measureFrom,
			end:         r.measureFrom.Add(cfg.Duration),
			maxRequests: uint64(cfg.MaxRequests)}
	}
	r.marked = make([]bool, len(cfg.Bodies))
	for i, b := range cfg.Bodies {
		r.marked[i] = cfg.Marker != nil && bytes.Contains(b, cfg.Marker)
	}
	return r
}

// connectBackoff is how long a closed-loop worker waits after a failed connection, so an
// absent target is not hammered by a busy loop.
const connectBackoff = 50 * time.Millisecond

// work sends requests with s until the pacer or ctx says stop.
func (r *run) work(ctx context.Context, s Sender) {
	clock := r.cfg.Clock
	for ctx.Err() == nil {
		t, ok := r.pacer.next(clock.Now())
		if !ok || clock.SleepUntil(ctx, t.at) != nil {
			return
		}
		k := int(t.seq % uint64(len(r.cfg.Bodies)))
		r.sent.Add(1)
		sent := clock.Now()
		status, resp, err := s.Send(r.cfg.Bodies[k], r.cfg.Timeout)
		done := clock.Now()
		c := classify(status, err)
		if t.measured {
			r.record(t, sent, done, c, k, resp)
		}
		if c == classConnect && r.open == nil {
			clock.SleepUntil(ctx, done.Add(connectBackoff))
		}
	}
}

func (r *run) record(t ticket, sent, done time.Time, c class, body int, resp []byte) {
	enriched := c == classOK && r.cfg.Marker != nil && !r.marked[body] &&
		bytes.Contains(resp, r.cfg.Marker)
	r.rec.add(sample{
		at:       t.at.Sub(r.measureFrom),
		latency:  done.Sub(t.at),
		lag:      sent.Sub(t.at),
		class:    c,
		enriched: enriched,
	}, done.Sub(r.measureFrom))
}

// startProgress starts the goroutine that calls cfg.Progress once a second, and returns
// the function that stops it and waits for it to end.
func (r *run) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	quit, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		r.reportProgress(quit)
	}()
	return func() {
		close(quit)
		<-ended
	}
}

func (r *run) reportProgress(quit <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastSent := time.Now(), int64(0)
	for {
		select {
		case <-quit:
			return
		case now := <-tick.C:
			errs, p99 := r.rec.tick()
			sent, clockNow := r.sent.Load(), r.cfg.Clock.Now()
			r.cfg.Progress(Progress{
				Elapsed: clockNow.Sub(r.started),
				Warmup:  clockNow.Before(r.measureFrom),
				Sent:    sent,
				Rate:    float64(sent-lastSent) / now.Sub(last).Seconds(),
				Errors:  errs,
				P99:     p99,
			})
			last, lastSent = now, sent
		}
	}
}

// realClock is the machine's clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
