// Package health owns active and passive health checking: checkers that
// probe a target once, monitors that schedule probes per server, apply
// HAProxy's rise/fall hysteresis and report only UP/DOWN edges, and agents
// (agent-check). A monitor lives as long as its caller keeps it; one that
// replaces another carries its counter and last result (StartAfter). It
// knows nothing of pools or balancing: verdicts go to a StatusSetter that
// the caller supplies.
package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/panics"
	"go.uber.org/zap"
)

// StatusSetter receives health edges. balancer.Server implements it.
type StatusSetter interface {
	SetHealthy(up bool)
}

// Status is a check result code, spelled as HAProxy's check_status.
type Status string

// The check statuses a TCP connect check can produce.
const (
	L4OK   Status = "L4OK"   // the connection was accepted
	L4TOUT Status = "L4TOUT" // no answer within the check timeout
	L4CON  Status = "L4CON"  // refused, unreachable or reset
)

// SOCKERR is HAProxy's status for a check that failed in the proxy rather
// than at the server; halo's checks get it when they panic.
const SOCKERR Status = "SOCKERR"

// errCheckPanicked is the error of a check that panicked (Monitor.check).
var errCheckPanicked = errors.New("the check panicked")

// Result is the outcome of one probe.
type Result struct {
	Status   Status
	OK       bool
	Err      error
	Duration time.Duration
	// Desc is the check's description, as HAProxy's check_desc (for
	// example "Layer7 wrong status: 503 Service Unavailable"); "" lets
	// describe derive one from Err.
	Desc string
	// Lagging marks a failed check whose only fault is replication lag:
	// the server's monitor drains it instead of failing the check when
	// its configuration says so (on-lag drain).
	Lagging bool
}

// Checker probes a target once. Implementations must honour ctx's deadline.
type Checker interface {
	Check(ctx context.Context, addr string) Result
}

// Spec says what to check and how often.
type Spec struct {
	Backend, Server string
	// Addr is host:port to probe (the server's address with the check port).
	Addr string
	// Inter is the interval while the server is UP and passed its last
	// check, FastInter while it is rising or falling, DownInter while it
	// is DOWN and failed its last check (HAProxy's inter, fastinter and
	// downinter). Zero FastInter or DownInter means Inter.
	Inter     time.Duration
	FastInter time.Duration
	DownInter time.Duration
	// Spread moves each interval randomly by up to this many percent
	// either way (HAProxy's spread-checks); 0 keeps intervals exact.
	Spread  int
	Timeout time.Duration
	Rise    int
	Fall    int
	// Up is the server's state when monitoring starts.
	Up bool
	// DrainOnLag drains a server whose check fails only for lag
	// (Result.Lagging) instead of counting a failed check; the setter
	// must then implement Drainer.
	DrainOnLag bool
	// Draining is whether the server is drained for lag when monitoring
	// starts (a reload keeps it until a check finds the lag gone).
	Draining bool
	// ErrorLimit and OnError are the passive check: ErrorLimit consecutive
	// errors reported by Observed trigger OnError. 0 disables it.
	ErrorLimit int
	OnError    config.OnError
}

// HANA is the check status of a passive check's verdict (HAProxy's "Health
// analyze").
const HANA Status = "HANA"

// Drainer receives lag edges of a check with DrainOnLag.
type Drainer interface {
	SetLagDrain(lagging bool)
}

// Monitor checks one server until stopped. Only one probe is ever in flight.
type Monitor struct {
	spec    Spec
	checker Checker
	setter  StatusSetter
	log     *zap.Logger
	last    atomic.Pointer[Checked]
	sched   schedule
	// errors counts consecutive errors reported by Observed.
	errors atomic.Int64
	// stopped keeps sessions of a retired configuration, which still hold
	// this monitor, from reporting to the server after Stop.
	stopped atomic.Bool
	// paused is "disable health": probes run but change nothing.
	paused atomic.Bool

	mu       sync.Mutex // guards health and draining: probes and traffic both report
	health   int        // HAProxy's counter: 0..rise+fall-1, UP when >= rise
	draining bool
}

// Start begins monitoring. The first probe runs after a random part of one
// interval, so that many servers configured together are not probed in step.
func Start(spec Spec, checker Checker, setter StatusSetter, log *zap.Logger) *Monitor {
	m := newMonitor(spec, checker, setter, log)
	// As HAProxy: a server starts UP but fragile, so the first failed
	// probe takes it DOWN; a DOWN one needs rise successes.
	if spec.Up {
		m.health = spec.Rise
	}
	m.draining = spec.DrainOnLag && spec.Draining
	m.schedule()
	return m
}

