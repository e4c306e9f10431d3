// Package balancer owns the runtime state of backend servers (health, admin
// state, weight, counters), the pools of usable servers built from that state,
// and the policies that pick a server from a pool. It does no I/O.
//
// Concurrency: Server state and counters are atomics, safe from any goroutine.
// Pools are immutable and published through an atomic pointer, so Pick never
// locks. Rebuilding a pool (on a health edge or admin change) is cold-path and
// serialized per Backend.
package balancer

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Admin is an operator-set server state, as HAProxy's "set server ... state".
type Admin uint32

// The admin states. Ready servers take traffic when healthy; Drain servers
// keep their sessions but get no new ones; Maint servers get nothing.
const (
	AdminReady Admin = iota
	AdminDrain
	AdminMaint
)

func (a Admin) String() string {
	switch a {
	case AdminDrain:
		return "DRAIN"
	case AdminMaint:
		return "MAINT"
	default:
		return "READY"
	}
}

// Server is the runtime state of one backend server. It is keyed by backend
// and server name in a Registry and outlives configuration reloads, so a
// server kept by a reload keeps its health, counters and weight.
type Server struct {
	Backend string
	Name    string

	up         atomic.Bool
	agentDown  atomic.Bool // an agent-check said "down"
	lagDrain   atomic.Bool // a database check with on-lag drain saw lag
	admin      atomic.Uint32
	lastChange atomic.Int64 // unix nanoseconds of the last up/down edge
	// rampFrom is when the server last came back into service (DOWN to UP,
	// or MAINT to READY), in unix nanoseconds; 0 when it has been in
	// service since it was created. slowstart ramps its weight from here.
	rampFrom atomic.Int64

	// served counts the sessions (L4 connections, L7 requests) a Backend
	// assigned to this server and has not released yet. It is the load
	// that leastconn, first, random and bounded-load hashing read, and
	// what maxconn bounds.
	served atomic.Int64
	// live is the server's place in the Backend of the live configuration.
	// A session begun under an older configuration ends through the older
	// Backend; it tells the live one too, so that a load-following policy
	// (leastconn, first) there does not keep a stale count after a reload.
	live atomic.Pointer[memberRef]

	// configWeight is the weight the live configuration gives the server;
	// userWeight is a runtime override ("set weight"), -1 when none.
	configWeight atomic.Int32
	userWeight   atomic.Int32
	// configDisabled is the live configuration's "disabled": -1 before any
	// configuration, else 0 or 1.
	configDisabled atomic.Int32
	// maxConn is a runtime maxconn (from an agent-check), -1 when none.
	maxConn atomic.Int32

	// Counters, read by stats. Updated on the data path with atomics only.
	// The current sessions are served (CurConns); TotalConns counts every
	// session a Backend assigned to the server, in both modes: an L4
	// connection, or an L7 request (a stream, as HAProxy counts them).
	TotalConns atomic.Uint64
	BytesIn    atomic.Uint64 // client to server
	BytesOut   atomic.Uint64 // server to client
	ConnErrors atomic.Uint64 // connection attempts that failed
	RespErrors atomic.Uint64 // responses or sessions aborted by the server
	DeniedResp atomic.Uint64 // responses an http-response rule denied
	Retries    atomic.Uint64
	Redispatch atomic.Uint64
	HTTPStatus [6]atomic.Uint64 // index 1..5: 1xx..5xx responses; 0: other
	ChecksDown atomic.Uint64    // UP to DOWN transitions
	// ChecksFailed counts failed health checks (HAProxy's chkfail).
	ChecksFailed atomic.Uint64
	// InternalErrors counts the server's sessions that ended in a panic
	// halo recovered (HAProxy's eint).
	InternalErrors atomic.Uint64
	// MaxServed is the most sessions the server had at once (smax),
	// MaxQueued the most waiting for it (qmax).
	MaxServed Max
	MaxQueued Max
	// Timings are the server's latency histograms, written only when
	// something reads them (a stats socket, page or metrics endpoint).
	Timings Timings
	// downtime is how long the server was DOWN before its last UP edge,
	// in nanoseconds.
	downtime atomic.Int64
	// noLB is "set server ... health stopping": UP, but given no new
	// sessions (HAProxy's NOLB).
	noLB atomic.Bool

	mu        sync.Mutex
	observers map[*Backend]struct{}
}

func newServer(backend, name string) *Server {
	s := &Server{Backend: backend, Name: name, observers: map[*Backend]struct{}{}}
	s.up.Store(true)
	s.configWeight.Store(-1)
	s.userWeight.Store(-1)
	s.configDisabled.Store(-1)
	s.maxConn.Store(-1)
	s.lastChange.Store(time.Now().UnixNano())
	return s
}

// Up reports whether the last health verdict was UP (servers without checks
// are always UP).
func (s *Server) Up() bool { return s.up.Load() }

