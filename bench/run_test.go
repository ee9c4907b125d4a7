package bench_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/segd/segd/bench"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told: SleepUntil jumps to the time asked for,
// and senders move it to say how long a request took. It keeps every SleepUntil target.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, t)
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// senderFunc is a Sender made of a function.
type senderFunc func(body []byte) (int, []byte, error)

func (f senderFunc) Send(body []byte, _ time.Duration) (int, []byte, error) { return f(body) }

// serviceTimes returns a sender whose request n (from 0) takes times(n) on the clock.
func serviceTimes(c *fakeClock, times func(n int) time.Duration) func() bench.Sender {
	var mu sync.Mutex
	n := 0
	return func() bench.Sender {
		return senderFunc(func(body []byte) (int, []byte, error) {
			mu.Lock()
			d := times(n)
			n++
			mu.Unlock()
			c.advance(d)
			return 200, body, nil
		})
	}
}

func TestScheduleAt(t *testing.T) {
	tests := []struct {
		rate int
		i    uint64
		want time.Duration
	}{
		{1, 0, 0},
		{1, 5, 5 * time.Second},
		{3, 1, 333_333_333},
		{3, 2, 666_666_666},
		{3, 3, time.Second},
		{7, 7_000_000, 1_000_000 * time.Second}, // no drift after millions of requests
		{1000, 1, time.Millisecond},
		{bench.MaxRate, bench.MaxRate * 3600, time.Hour},
	}
	for _, tt := range tests {
		s := bench.Schedule{Start: epoch, Rate: tt.rate}
		if got := s.At(tt.i).Sub(epoch); got != tt.want {
			t.Errorf("rate %d: At(%d) = start+%v, want start+%v", tt.rate, tt.i, got, tt.want)
		}
	}
}

func TestScheduleBefore(t *testing.T) {
	for _, rate := range []int{1, 3, 7, 1000, 12345} {
		s := bench.Schedule{Start: epoch, Rate: rate}
		for _, d := range []time.Duration{0, 1, time.Millisecond, 999 * time.Millisecond,
			time.Second, 10*time.Second + 1} {
			n := s.Before(d)
			end := epoch.Add(d)
			if n > 0 && !s.At(n-1).Before(end) || s.At(n).Before(end) {
				t.Errorf("rate %d: Before(%v) = %d, but At(%d) = %v and At(%d) = %v", rate, d,
					n, n-1, s.At(n-1).Sub(epoch), n, s.At(n).Sub(epoch))
			}
		}
	}
}

