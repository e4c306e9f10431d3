package bench

import (
	"math"
	"slices"
)

// Median is the middle value of xs (the mean of the two middle ones for an
// even count); NaN for none. Medians, not means, so that one run disturbed
// by the machine does not move the figure. NaN values are left out: they
// are pair ratios of two zeros (two proxies that lost nothing in a pair of
// runs), which say nothing about the ratio, and sorted in they would make
// the median NaN.
func Median(xs []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// PairRatios divides a[i] by b[i] for each run pair. Runs are taken in
// alternation (halo, haproxy, halo, …), so each pair saw nearly the same
// machine and the ratio cancels its drift.
func PairRatios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	r := make([]float64, 0, n)
	for i := range n {
		if b[i] == 0 {
			r = append(r, math.NaN())
			continue
		}
		r = append(r, a[i]/b[i])
	}
	return r
}
