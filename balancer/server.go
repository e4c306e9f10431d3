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
	admin      atomic.Uint32
	lastChange atomic.Int64 // unix nanoseconds of the last up/down edge

	// Counters, read by stats. Updated on the data path with atomics only.
	CurConns   atomic.Int64
	TotalConns atomic.Uint64
	BytesIn    atomic.Uint64 // client to server
	BytesOut   atomic.Uint64 // server to client
	ConnErrors atomic.Uint64 // connection attempts that failed
	RespErrors atomic.Uint64 // responses or sessions aborted by the server
	Retries    atomic.Uint64
	Redispatch atomic.Uint64
	HTTPStatus [6]atomic.Uint64 // index 1..5: 1xx..5xx responses; 0: other
	ChecksDown atomic.Uint64    // UP to DOWN transitions

	mu        sync.Mutex
	observers map[*Backend]struct{}
}

func newServer(backend, name string) *Server {
	s := &Server{Backend: backend, Name: name, observers: map[*Backend]struct{}{}}
	s.up.Store(true)
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
	if !up {
		s.ChecksDown.Add(1)
	}
	s.lastChange.Store(time.Now().UnixNano())
	s.notify()
}

// SetAdmin changes the operator-set state and rebuilds affected pools.
func (s *Server) SetAdmin(a Admin) {
	if Admin(s.admin.Swap(uint32(a))) != a {
		s.notify()
	}
}

// usable reports whether the server may take new traffic.
func (s *Server) usable() bool { return s.up.Load() && s.Admin() == AdminReady }

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