func TestOpenLoopSendsAtIntendedTimes(t *testing.T) {
	clock := newFakeClock()
	res, err := bench.Run(context.Background(), bench.Config{
		NewSender:   serviceTimes(clock, func(int) time.Duration { return 0 }),
		Bodies:      [][]byte{[]byte(`{}`)},
		Rate:        3,
		Connections: 1,
		Duration:    10 * time.Second,
		Clock:       clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || res.Mode != "open" {
		t.Fatalf("%d requests in mode %s, want 30 in open", res.Requests, res.Mode)
	}
	sched := bench.Schedule{Start: epoch, Rate: 3}
	for i, at := range clock.sleeps {
		if want := sched.At(uint64(i)); !at.Equal(want) {
			t.Errorf("request %d waited for start+%v, want start+%v", i, at.Sub(epoch),
				want.Sub(epoch))
		}
	}
	if len(clock.sleeps) != 30 {
		t.Errorf("%d waits, want 30", len(clock.sleeps))
	}
}

// TestOpenLoopChargesStall stalls the target for 500ms on one request: the requests meant
// to leave during the stall are charged from their intended times, as a caller sending at
// that rate would have waited.
func TestOpenLoopChargesStall(t *testing.T) {
	const rate, n, stallAt = 100, 100, 10
	service := func(k int) time.Duration {
		if k == stallAt {
			return 500 * time.Millisecond
		}
		return time.Millisecond
	}
	clock := newFakeClock()
	res, err := bench.Run(context.Background(), bench.Config{
		NewSender: serviceTimes(clock, service), Bodies: [][]byte{[]byte(`{}`)},
		Rate: rate, Connections: 1, Duration: time.Second, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}

	// One connection: request k leaves at its intended time or when k-1 ends.
	var want []time.Duration
	var free time.Duration
	for k := range n {
		at := time.Duration(k) * time.Second / rate
		done := max(at, free) + service(k)
		want = append(want, done-at)
		free = done
	}
	slices.Sort(want)
	if res.Requests != n || res.Errors.Total() != 0 {
		t.Fatalf("%d requests, %d errors; want %d and none", res.Requests,
			res.Errors.Total(), n)
	}
	checkLatency(t, "p50", res.Latency.P50, nearestRank(want, 0.5))
	checkLatency(t, "p90", res.Latency.P90, nearestRank(want, 0.9))
	checkLatency(t, "max", res.Latency.Max, want[n-1])
	if res.Latency.P50 < 10_000 {
		t.Errorf("p50 %vus: the requests queued behind the stall were not charged",
			res.Latency.P50)
	}
}

func checkLatency(t *testing.T, name string, gotUS float64, want time.Duration) {
	t.Helper()
	if got := time.Duration(gotUS * 1e3); !within(got, want) {
		t.Errorf("%s = %v, want %v within 1%%", name, got, want)
	}
}

// TestOpenLoopUnsent stalls the target past the end of the run: the requests that fell
// due and never left are reported as unsent.
func TestOpenLoopUnsent(t *testing.T) {
	clock := newFakeClock()
	service := func(k int) time.Duration {
		if k == 10 {
			return 2 * time.Second
		}
		return time.Millisecond
	}
	res, err := bench.Run(context.Background(), bench.Config{
		NewSender: serviceTimes(clock, service), Bodies: [][]byte{[]byte(`{}`)},
		Rate: 100, Connections: 1, Duration: time.Second, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 11 || res.Errors.Unsent != 89 {
		t.Errorf("%d requests, %d unsent; want 11 and 89", res.Requests, res.Errors.Unsent)
	}
}

func TestWarmupNotMeasured(t *testing.T) {
	clock := newFakeClock()
	res, err := bench.Run(context.Background(), bench.Config{
		NewSender: serviceTimes(clock, func(int) time.Duration { return time.Millisecond }),
		Bodies:    [][]byte{[]byte(`{}`)},
		Rate:      100, Connections: 4, Warmup: 500 * time.Millisecond,
		Duration: 200 * time.Millisecond, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 || len(res.Timeline) != 1 || res.Timeline[0].Requests != 20 {
		t.Errorf("%d requests, timeline %+v; want 20 in one interval", res.Requests,
			res.Timeline)
	}
}

func TestClosedLoopMaxRequests(t *testing.T) {
	clock := newFakeClock()
	var mu sync.Mutex
	seen := map[string]int{}
	newSender := func() bench.Sender {
		return senderFunc(func(body []byte) (int, []byte, error) {
			mu.Lock()
			seen[string(body)]++
			mu.Unlock()
			clock.advance(time.Microsecond)
			return 200, nil, nil
		})
	}
	bodies := [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}
	res, err := bench.Run(context.Background(), bench.Config{NewSender: newSender,
		Bodies: bodies, Connections: 8, MaxRequests: 1000, Duration: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "closed" || res.Requests != 1000 || res.OK != 1000 {
		t.Errorf("mode %s, %d requests, %d ok; want closed, 1000, 1000", res.Mode,
			res.Requests, res.OK)
	}
	if seen[`{"id":"a"}`] != 500 || seen[`{"id":"b"}`] != 500 {
		t.Errorf("bodies sent %v, want each 500 times", seen)
	}
}

func TestClosedLoopStopsAtDuration(t *testing.T) {
	clock := newFakeClock()
	res, err := bench.Run(context.Background(), bench.Config{
		NewSender: serviceTimes(clock, func(int) time.Duration { return 10 * time.Millisecond }),
		Bodies:    [][]byte{[]byte(`{}`)}, Connections: 1, Duration: time.Second, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 {
		t.Errorf("%d requests, want 100 of 10ms in 1s", res.Requests)
	}
}

func TestErrorClasses(t *testing.T) {
	outcomes := []struct {
		status int
		err    error
	}{
		{200, nil},
		{204, nil},
		{404, nil},
		{503, nil},
		{302, nil},
		{0, fasthttp.ErrTimeout},
		{0, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
		{0, fasthttp.ErrDialTimeout},
		{0, errors.New("connection reset")},
	}
	clock := newFakeClock()
	n := 0
	newSender := func() bench.Sender {
		return senderFunc(func([]byte) (int, []byte, error) {
			o := outcomes[n%len(outcomes)]
			n++
			clock.advance(time.Millisecond)
			return o.status, nil, o.err
		})
	}
	res, err := bench.Run(context.Background(), bench.Config{NewSender: newSender,
		Bodies: [][]byte{[]byte(`{}`)}, Rate: 1000, Connections: 1,
		MaxRequests: int64(len(outcomes)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	want := bench.Errors{Connect: 2, Timeout: 1, Status4xx: 1, Status5xx: 1, Other: 2}
	if res.Errors != want || res.OK != 2 || res.Requests != int64(len(outcomes)) {
		t.Errorf("errors %+v, ok %d, requests %d; want %+v, 2, %d", res.Errors, res.OK,
			res.Requests, want, len(outcomes))
	}
}

func TestEnrichedShare(t *testing.T) {
	clock := newFakeClock()
	marker := []byte(`{"id":"segd"`)
	already := []byte(`{"user":{"data":[{"id":"segd","segment":[]}]}}`)
	newSender := func() bench.Sender {
		return senderFunc(func(body []byte) (int, []byte, error) {
			clock.advance(time.Millisecond)
			if string(body) == `{"user":{"id":"hit"}}` {
				return 200, []byte(`{"user":{"data":[{"id":"segd","segment":[{"id":"1"}]}]}}`),
					nil
			}
			return 200, body, nil // misses, and the request that had segd data before
		})
	}
	bodies := [][]byte{[]byte(`{"user":{"id":"hit"}}`), []byte(`{"user":{"id":"miss"}}`),
		already, []byte(`{"user":{"id":"hit"}}`)}
	res, err := bench.Run(context.Background(), bench.Config{NewSender: newSender,
		Bodies: bodies, Connections: 1, MaxRequests: 8, Marker: marker, Clock: clock,
		Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Enriched != 4 || res.EnrichedShare != 0.5 {
		t.Errorf("enriched %d (%v), want 4 (0.5)", res.Enriched, res.EnrichedShare)
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := newFakeClock()
	n := 0
	newSender := func() bench.Sender {
		return senderFunc(func([]byte) (int, []byte, error) {
			if n++; n == 5 {
				cancel()
			}
			clock.advance(time.Millisecond)
			return 200, nil, nil
		})
	}
	res, err := bench.Run(ctx, bench.Config{NewSender: newSender,
		Bodies: [][]byte{[]byte(`{}`)}, Rate: 10, Connections: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Requests != 5 || res.Errors.Unsent != 0 {
		t.Errorf("interrupted %v, %d requests, %d unsent; want true, 5, 0",
			res.Interrupted, res.Requests, res.Errors.Unsent)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := bench.Run(context.Background(), bench.Config{Rate: -1, Connections: -2,
		Duration: -time.Second, MaxRequests: -1})
	if err == nil {
		t.Fatal("Run accepted a bad config")
	}
	for _, want := range []string{"sender", "bodies", "rate", "connections", "duration",
		"max-requests"} {
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
