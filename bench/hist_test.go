package bench_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/segd/segd/bench"
)

// nearestRank is the reference quantile: the ceil(q*n)-th smallest of sorted values.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// within reports whether got is within 1 % of want, or 1 ns for tiny values.
func within(got, want time.Duration) bool {
	diff := math.Abs(float64(got - want))
	return diff <= 1 || diff <= 0.01*float64(want)
}

var quantiles = []float64{0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	tests := []struct {
		name string
		draw func() time.Duration
	}{
		{"log-uniform 1us to 60s", func() time.Duration {
			return time.Duration(math.Pow(10, 3+rng.Float64()*(math.Log10(60e9)-3)))
		}},
		{"exponential around 300us", func() time.Duration {
			return time.Duration(rng.ExpFloat64() * 300e3)
		}},
		{"nanoseconds", func() time.Duration { return time.Duration(rng.IntN(500)) }},
		{"one value", func() time.Duration { return 1234567 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h bench.Histogram
			vals := make([]time.Duration, 20000)
			for i := range vals {
				vals[i] = tt.draw()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) || h.Min() != vals[0] ||
				h.Max() != vals[len(vals)-1] {
				t.Fatalf("count %d min %v max %v, want %d %v %v", h.Count(), h.Min(),
					h.Max(), len(vals), vals[0], vals[len(vals)-1])
			}
			for _, q := range quantiles {
				got, want := h.Quantile(q), nearestRank(vals, q)
				if !within(got, want) {
					t.Errorf("Quantile(%v) = %v, want %v within 1%%", q, got, want)
				}
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b, whole bench.Histogram
	var vals []time.Duration
	for i := range 10000 {
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		if i%3 == 0 {
			d *= 50 // b gets a slower tail
			b.Record(d)
		} else {
			a.Record(d)
		}
		whole.Record(d)
		vals = append(vals, d)
	}
	var empty, copyA bench.Histogram
	a.Merge(&empty)
	copyA.Merge(&a)
	if copyA.Count() != a.Count() || copyA.Min() != a.Min() ||
		copyA.Quantile(0.5) != a.Quantile(0.5) {
		t.Error("merging into an empty histogram does not copy it")
	}
	a.Merge(&b)
	slices.Sort(vals)
	for _, q := range quantiles {
		if got, want := a.Quantile(q), whole.Quantile(q); got != want {
			t.Errorf("merged Quantile(%v) = %v, want %v as if recorded together", q, got, want)
		}
		if got, want := a.Quantile(q), nearestRank(vals, q); !within(got, want) {
			t.Errorf("merged Quantile(%v) = %v, want %v within 1%%", q, got, want)
		}
	}
	if a.Count() != whole.Count() || a.Min() != whole.Min() || a.Max() != whole.Max() ||
		a.Mean() != whole.Mean() {
		t.Errorf("merged count/min/max/mean %d %v %v %v, want %d %v %v %v", a.Count(),
			a.Min(), a.Max(), a.Mean(), whole.Count(), whole.Min(), whole.Max(), whole.Mean())
	}
}

func TestHistogramEdges(t *testing.T) {
	var h bench.Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Error("an empty histogram reports durations")
	}
	h.Record(-time.Second) // counts as zero
	h.Record(2 * time.Minute)
	if h.Min() != 0 || h.Max() != 2*time.Minute {
		t.Errorf("min %v max %v, want 0 and 2m", h.Min(), h.Max())
	}
	if q := h.Quantile(0.5); q != 0 {
		t.Errorf("median %v, want 0", q)
	}
	if q := h.Quantile(1); q != 2*time.Minute {
		t.Errorf("Quantile(1) = %v, want the exact maximum beyond MaxTracked", q)
	}
	h.Reset()
	if h.Count() != 0 {
		t.Error("Reset left counts")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h bench.Histogram
	d := 317 * time.Microsecond
	for b.Loop() {
		h.Record(d)
		d = d*7/5%time.Second + time.Microsecond
	}
}

func BenchmarkHistogramQuantile(b *testing.B) {
	var h bench.Histogram
	for i := range 100000 {
		h.Record(time.Duration(i) * 997)
	}
	for b.Loop() {
		h.Quantile(0.99)
	}
}