// Admin returns the operator-set state.
func (s *Server) Admin() Admin { return Admin(s.admin.Load()) }

// LastChange returns when the server last changed between UP and DOWN.
func (s *Server) LastChange() time.Time { return time.Unix(0, s.lastChange.Load()) }

// SetHealthy records a health verdict. It is the edge reported by a checker
// (it implements health.StatusSetter); a change rebuilds the pools of every
// backend that uses this server.
func (s *Server) SetHealthy(up bool) {
	if s.up.Swap(up) == up {
		return
	}
	now := time.Now().UnixNano()
	if !up {
		s.ChecksDown.Add(1)
	} else {
		s.rampFrom.Store(now)
		s.downtime.Add(now - s.lastChange.Load())
	}
	s.lastChange.Store(now)
	s.notify()
}

// CheckFailed counts one failed health check; the health monitor calls it.
func (s *Server) CheckFailed() { s.ChecksFailed.Add(1) }

// Downtime is how long the server has been DOWN in all, up to now.
func (s *Server) Downtime() time.Duration {
	d := s.downtime.Load()
	if !s.up.Load() {
		d += time.Now().UnixNano() - s.lastChange.Load()
	}
	return time.Duration(d)
}

// SetNoLB is "set server ... health stopping" (true) and the way back to
// "up" (false): a stopping server is UP but takes no new sessions.
func (s *Server) SetNoLB(on bool) {
	if s.noLB.Swap(on) != on {
		s.notify()
	}
}

// NoLB reports whether the server is stopping (NOLB).
func (s *Server) NoLB() bool { return s.noLB.Load() }

// ClearCounters resets the server's counters ("clear counters all");
// with maxOnly, only the maxima ("clear counters").
func (s *Server) ClearCounters(maxOnly bool) {
	s.MaxServed.Reset(s.served.Load())
	s.MaxQueued.Reset(0)
	s.Timings.ClearMax()
	if maxOnly {
		return
	}
	for _, u := range []*atomic.Uint64{&s.TotalConns, &s.BytesIn, &s.BytesOut, &s.ConnErrors, &s.RespErrors,
		&s.Retries, &s.Redispatch, &s.ChecksDown, &s.ChecksFailed, &s.InternalErrors} {
		u.Store(0)
	}
	for i := range s.HTTPStatus {
		s.HTTPStatus[i].Store(0)
	}
	s.Timings.Clear()
	s.downtime.Store(0)
}

// SetAdmin changes the operator-set state and rebuilds affected pools.
// Leaving MAINT starts a slow start, as in HAProxy.
func (s *Server) SetAdmin(a Admin) {
	old := Admin(s.admin.Swap(uint32(a)))
	if old == a {
		return
	}
	if old == AdminMaint {
		s.rampFrom.Store(time.Now().UnixNano())
	}
	s.notify()
}

// Served is the number of sessions currently assigned to the server.
func (s *Server) Served() int64 { return s.served.Load() }

// CurConns is the server's current sessions, as stats show them (HAProxy's
// scur): those assigned to it and not yet released, whichever
// configuration assigned them.
func (s *Server) CurConns() int64 { return s.served.Load() }

// Weight is the server's weight before slow start: the runtime override
// when one is set, otherwise the configured weight (or fallback when no
// configuration has been applied yet).
func (s *Server) Weight(fallback int) int {
	if w := s.userWeight.Load(); w >= 0 {
		return int(w)
	}
	if w := s.configWeight.Load(); w >= 0 {
		return int(w)
	}
	return fallback
}

// SetConfigWeight records the weight the newly applied configuration gives
// the server. A runtime override survives a reload unless the file changed
// this server's weight: then the file wins.
func (s *Server) SetConfigWeight(w int) {
	if old := s.configWeight.Swap(int32(w)); old != int32(w) {
		changed := old >= 0 || s.userWeight.Load() >= 0
		s.userWeight.Store(-1)
		if changed {
			s.notify()
		}
	}
}

// SetConfigAdmin applies a newly loaded configuration's "disabled". The
// admin state follows the file only where the file changed, so a server an
// operator drained or put in maintenance at run time stays so across a
// reload that does not touch it.
func (s *Server) SetConfigAdmin(disabled bool) {
	v := int32(0)
	if disabled {
		v = 1
	}
	old := s.configDisabled.Swap(v)
	switch {
	case old == v:
	case disabled:
		s.SetAdmin(AdminMaint)
	case old == 1:
		s.SetAdmin(AdminReady)
	}
}