func newMonitor(spec Spec, checker Checker, setter StatusSetter, log *zap.Logger) *Monitor {
	return &Monitor{spec: spec, checker: checker, setter: setter, log: log}
}

// schedule starts the probes: on the shared engine for TCP connect checks
// where there is one, in a loop of the monitor's own otherwise.
func (m *Monitor) schedule() {
	if _, ok := m.checker.(TCPChecker); ok {
		m.sched = startTCPProbe(m)
	}
	if m.sched == nil {
		m.sched = startLoop(m.spec.Inter, m.probe)
	}
}

// schedule runs a monitor's probes: a loop of its own, or, for TCP connect
// checks on Linux, the shared engine.
type schedule interface {
	// soon moves the next probe to within d, if it was due later.
	soon(d time.Duration)
	// stop ends the probes and waits for one in flight.
	stop()
}

// Stop ends monitoring, waits for an in-flight probe to finish and closes
// the checker's connections if it keeps any.
func (m *Monitor) Stop() {
	m.stopped.Store(true)
	m.sched.stop()
	if c, ok := m.checker.(io.Closer); ok {
		_ = c.Close()
	}
}

// Observed reports the outcome of one use of the server by live traffic,
// for the passive check: ErrorLimit errors in a row trigger OnError, and a
// success starts the count again. Safe to call from any goroutine; a
// success costs one atomic load.
func (m *Monitor) Observed(ok bool) {
	if m.spec.ErrorLimit == 0 {
		return
	}
	if ok {
		if m.errors.Load() != 0 {
			m.errors.Store(0)
		}
		return
	}
	if m.errors.Add(1) < int64(m.spec.ErrorLimit) || m.stopped.Load() {
		return
	}
	m.errors.Store(0)
	desc := fmt.Sprintf("%d consecutive errors in traffic (observe), on-error %s", m.spec.ErrorLimit, m.spec.OnError)
	r := Result{Status: HANA, Desc: desc}
	m.mu.Lock()
	// Tested again under the lock: a monitor replaced at a reload hands
	// its counter over under this lock once stopped (StartAfter), and a
	// verdict recorded after that would reach the server behind the new
	// monitor's back.
	if m.stopped.Load() {
		m.mu.Unlock()
		return
	}
	switch m.spec.OnError {
	case config.OnErrorFastInter:
		// Only the sooner check below.
		m.last.Store(&Checked{Result: r, At: time.Now(), Desc: desc})
	case config.OnErrorSuddenDeath:
		if m.health > m.spec.Rise {
			m.health = m.spec.Rise + 1
		}
		m.recordLocked(r)
	case config.OnErrorMarkDown:
		m.health = m.spec.Rise
		m.recordLocked(r)
	default: // fail-check
		m.recordLocked(r)
	}
	m.mu.Unlock()
	m.sched.soon(cmp.Or(m.spec.FastInter, m.spec.Inter))
}

func (m *Monitor) probe(ctx context.Context) (time.Duration, bool) {
	pctx, cancel := context.WithTimeout(ctx, m.spec.Timeout)
	r := m.check(pctx)
	cancel()
	if ctx.Err() != nil {
		return 0, false
	}
	m.record(r)
	return m.interval(), true
}

// check runs the checker once. A panic in it (halo's checkers, the
// database drivers some use) is a failed check with status SOCKERR, as
// HAProxy reports its own failures to run a check, counted and logged by
// package panics, instead of the end of the process; the next probe runs
// as scheduled.
func (m *Monitor) check(ctx context.Context) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			panics.Recovered(m.log, "panic in a health check", v,
				zap.String("backend", m.spec.Backend), zap.String("server", m.spec.Server), zap.String("addr", m.spec.Addr))
			r = Result{Status: SOCKERR, Err: errCheckPanicked, Desc: "Socket error: the check panicked in halo"}
		}
	}()
	return m.checker.Check(ctx, m.spec.Addr)
}

// loop runs a probe until stopped: first after a random part of first, so
// that probes of servers configured together are not in step, then after
// whatever each probe returns. Only one probe is ever in flight.
type loop struct {
	cancel context.CancelFunc
	done   chan struct{}
	sooner chan time.Duration
}

