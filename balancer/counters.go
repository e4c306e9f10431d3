package balancer

import (
	"sync/atomic"
	"time"
)

// Counters are the traffic counters of a frontend or backend. The proxy
// keeps one per name across reloads, as the Registry keeps server state,
// and updates them on the data path with atomics only; stats read them.
type Counters struct {
	// CurConns and TotalConns count client connections on a frontend; on
	// a backend, sessions routed to it: L4 connections, or L7 requests
	// (streams, as HAProxy counts them), waiting in the queue included.
	CurConns   atomic.Int64
	TotalConns atomic.Uint64
	BytesIn    atomic.Uint64 // client to server
	BytesOut   atomic.Uint64 // server to client
	Requests   atomic.Uint64 // HTTP requests
	Denied     atomic.Uint64 // requests or connections answered with no server (503)
	// Refused by rules, as HAProxy's dreq, dresp, dcon and dses: requests
	// (http-request deny, tarpit), responses (http-response deny),
	// connections (tcp-request connection reject) and sessions
	// (tcp-request session and content reject).
	DeniedReq, DeniedResp, DeniedConn, DeniedSess atomic.Uint64
	Errors                                        atomic.Uint64 // connections or requests that ended in an error
	HTTPStatus                                    [6]atomic.Uint64
	// TLS handshakes: completed (HAProxy's ssl_sess), of those resumed
	// from a ticket (ssl_reused_sess), and failed (ssl_failed_handshake).
	TLSSessions, TLSReused, TLSFailed atomic.Uint64
	// InternalErrors counts connections or requests that ended in a
	// panic halo recovered (HAProxy's eint: "should never happen").
	InternalErrors atomic.Uint64
	// MaxConns is the most CurConns seen (HAProxy's smax), MaxQueued the
	// most sessions seen waiting for any server of a backend (qmax).
	// "clear counters" resets them.
	MaxConns  Max
	MaxQueued Max
}

// Clear resets the counters as "clear counters all" does: everything but
// the current sessions, which are a gauge.
func (c *Counters) Clear() {
	for _, u := range []*atomic.Uint64{&c.TotalConns, &c.BytesIn, &c.BytesOut, &c.Requests, &c.Denied, &c.DeniedReq, &c.DeniedResp, &c.DeniedConn, &c.DeniedSess, &c.Errors, &c.TLSSessions, &c.TLSReused, &c.TLSFailed, &c.InternalErrors} {
		u.Store(0)
	}
	for i := range c.HTTPStatus {
		c.HTTPStatus[i].Store(0)
	}
	c.ClearMax()
}

// ClearMax resets the maxima, as "clear counters" does.
func (c *Counters) ClearMax() {
	c.MaxConns.Reset(c.CurConns.Load())
	c.MaxQueued.Reset(0)
}

// Max is the largest value a gauge reached. Note is on the data path: it
// costs a load, and a store only on a new maximum.
type Max struct{ v atomic.Int64 }

