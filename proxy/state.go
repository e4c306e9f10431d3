package proxy

import (
	"context"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
)

// frontendState is what a frontend keeps across reloads.
type frontendState struct {
	balancer.Counters
	limit *limiter
	// live is this frontend in the snapshot being served; HTTP requests on
	// kept-alive connections are routed through it so they follow reloads.
	live atomic.Pointer[frontend]
	// http serves the frontend's connections in mode http: the
	// generation live now, which new connections are handed to. Only Apply
	// stores it (under Proxy.mu).
	http atomic.Pointer[httpServer]
	// tcp holds the frontend's connections in mode tcp, so that a reload
	// that removes the frontend can close what is left of them at
	// hard-stop-after.
	tcp connSet
	// draining are the generations reloads replaced that still serve
	// connections (see drainHTTP), so that "show sess" and "shutdown
	// session" reach those connections too.
	drainingMu sync.Mutex
	draining   []*httpServer
	// badRequests keeps the last request the frontend refused.
	badRequests captureLog
	// parking is the Proxy's set of parked idle connections.
	parking *parking
	// removed is set when a reload removed the frontend, before its
	// connections are retired: none parks after that.
	removed atomic.Bool
}

// httpConns returns the connections of every HTTP server generation of
// the frontend, the live one and those draining, and its parked ones.
func (fs *frontendState) httpConns() []map[net.Conn]connEntry {
	var sets []map[net.Conn]connEntry
	if h := fs.http.Load(); h != nil {
		sets = append(sets, h.conns.snapshot())
	}
	fs.drainingMu.Lock()
	defer fs.drainingMu.Unlock()
	for _, h := range fs.draining {
		sets = append(sets, h.conns.snapshot())
	}
	if fs.parking != nil {
		sets = append(sets, fs.parking.snapshot(fs))
	}
	return sets
}

// backendState is what a backend keeps across reloads.
type backendState struct {
	balancer.Counters
	// badResponses keeps the last response a server sent that halo
	// refused.
	badResponses captureLog
	// Whether the backend has a usable server, as HAProxy's backend
	// status (UP/DOWN): its DOWN transitions, when it last changed and
	// how long it has been DOWN in all (unix nanoseconds).
	upDown     sync.Mutex // serializes noteUsable's edges
	down       bool
	downs      atomic.Uint64
	lastChange atomic.Int64
	downSince  atomic.Int64 // 0 while UP
	downtime   atomic.Int64 // before downSince
}

// noteUsable records whether the backend has a usable server now, after
// a pool rebuild (cold path: health edges, admin changes, reloads).
func (st *backendState) noteUsable(usable bool) {
	st.upDown.Lock()
	defer st.upDown.Unlock()
	if st.lastChange.Load() == 0 {
		st.lastChange.Store(time.Now().UnixNano())
	}
	if st.down == !usable {
		return
	}
	now := time.Now().UnixNano()
	st.down = !usable
	st.lastChange.Store(now)
	if st.down {
		st.downs.Add(1)
		st.downSince.Store(now)
	} else {
		st.downtime.Add(now - st.downSince.Load())
		st.downSince.Store(0)
	}
}

// upDownTimes returns the backend's DOWN transitions, its last change and
// its total time DOWN up to now.
func (st *backendState) upDownTimes() (downs uint64, lastChange time.Time, downtime time.Duration) {
	d := st.downtime.Load()
	if since := st.downSince.Load(); since != 0 {
		d += time.Now().UnixNano() - since
	}
	return st.downs.Load(), time.Unix(0, st.lastChange.Load()), time.Duration(d)
}

// kept holds one kind of state that outlives snapshots, by key (a name, or
// a server's state): a build takes an entry, creating it on first use, and
// once a new snapshot is live the reload drops the entries it no longer
// uses. It is the single owner of that kind of state. Only the control path
// touches it, under Proxy.mu; the data path and readers such as stats reach
// the entries through the live snapshot, never through here, so they never
// wait on a reload.
type kept[K comparable, V any] struct {
	entries map[K]V
	create  func() V
}

func newKept[K comparable, V any](create func() V) *kept[K, V] {
	return &kept[K, V]{entries: map[K]V{}, create: create}
}

// take returns the entry for key, creating it if there is none.
func (k *kept[K, V]) take(key K) V {
	v, ok := k.entries[key]
	if !ok {
		v = k.create()
		k.entries[key] = v
	}
	return v
}

// retain drops every entry for which keep returns false, after handing it
// to drop (which may be nil) to release what it holds.
func (k *kept[K, V]) retain(keep func(K) bool, drop func(K, V)) {
	for key, v := range k.entries {
		if !keep(key) {
			if drop != nil {
				drop(key, v)
			}
			delete(k.entries, key)
		}
	}
}

// connSet tracks client connections so that whatever served them can close
// those left when it is retired (a frontend a reload removed, an HTTP
// server generation a reload replaced) once hard-stop-after runs out. A
// connection costs a lock to join and one to leave; requests cost nothing.
type connSet struct {
	mu sync.Mutex
	// conns maps each connection to what "show sess" and "shutdown
	// sessions server" need of it.
	conns   map[net.Conn]connEntry
	retired bool
	empty   chan struct{} // closed once retired and empty
}

// connEntry is one tracked connection: when it joined (unix nanoseconds)
// and, for an L4 session, the server it is relayed to.
type connEntry struct {
	since int64
	srv   *server
}

// add tracks c; false means the set was retired already and the caller
// must close c instead of serving it.
func (s *connSet) add(c net.Conn) bool { return s.addSession(c, nil) }

// addSession is add for an L4 session relayed to srv.
func (s *connSet) addSession(c net.Conn, srv *server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]connEntry{}
	}
	s.conns[c] = connEntry{since: time.Now().UnixNano(), srv: srv}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.retired && len(s.conns) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
	s.mu.Unlock()
}

// snapshot copies the set's entries, so that a reader (show sess) holds
// the set's lock, which connections joining and leaving take, only for the
// copy.
func (s *connSet) snapshot() map[net.Conn]connEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.conns)
}

// drain retires the set and waits until its connections have ended or ctx
// is done; then it closes those left and returns how many it closed.
func (s *connSet) drain(ctx context.Context) int {
	if s.wait(ctx) {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}

// wait retires the set and waits until its connections have ended (true)
// or ctx is done (false). One waiter at a time.
func (s *connSet) wait(ctx context.Context) bool {
	s.mu.Lock()
	s.retired = true
	var empty chan struct{}
	if len(s.conns) > 0 {
		empty = make(chan struct{})
		s.empty = empty
	}
	s.mu.Unlock()
	if empty == nil {
		return true
	}
	select {
	case <-empty:
		return true
	case <-ctx.Done():
		return false
	}
}