func startLoop(first time.Duration, probe func(ctx context.Context) (next time.Duration, ok bool)) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{cancel: cancel, done: make(chan struct{}), sooner: make(chan time.Duration, 1)}
	go func() {
		defer close(l.done)
		wait := rand.N(first) + time.Millisecond
		due := time.Now().Add(wait)
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case d := <-l.sooner:
				if at := time.Now().Add(d); at.Before(due) {
					due = at
					t.Reset(d)
				}
				continue
			case <-t.C:
			}
			next, ok := probe(ctx)
			if !ok {
				return
			}
			due = time.Now().Add(next)
			t.Reset(next)
		}
	}()
	return l
}

// soon moves the next probe to within d, if it was due later.
func (l *loop) soon(d time.Duration) {
	select {
	case l.sooner <- d:
	default: // one is pending already
	}
}

// stop ends the loop and waits for a probe in flight.
func (l *loop) stop() {
	l.cancel()
	<-l.done
}

// interval is the wait before the next probe, chosen from the health
// counter as HAProxy does: inter when the server is fully UP, downinter
// when it is fully DOWN, fastinter in between (rising or falling), then
// spread by up to Spread percent either way.
func (m *Monitor) interval() time.Duration {
	d := m.spec.Inter
	m.mu.Lock()
	health := m.health
	m.mu.Unlock()
	switch top := m.spec.Rise + m.spec.Fall - 1; {
	case health == top:
	case health == 0:
		d = cmp.Or(m.spec.DownInter, d)
	default:
		d = cmp.Or(m.spec.FastInter, d)
	}
	if m.spec.Spread > 0 {
		if r := d * time.Duration(m.spec.Spread) / 100; r > 0 {
			d += rand.N(2*r+1) - r
		}
	}
	return d
}

// Checked is the last check of a server, as the stats socket shows it
// (HAProxy's check_status, check_duration, check_desc and last_chk).
type Checked struct {
	Result
	At   time.Time
	Desc string // the description, derived when the checker gave none
}

// Last returns the last check's result, and false before the first.
func (m *Monitor) Last() (Checked, bool) {
	c := m.last.Load()
	if c == nil {
		return Checked{}, false
	}
	return *c, true
}

func (m *Monitor) record(r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.paused.Load() {
		return
	}
	if m.spec.DrainOnLag {
		drain := r.Lagging
		if drain {
			r.OK = true // the server is healthy, only behind
		}
		if drain != m.draining {
			m.draining = drain
			if d, ok := m.setter.(Drainer); ok {
				d.SetLagDrain(drain)
			}
			what := "no longer lagging, takes new sessions again"
			if drain {
				what = "lagging, drained"
			}
			m.log.Warn(fmt.Sprintf("server %s/%s is %s", m.spec.Backend, m.spec.Server, what),
				zap.String("backend", m.spec.Backend), zap.String("server", m.spec.Server),
				zap.String("check_desc", r.Desc))
		}
	}
	m.recordLocked(r)
}

// recordLocked keeps r as the last check and applies it to the health
// counter, reporting an UP or DOWN edge. m.mu is held.
func (m *Monitor) recordLocked(r Result) {
	desc := r.Desc
	if desc == "" && r.Err != nil {
		desc = describe(r)
	}
	m.last.Store(&Checked{Result: r, At: time.Now(), Desc: desc})
	if fc, ok := m.setter.(FailureCounter); ok && !r.OK {
		fc.CheckFailed()
	}
	top := m.spec.Rise + m.spec.Fall - 1
	wasUp := m.health >= m.spec.Rise
	if r.OK {
		if m.health < top {
			m.health++
			if m.health >= m.spec.Rise {
				m.health = top
			}
		}
	} else {
		if m.health > m.spec.Rise {
			m.health--
		} else {
			m.health = 0
		}
	}
	isUp := m.health >= m.spec.Rise
	if isUp == wasUp {
		return
	}
	m.setter.SetHealthy(isUp)
	state := "DOWN"
	if isUp {
		state = "UP"
	}
	fields := []zap.Field{
		zap.String("backend", m.spec.Backend), zap.String("server", m.spec.Server),
		zap.String("check_status", string(r.Status)), zap.Duration("check_duration", r.Duration),
	}
	if r.Err != nil || r.Desc != "" {
		fields = append(fields, zap.String("reason", describe(r)))
	}
	m.log.Warn(fmt.Sprintf("server %s/%s is %s", m.spec.Backend, m.spec.Server, state), fields...)
}

func describe(r Result) string {
	switch {
	case r.Desc != "":
		return r.Desc
	case r.Status == L4TOUT:
		return "Layer4 timeout"
	case errors.Is(r.Err, syscall.ECONNREFUSED):
		return "Layer4 connection problem: Connection refused"
	default:
		return "Layer4 connection problem: " + r.Err.Error()
	}
}
