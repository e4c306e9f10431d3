package stats

import (
	"math"
	"sync"
	"time"

	"github.com/halo-lb/halo/balancer"
)

// sampler turns the counters the data path keeps into what HAProxy derives
// from them with per-event work: rates per second and their maxima, the
// averages of the last 1,024 timings, and the time since the last session.
// It reads every counter once a second, so the data path pays nothing for
// any of it. Rates are exact over each whole second; the averages are
// HAProxy's sliding average (each new value weighs 1/1024) applied to a
// second's values at once.
type sampler struct {
	mu      sync.Mutex
	entries map[sampleKey]*sample
	now     func() time.Time
}

// sampleKey names what a sample follows: a frontend, a backend or a
// server.
type sampleKey struct {
	kind          ObjType
	proxy, server string
}

type sample struct {
	seen bool // read at least once (the first read sets the baseline)
	// Sessions (a frontend's connections) and, on a frontend, requests.
	sessions, requests rate
	lastSession        time.Time // zero: none since halo started
	// Timings, for servers: the count and sums last read, and the
	// sliding averages in seconds.
	timedCount uint64
	timedSums  [4]float64
	averages   [4]float64
	touched    bool // still in the configuration at the last tick
}

type rate struct {
	last    uint64
	perSec  uint64
	maxSec  uint64
	started bool
}

func (r *rate) update(total uint64) {
	if r.started && total >= r.last {
		r.perSec = total - r.last
		r.maxSec = max(r.maxSec, r.perSec)
	}
	r.last, r.started = total, true
}

func newSampler() *sampler {
	return &sampler{entries: map[sampleKey]*sample{}, now: time.Now}
}

// averageWindow is how many values HAProxy's averages span.
const averageWindow = 1024

// tick reads every counter of the live configuration once.
func (s *sampler) tick(src Source) {
	cfg := src.Config()
	if cfg == nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		e.touched = false
	}
	for _, fe := range cfg.Frontends {
		if c := src.FrontendCounters(fe.Name); c != nil {
			e := s.entry(sampleKey{ObjFrontend, fe.Name, ""})
			e.sessions.update(c.TotalConns.Load())
			e.requests.update(c.Requests.Load())
		}
	}
	for _, be := range cfg.Backends {
		if c := src.BackendCounters(be.Name); c != nil {
			e := s.entry(sampleKey{ObjBackend, be.Name, ""})
			e.noteSessions(c.TotalConns.Load(), now)
		}
		for i := range be.Servers {
			st := src.Server(be.Name, be.Servers[i].Name)
			if st == nil {
				continue
			}
			e := s.entry(sampleKey{ObjServer, be.Name, be.Servers[i].Name})
			e.noteSessions(st.TotalConns.Load(), now)
			e.noteTimings(&st.Timings)
		}
	}
	for k, e := range s.entries {
		if !e.touched {
			delete(s.entries, k)
		}
	}
}

func (s *sampler) entry(k sampleKey) *sample {
	e := s.entries[k]
	if e == nil {
		e = &sample{}
		s.entries[k] = e
	}
	e.touched = true
	return e
}

func (e *sample) noteSessions(total uint64, now time.Time) {
	if e.seen && total != e.sessions.last {
		e.lastSession = now
	}
	e.sessions.update(total)
	e.seen = true
}

// noteTimings folds the timings since the last tick into the averages: n
// values of mean m move an average a to m + (a-m)·(1-1/1024)^n, which is
// what adding them one at a time to HAProxy's sliding average does.
func (e *sample) noteTimings(t *balancer.Timings) {
	var sums [4]float64
	var count uint64
	for k := range sums {
		h := t.Read(balancer.TimingKind(k))
		sums[k] = h.Sum
		count = h.Count
	}
	if count > e.timedCount {
		n := float64(count - e.timedCount)
		keep := math.Pow(1-1.0/averageWindow, n)
		for k := range sums {
			mean := (sums[k] - e.timedSums[k]) / n
			if e.timedCount == 0 && e.averages[k] == 0 {
				e.averages[k] = mean // the first values: nothing to slide from
				continue
			}
			e.averages[k] = mean + (e.averages[k]-mean)*keep
		}
	}
	e.timedCount, e.timedSums = count, sums
}

// view is what a row needs from its sample.
type view struct {
	sessRate, sessMax, reqRate, reqMax uint64
	lastSession                        time.Time
	averages                           [4]float64
	known                              bool
}

func (s *sampler) view(k sampleKey) view {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[k]
	if e == nil {
		return view{}
	}
	return view{e.sessions.perSec, e.sessions.maxSec, e.requests.perSec, e.requests.maxSec, e.lastSession, e.averages, true}
}

// clearMax resets the rate maxima ("clear counters").
func (s *sampler) clearMax() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		e.sessions.maxSec, e.requests.maxSec = e.sessions.perSec, e.requests.perSec
	}
}

// clearAll forgets everything derived ("clear counters all"): the counters
// restart from zero, so the baselines must too.
func (s *sampler) clearAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
}

// run ticks every second until stop is closed.
func (s *sampler) run(src Source, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.tick(src)
	for {
		select {
		case <-t.C:
			s.tick(src)
		case <-stop:
			return
		}
	}
}
