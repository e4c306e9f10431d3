package sticktable

import "testing"

// HAProxy's sliding window over a 10s period, step by step: the numbers
// read_freq_ctr_period gives for the same events at the same times.
func TestRateSlidingWindow(t *testing.T) {
	const period = 10000
	w := make([]uint64, rateWords)
	steps := []struct {
		at   int64
		add  uint64 // events counted at at, before reading
		want uint64
	}{
		{1000, 3, 3},    // first events open a period at 1000
		{5000, 0, 3},    // inside it
		{11000, 2, 5},   // a new period: 3 before, 2 now, the old one still whole
		{16000, 0, 3},   // half of the old period left: 3*0.5 + 2 = 3.5
		{21000, 0, 2},   // the old period no longer counts
		{26000, 0, 1},   // no new events: the last period, half gone: 2*0.5
		{31001, 0, 0},   // gone
		{31001, 1, 1},   // more than two periods without events: a period starts at 31001
		{46000, 0, 1},   // a single past event is reported whole (HAProxy's anti-flapping)
		{51002, 0, 0},   // and then gone
		{60000, 7, 7},   // fresh again
		{69999, 1, 8},   // still the same period
		{70000, 0, 8},   // 8 past, nothing current: 8*1
		{72500, 4, 10},  // 8*0.75 + 4
		{95000, 10, 10}, // two periods passed: the past is dropped
	}
	for _, s := range steps {
		if s.add > 0 {
			rateAdd(w, period, s.at, s.add)
		}
		if got := rateRead(w, period, s.at); got != s.want {
			t.Errorf("at %d (after adding %d): rate %d, want %d (words %v)", s.at, s.add, got, s.want, w)
		}
	}
	if got := rateRead(make([]uint64, rateWords), period, 5); got != 0 {
		t.Errorf("a rate never counted reads %d", got)
	}
	// A clock behind the period's start (a test's, or a set value from
	// the future) reads no more than a whole period.
	rateAdd(w, period, 200000, 5)
	if got := rateRead(w, period, 100000); got != 5 {
		t.Errorf("read before the start: %d", got)
	}
}