// Note records n if it is a new maximum.
func (m *Max) Note(n int64) {
	for {
		cur := m.v.Load()
		if n <= cur || m.v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Load returns the maximum.
func (m *Max) Load() int64 { return m.v.Load() }

// Reset starts the maximum again from n.
func (m *Max) Reset(n int64) { m.v.Store(n) }

// TimingKind names one of the times halo measures for each request or
// connection a server handles, as HAProxy's Tw, Tc, Tr and Tt.
type TimingKind int

// The timings, as HAProxy's log fields and show stat's qtime, ctime, rtime
// and ttime: waiting in the queue, connecting, waiting for the response
// head after the request was sent, and the whole session.
const (
	TimeQueue TimingKind = iota
	TimeConnect
	TimeResponse
	TimeTotal
	numTimings
)

// TimingBuckets are the upper bounds of the latency histograms, in
// seconds, fixed so that every server's histogram has the same buckets
// (as Prometheus expects) and recording needs no search beyond a few
// compares. A value at or below the first bound lands in no bucket: the
// first bucket is the observations count minus all the others, so the
// fast, common case writes nothing but the count and the sum.
//
// Eight buckets from 1 ms to 30 s, about a factor of four apart: enough to
// tell a fast API call from a slow one and a stuck upload from both, to
// draw the usual latency objectives (100 ms, 250 ms, 1 s), and few enough
// that a scrape of thousands of servers stays small.
var TimingBuckets = [...]float64{0.001, 0.005, 0.025, 0.1, 0.25, 1, 5, 30}

// timingBounds are TimingBuckets in nanoseconds.
var timingBounds = func() (b [len(TimingBuckets)]int64) {
	for i, s := range TimingBuckets {
		b[i] = int64(s * float64(time.Second))
	}
	return b
}()

// Timings are fixed-bucket histograms of a server's times, one per
// TimingKind, written lock-free and allocation-free by the data path and
// read by stats (Prometheus histograms, show stat's averages and maxima).
// They are the one thing the data path writes for stats that it did not
// before: a few cache lines of the server's, per request.
type Timings struct {
	// Count is how many sessions were timed; every kind has one
	// observation per session.
	Count atomic.Uint64
	kinds [numTimings]timingHistogram
}

type timingHistogram struct {
	sum atomic.Int64 // nanoseconds
	max Max          // nanoseconds
	// above[i] counts observations above TimingBuckets[i] and at most
	// TimingBuckets[i+1] (the last one: above the last bound).
	above [len(TimingBuckets)]atomic.Uint64
}

// Observe records one session's times. Queue and connect times are zero
// for most sessions (a free server, a reused connection), and then cost
// nothing.
func (t *Timings) Observe(queue, connect, response, total time.Duration) {
	t.kinds[TimeQueue].observe(int64(queue))
	t.kinds[TimeConnect].observe(int64(connect))
	t.kinds[TimeResponse].observe(int64(response))
	t.kinds[TimeTotal].observe(int64(total))
	t.Count.Add(1)
}

func (h *timingHistogram) observe(ns int64) {
	if ns <= 0 {
		return
	}
	h.sum.Add(ns)
	h.max.Note(ns)
	if ns <= timingBounds[0] {
		return
	}
	i := 1
	for i < len(timingBounds) && ns > timingBounds[i] {
		i++
	}
	h.above[i-1].Add(1)
}

// Histogram is one kind of timing read at once: the cumulative count at or
// below each of TimingBuckets, the total count and the sum in seconds.
type Histogram struct {
	Cumulative [len(TimingBuckets)]uint64
	Count      uint64
	Sum        float64
	Max        time.Duration
}

// Read returns the histogram of kind k. The data path may add to it while
// it is read; the counts are made consistent (never decreasing across
// buckets, none above the total).
func (t *Timings) Read(k TimingKind) Histogram {
	h := &t.kinds[k]
	var out Histogram
	var above [len(TimingBuckets)]uint64
	var inBuckets uint64
	for i := range h.above {
		above[i] = h.above[i].Load()
		inBuckets += above[i]
	}
	out.Count = max(t.Count.Load(), inBuckets)
	out.Sum = float64(h.sum.Load()) / float64(time.Second)
	out.Max = time.Duration(h.max.Load())
	// Cumulative at bound i: the total minus what lies above bound i.
	rest := inBuckets
	for i := range out.Cumulative {
		out.Cumulative[i] = out.Count - rest
		rest -= above[i]
	}
	return out
}

// Add sums another server's timings into h (a backend's histogram is the
// sum of its servers').
func (h *Histogram) Add(o Histogram) {
	for i := range h.Cumulative {
		h.Cumulative[i] += o.Cumulative[i]
	}
	h.Count += o.Count
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
}

// Clear resets the timings ("clear counters all"); ClearMax only the
// maxima ("clear counters").
func (t *Timings) Clear() {
	t.Count.Store(0)
	for k := range t.kinds {
		h := &t.kinds[k]
		h.sum.Store(0)
		for i := range h.above {
			h.above[i].Store(0)
		}
	}
	t.ClearMax()
}

// ClearMax resets the maxima of the timings.
func (t *Timings) ClearMax() {
	for k := range t.kinds {
		t.kinds[k].max.Reset(0)
	}
}
