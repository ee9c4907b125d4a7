package bench

import (
	"testing"
	"time"
)

// TestBucketPrecision walks every bucket boundary: buckets are contiguous, and the middle
// of a bucket is within 1/256 of every value it counts.
func TestBucketPrecision(t *testing.T) {
	prev := -1
	for v := time.Duration(0); v <= MaxTracked; v += max(v/1000, 1) {
		b := bucketOf(v)
		if b < prev || b > prev+1 && prev >= 0 && v < 2*subCount {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		mid := bucketMiddle(b)
		if diff := (mid - v).Abs(); diff*256 > v && diff > 0 {
			t.Fatalf("bucketOf(%d) = %d, middle %d: off by more than 1/256", v, b, mid)
		}
	}
	if got := bucketOf(MaxTracked); got != bucketCount-1 {
		t.Errorf("bucketOf(MaxTracked) = %d, want the last bucket %d", got, bucketCount-1)
	}
	if got := bucketOf(time.Hour); got != bucketCount-1 {
		t.Errorf("bucketOf(1h) = %d, want the last bucket", got)
	}
}
