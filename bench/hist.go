package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout. Below subCount nanoseconds every nanosecond has its own bucket; above,
// each power of two is cut into subCount equal buckets, so a bucket is never wider than
// 1/subCount (0.8 %) of the values it holds, and the middle of a bucket is within 0.4 % of
// any of them. The top bucket ends at MaxTracked.
const (
	subBits     = 7
	subCount    = 1 << subBits
	trackedBits = 36
	bucketCount = (trackedBits - subBits + 1) * subCount

	// MaxTracked is the largest latency a Histogram tells apart, about 68.7 s; longer ones
	// are counted in its top bucket, though Max still reports them exactly.
	MaxTracked = time.Duration(1<<trackedBits - 1)
)

// Histogram counts durations with a relative precision better than 1 % from 1 ns to
// MaxTracked. The zero value is an empty histogram ready to use; it takes 30 KiB. A
// Histogram is not safe for concurrent use.
type Histogram struct {
	counts   [bucketCount]uint64
	n        uint64
	sum      float64 // nanoseconds, for the mean
	min, max time.Duration
}

// Record counts one duration; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds every duration counted by o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is how many durations h holds.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the shortest duration recorded, exactly; 0 when h is empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the longest duration recorded, exactly; 0 when h is empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average duration; 0 when h is empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the duration at quantile q (0 to 1) by the nearest-rank rule: the
// ceil(q*n)-th shortest, or the shortest for q = 0. The answer is the middle of that
// duration's bucket, kept within Min and Max, so q = 1 gives Max exactly. It is 0 when h is
// empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketMiddle(i), h.min), h.max)
		}
	}
	return h.max
}

// bucketOf returns the bucket that counts d, which must not be negative.
func bucketOf(d time.Duration) int {
	v := uint64(min(d, MaxTracked))
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketMiddle returns the middle of bucket i, rounded down to a nanosecond.
func bucketMiddle(i int) time.Duration {
	if i < subCount {
		return time.Duration(i)
	}
	shift := i/subCount - 1
	low := uint64(i%subCount+subCount) << shift
	return time.Duration(low + (uint64(1)<<shift)/2)
}
