package bidder

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"
)

// ingestLimiter bounds the admin API's write streams, imports and event batches: how many
// run at once, and how many lines a second they read together, so that a bulk load cannot
// take the CPU and the disk from the bid path. Safe for concurrent use.
type ingestLimiter struct {
	streams chan struct{} // a slot per stream that may run; nil: no limit
	bucket  *lineBucket   // nil: no rate limit
}

func newIngestLimiter(maxStreams, linesPerSecond int) *ingestLimiter {
	l := &ingestLimiter{}
	if maxStreams > 0 {
		l.streams = make(chan struct{}, maxStreams)
	}
	if linesPerSecond > 0 {
		l.bucket = &lineBucket{rate: float64(linesPerSecond), avail: float64(linesPerSecond),
			last: time.Now()}
	}
	return l
}

// acquire takes a stream slot and reports whether one was free; release gives it back.
func (l *ingestLimiter) acquire() bool {
	if l.streams == nil {
		return true
	}
	select {
	case l.streams <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *ingestLimiter) release() {
	if l.streams != nil {
		<-l.streams
	}
}

// reader returns r paced to the line rate, or r itself without one. A read returns only
// once its lines are paid for, so the store parses no faster than the rate.
func (l *ingestLimiter) reader(ctx context.Context, r io.Reader) io.Reader {
	if l.bucket == nil {
		return r
	}
	return &pacedReader{ctx: ctx, r: r, b: l.bucket}
}

type pacedReader struct {
	ctx context.Context
	r   io.Reader
	b   *lineBucket
}

func (p *pacedReader) Read(buf []byte) (int, error) {
	n, err := p.r.Read(buf)
	if lines := bytes.Count(buf[:n], newline); lines > 0 {
		if d := p.b.take(time.Now(), lines); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-p.ctx.Done():
				p.b.refund(lines) // never to be read: other streams must not pay for them
				return n, p.ctx.Err()
			case <-t.C:
			}
		}
	}
	return n, err
}

var newline = []byte{'\n'}

// lineBucket is a token bucket of lines that holds at most one second of them. Takers may
// overdraw it; each waits until its own debt is repaid, so streams together keep to the
// rate. Safe for concurrent use.
type lineBucket struct {
	mu    sync.Mutex
	rate  float64 // lines per second
	avail float64 // lines that may be read now; negative while in debt
	last  time.Time
}

// take withdraws n lines at now and returns how long the taker must wait before using
// them: zero while the bucket covers them.
func (b *lineBucket) take(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.avail = min(b.rate, b.avail+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.avail -= float64(n)
	if b.avail >= 0 {
		return 0
	}
	return time.Duration(-b.avail / b.rate * float64(time.Second))
}

// refund returns n lines taken but not used, never filling the bucket past one second.
func (b *lineBucket) refund(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.avail = min(b.rate, b.avail+float64(n))
}
