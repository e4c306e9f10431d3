package bench

import (
	"math"
	"slices"
)

// Median is the middle value of xs (the mean of the two middle ones for an
// even count); NaN for none. Medians, not means, so that one run disturbed
// by the machine does not move the figure.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
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
