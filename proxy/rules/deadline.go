package rules

import "time"

// A request's rules run against what its client sent, and a hostile
// client can make a hostile-enough rule set slow: RE2 is linear, but
// 20,000 patterns of a -m reg -f list against a 15 KB header took 11.5 s
// (measured), against 1 MiB over a minute. The proxy gives each request's
// rule evaluation a deadline (Txn.SetDeadline); the matchers count the
// work they do and read the clock once enough of it has gathered, so
// that the check costs a counter per pattern and a clock read per
// workChunk, and allocates nothing. Past the deadline every matcher says
// no and Program.Run stops with Timeout.

// workChunk is how much work is done between two reads of the clock, in
// bytes scanned (plus patternCost per pattern or ACL term): a regular
// expression scans tens to hundreds of MB/s, so the deadline is noticed
// within a few milliseconds plus the one pattern being matched.
const workChunk = 256 << 10

// patternCost is what one pattern or one ACL term counts beyond the
// bytes it scans: a list of many patterns against a short value is also
// work.
const patternCost = 64

// SetDeadline gives the evaluation of t's rules a deadline; the zero
// time is none.
func (t *Txn) SetDeadline(d time.Time) {
	t.deadline, t.work, t.expired = d, 0, false
}

// Expired reports whether the rules ran past their deadline: what they
// computed since is incomplete, and the request is answered with an
// error.
func (t *Txn) Expired() bool { return t.expired }

// charge counts n units of work and reports whether the deadline has
// passed (then the caller stops).
func (t *Txn) charge(n int) bool {
	t.work += n
	if t.work >= workChunk {
		t.tick()
	}
	return t.expired
}

// tick reads the clock, once per workChunk.
//
//go:noinline
func (t *Txn) tick() {
	t.work = 0
	if !t.deadline.IsZero() && time.Now().After(t.deadline) {
		t.expired = true
	}
}