// SetWeight is HAProxy's "set weight BACKEND/SERVER WEIGHT[%]": an absolute
// weight from 0 to 256, or with relative set, a percentage of the
// configured weight. static reports whether the backend's algorithm takes
// weights only at build time (static-rr, map-based hashing), where, as in
// HAProxy, only 0% and 100% are accepted.
func (s *Server) SetWeight(value int, relative, static bool) error {
	cfg := s.Weight(DefaultWeight)
	if c := s.configWeight.Load(); c >= 0 {
		cfg = int(c)
	}
	w := value
	if relative {
		if value < 0 {
			return fmt.Errorf("weight %d%% is negative", value)
		}
		w = (cfg*value + 50) / 100
		if value > 0 && cfg > 0 && w == 0 {
			w = 1
		}
	}
	if w < 0 || w > MaxWeight {
		return fmt.Errorf("weight %d is out of range 0-%d", w, MaxWeight)
	}
	if static && w != 0 && w != cfg {
		return fmt.Errorf("backend %s uses a static algorithm: only 0%% and 100%% are accepted", s.Backend)
	}
	if old := s.userWeight.Swap(int32(w)); old != int32(w) {
		s.notify()
	}
	return nil
}

// memberRef is a server's position in one Backend.
type memberRef struct {
	backend *Backend
	member  int
}

// DefaultWeight is a server's weight when nothing sets one.
const DefaultWeight = 1

// MaxWeight is the largest weight a server may have, as in HAProxy.
const MaxWeight = 256

// acquire counts one more session on the server unless that would pass
// maxconn (0: no limit).
func (s *Server) acquire(maxconn int) bool {
	if maxconn <= 0 {
		s.MaxServed.Note(s.served.Add(1))
		s.TotalConns.Add(1)
		return true
	}
	for {
		n := s.served.Load()
		if n >= int64(maxconn) {
			return false
		}
		if s.served.CompareAndSwap(n, n+1) {
			s.MaxServed.Note(n + 1)
			s.TotalConns.Add(1)
			return true
		}
	}
}

// usable reports whether the server may take new traffic.
func (s *Server) usable() bool {
	return s.up.Load() && !s.agentDown.Load() && !s.lagDrain.Load() && !s.noLB.Load() && s.Admin() == AdminReady
}

// SetLagDrain drains the server while a database check with "on-lag
// drain" finds it lagging: it takes no new sessions, established ones go
// on. This is apart from the operator's admin state, which it neither
// reads nor changes.
func (s *Server) SetLagDrain(lagging bool) {
	if s.lagDrain.Swap(lagging) != lagging {
		s.notify()
	}
}

// LagDrained reports whether a lag check drains the server.
func (s *Server) LagDrained() bool { return s.lagDrain.Load() }

// SetAgentUp records an agent-check's "up" (true) or "down" (false). The
// server takes traffic only when both its health check and its agent say
// it may, as in HAProxy.
func (s *Server) SetAgentUp(up bool) {
	if s.agentDown.Swap(!up) == !up {
		return
	}
	if up {
		s.rampFrom.Store(time.Now().UnixNano())
	}
	s.notify()
}

// AgentUp reports whether no agent-check holds the server down.
func (s *Server) AgentUp() bool { return !s.agentDown.Load() }

// MaxConn is the runtime maxconn, -1 when the configured one applies.
func (s *Server) MaxConn() int { return int(s.maxConn.Load()) }

// SetMaxConn sets a runtime maxconn (an agent's "maxconn:N"); a negative
// value returns to the configured one.
func (s *Server) SetMaxConn(n int) {
	if n < 0 {
		n = -1
	}
	n = min(n, math.MaxInt32)
	if s.maxConn.Swap(int32(n)) != int32(n) {
		s.notify()
	}
}

func (s *Server) notify() {
	s.mu.Lock()
	observers := make([]*Backend, 0, len(s.observers))
	for b := range s.observers {
		observers = append(observers, b)
	}
	s.mu.Unlock()
	for _, b := range observers {
		b.Rebuild()
	}
}

func (s *Server) observe(b *Backend) {
	s.mu.Lock()
	s.observers[b] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) unobserve(b *Backend) {
	s.mu.Lock()
	delete(s.observers, b)
	s.mu.Unlock()
}

// Registry holds the state of every server by backend and server name. It is
// created once per process and handed to every snapshot build.
type Registry struct {
	mu      sync.Mutex
	servers map[[2]string]*Server
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{servers: map[[2]string]*Server{}}
}

// Server returns the state of backend/name, creating it (UP, READY) on first use.
func (r *Registry) Server(backend, name string) *Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{backend, name}
	s, ok := r.servers[k]
	if !ok {
		s = newServer(backend, name)
		r.servers[k] = s
	}
	return s
}

// Lookup returns the state of backend/name, or nil.
func (r *Registry) Lookup(backend, name string) *Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers[[2]string{backend, name}]
}

// Retain forgets every server for which keep returns false; a reload calls it
// once the new snapshot is live, so servers removed from the file lose their
// state and a server added again later starts fresh.
func (r *Registry) Retain(keep func(backend, name string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.servers {
		if !keep(k[0], k[1]) {
			delete(r.servers, k)
		}
	}
}
