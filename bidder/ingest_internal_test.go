package bidder

import (
	"testing"
	"time"
)

// TestLineBucket walks a bucket of 100 lines a second through a clock of its own: a full
// second of lines is free, an overdraft waits for its repayment, concurrent takers queue
// behind each other's debt, and idle time refills at most one second's worth.
func TestLineBucket(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &lineBucket{rate: 100, avail: 100, last: t0}
	for i, step := range []struct {
		at   time.Duration
		n    int
		wait time.Duration
	}{
		{0, 60, 0},                      // 40 left
		{0, 40, 0},                      // empty
		{0, 50, 500 * time.Millisecond}, // 50 in debt
		{0, 50, time.Second},            // behind the first debt
		{time.Second, 0, 0},             // repaid by 100 a second
		{time.Second, 10, 100 * time.Millisecond},           // nothing saved up
		{time.Hour, 100, 0},                                 // refilled, to one second
		{time.Hour, 1, 10 * time.Millisecond},               // and no more
		{time.Hour - time.Minute, 1, 20 * time.Millisecond}, // a clock going back adds nothing
	} {
		if got := b.take(t0.Add(step.at), step.n); got != step.wait {
			t.Errorf("step %d: take(%s, %d) waits %s, want %s", i, step.at, step.n, got, step.wait)
		}
	}

	// A stream that gives up returns what it took: the next taker does not wait for it.
	b.take(t0.Add(2*time.Hour), 100)
	b.take(t0.Add(2*time.Hour), 5000)
	b.refund(5000)
	if got := b.take(t0.Add(2*time.Hour), 10); got != 100*time.Millisecond {
		t.Errorf("after a refund: waits %s, want 100ms", got)
	}
	b.refund(1 << 20)
	if got := b.take(t0.Add(2*time.Hour), 101); got != 10*time.Millisecond {
		t.Errorf("a refund filled the bucket past one second: waits %s, want 10ms", got)
	}
}

// TestIngestLimiterStreams checks the stream slots: as many as configured, then none until
// one is released; and no limit at all when none is configured.
func TestIngestLimiterStreams(t *testing.T) {
	l := newIngestLimiter(2, 0)
	if !l.acquire() || !l.acquire() {
		t.Fatal("the first two streams were refused")
	}
	if l.acquire() {
		t.Fatal("a third stream was let in")
	}
	l.release()
	if !l.acquire() {
		t.Fatal("a released slot was not reused")
	}
	unlimited := newIngestLimiter(0, 0)
	for range 100 {
		if !unlimited.acquire() {
			t.Fatal("an unlimited limiter refused a stream")
		}
	}
	if unlimited.bucket != nil {
		t.Error("no rate was set, yet reads are paced")
	}
}
