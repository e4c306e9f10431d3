package balancer

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config"
)

// Policy picks a server from the pool it was built for. Pick is on the hot
// path: it must not allocate, lock or block. It returns the index of the
// chosen Member in the Backend, or -1 when it found no member with a free
// slot. Hashing policies return the member the key maps to even when that
// member is full, because a request for it must wait for it (HAProxy queues
// it on that server).
type Policy interface {
	Pick(key uint64) int
}

// loadTracker is implemented by policies whose precomputed structure
// follows the servers' load (leastconn and first): the Backend tells them
// each time a member's served count changed.
type loadTracker interface {
	loadChanged(member int)
}

// Spec is how a backend balances: HAProxy's "balance", "hash-type",
// "hash-balance-factor" and "option allbackups".
type Spec struct {
	// Algorithm is the "balance" algorithm. The proxy computes the key
	// of the hashing ones (source, uri, url_param, hdr).
	Algorithm config.Algorithm
	// Draws is how many servers random draws before taking the least
	// loaded (random(N)); 0 means 2, HAProxy's default.
	Draws int
	// Consistent selects "hash-type consistent" for the hashing
	// algorithms; false is "map-based".
	Consistent bool
	// BalanceFactor is "hash-balance-factor" (0: off, otherwise at least
	// 100): with consistent hashing, no server takes a new session while
	// its load would exceed BalanceFactor percent of the average.
	BalanceFactor int
	// AllBackups uses every usable backup server when no primary is
	// usable; otherwise only the first one, in configuration order.
	AllBackups bool
}

// Hashed reports whether the algorithm picks by a key the proxy computes.
func (s Spec) Hashed() bool { return s.Algorithm.Hashed() }

// Static reports whether weights are fixed when the pool is built:
// static-rr and map-based hashing, as in HAProxy. Runtime weight changes
// are then limited to 0% and 100%, and slowstart does not apply.
func (s Spec) Static() bool {
	return s.Algorithm == config.AlgoStaticRR || (s.Hashed() && !s.Consistent)
}

// Member is a server as one configuration of a backend uses it.
type Member struct {
	State  *Server
	Weight int // configured weight, 0 to 256
	Backup bool
	// MaxConn is the most sessions the server takes at once (0: no limit);
	// more wait in the proxy's queue.
	MaxConn int
	// SlowStart is how long the weight takes to ramp up linearly after
	// the server comes back into service (0: at once).
	SlowStart time.Duration
}

// limits holds each member's maxconn as a pool applies it (0: no limit):
// the configured one, scaled down during a slow start.
type limits []int

// full reports whether member i serves as many sessions as its limit.
func (l limits) full(members []Member, i int) bool {
	return l[i] > 0 && members[i].State.served.Load() >= int64(l[i])
}

// Backend is one configuration's view of a backend: its members and the
// pool of those usable right now. A reload builds a new Backend over the
// same Server states; Close detaches the old one.
type Backend struct {
	Name    string
	spec    Spec
	members []Member
	cursor  atomic.Uint64 // round-robin position; survives rebuilds
	// served counts the sessions of all members through this Backend; only
	// bounded-load hashing reads it, so only then is it kept (one shared
	// counter costs every pick a contended cache line).
	served      atomic.Int64
	countServed bool
	hashed      bool // spec.Hashed(), looked up once rather than per pick

	mu       sync.Mutex // serializes Rebuild and the ramp timer
	ramp     *time.Timer
	closed   bool
	onChange atomic.Pointer[func()]
	pool     atomic.Pointer[pool]
}

// pool is what Pick needs, precomputed from the members' states. It is
// immutable once published.
type pool struct {
	usable   []int  // member indices
	weight   []int  // effective weight by member index; 0 outside the pool
	maxconn  limits // effective maxconn by member index
	total    int    // sum of weight
	policy   Policy
	rotation *roundRobin // every pool's weighted rotation: redispatch, and hashing without a key
	load     loadTracker // nil unless policy follows load
}

// NewBackend returns a backend balancing members as spec says, subscribed
// to its servers' state changes.
func NewBackend(name string, spec Spec, members []Member) (*Backend, error) {
	if !slices.Contains(config.Algorithms, spec.Algorithm) {
		return nil, fmt.Errorf("backend %s: unknown balance algorithm %q", name, spec.Algorithm)
	}
	if spec.Draws <= 0 {
		spec.Draws = 2
	}
	b := &Backend{Name: name, spec: spec, members: members, countServed: spec.Consistent && spec.BalanceFactor > 0, hashed: spec.Hashed()}
	b.Rebuild()
	for _, m := range members {
		m.State.observe(b)
	}
	return b, nil
}

// Spec returns how the backend balances.
func (b *Backend) Spec() Spec { return b.spec }

// SetOnChange registers f to run after every rebuild of the pool (a server
// changed state or weight, or a slow start advanced), outside the
// Backend's lock. The proxy uses it to hand queued sessions to servers that
// became usable. It may be set at any time: a Backend follows its servers'
// state from NewBackend on, so a health edge can rebuild it while the
// proxy is still wiring it up.
func (b *Backend) SetOnChange(f func()) { b.onChange.Store(&f) }

// Result says what Acquire did.
type Result int

// The outcomes of Acquire.
const (
	// Assigned: the returned member now counts the session as served;
	// the caller must Release it.
	Assigned Result = iota
	// ServerFull: the key maps to the returned member, which is at its
	// maxconn; the session should wait for that server.
	ServerFull
	// BackendFull: every usable server is at its maxconn; the session
	// should wait for any of them.
	BackendFull
	// NoServer: no server is usable.
	NoServer
)

// Acquire picks a server for a session and counts it as served there.
// hasKey says whether key is meaningful: a hashing backend whose request
// lacks its key (no such header or parameter) uses the weighted rotation,
// as HAProxy does.
func (b *Backend) Acquire(key uint64, hasKey bool) (int, Result) {
	p := b.pool.Load()
	if len(p.usable) == 0 {
		return -1, NoServer
	}
	policy := p.policy
	if !hasKey && b.hashed {
		policy = p.rotation
	}
	// A racing session can take the last slot between Pick and acquire;
	// a few fresh picks settle it without looping forever.
	for range 4 {
		i := policy.Pick(key)
		if i < 0 {
			return -1, BackendFull
		}
		if b.take(p, i) {
			return i, Assigned
		}
		if policy != p.rotation && b.hashed && b.spec.BalanceFactor == 0 {
			return i, ServerFull
		}
	}
	return -1, BackendFull
}

// AcquireExcept is Acquire for a retry by a caller that holds a slot on
// except: it takes the next server of the weighted rotation other than
// except, when another one is usable and has a free slot. Otherwise it
// returns except itself, still in the pool, without taking anything: the
// caller keeps the slot it holds, and the retry is not counted as another
// session on that server.
func (b *Backend) AcquireExcept(except int) (int, Result) {
	p := b.pool.Load()
	// except may have left the pool already (a passive check marks a
	// server DOWN on the very error that made the caller retry): then one
	// usable server is enough.
	if len(p.usable) > 1 || (len(p.usable) == 1 && p.usable[0] != except) {
		// The rotation gives any server at most MaxWeight turns before
		// every other usable server had one.
		for range 2*MaxWeight + 2 {
			i := p.rotation.Pick(0)
			if i < 0 {
				break
			}
			if i != except && b.take(p, i) {
				return i, Assigned
			}
		}
	}
	if except >= 0 && except < len(b.members) && p.weight[except] > 0 {
		return except, Assigned
	}
	if len(p.usable) == 0 {
		return -1, NoServer
	}
	return -1, BackendFull
}

// TryAcquire counts a session on member i if it is in the pool and has a
// free slot. The proxy's queue uses it to hand a waiting session to a
// server that just freed a slot.
func (b *Backend) TryAcquire(i int) bool {
	p := b.pool.Load()
	if i < 0 || i >= len(b.members) || p.weight[i] == 0 {
		return false
	}
	return b.take(p, i)
}

// TryAcquireDirect counts a session on member i for a client that
// persistence (a cookie) sends there, if it has a free slot. Unlike
// TryAcquire, the server need not be in the pool: a draining server keeps
// its persistent clients, as in HAProxy, and one DOWN or in maintenance
// may keep them too (option persist, force-persist); the caller decides
// which states it accepts. Its maxconn still applies, unscaled outside the
// pool.
func (b *Backend) TryAcquireDirect(i int) bool {
	p := b.pool.Load()
	if i < 0 || i >= len(b.members) {
		return false
	}
	maxconn := p.maxconn[i]
	if p.weight[i] == 0 {
		m := &b.members[i]
		if maxconn = m.MaxConn; m.State.maxConn.Load() >= 0 {
			maxconn = int(m.State.maxConn.Load())
		}
	}
	if !b.members[i].State.acquire(maxconn) {
		return false
	}
	if b.countServed {
		b.served.Add(1)
	}
	b.loadChanged(p, i)
	return true
}

// Usable reports whether member i is in the current pool.
func (b *Backend) Usable(i int) bool {
	p := b.pool.Load()
	return i >= 0 && i < len(p.weight) && p.weight[i] > 0
}

func (b *Backend) take(p *pool, i int) bool {
	if !b.members[i].State.acquire(p.maxconn[i]) {
		return false
	}
	if b.countServed {
		b.served.Add(1)
	}
	b.loadChanged(p, i)
	return true
}

// loadChanged tells the load-following policies that member i's count
// changed: this Backend's and, when this one is not the live one, the live
// Backend's.
func (b *Backend) loadChanged(p *pool, i int) {
	if p.load != nil {
		p.load.loadChanged(i)
	}
	if ref := b.members[i].State.live.Load(); ref != nil && ref.backend != b {
		if l := ref.backend.pool.Load().load; l != nil {
			l.loadChanged(ref.member)
		}
	}
}

// Activate makes this Backend the live one of its servers: sessions that
// began under an older Backend report their end here too. The proxy calls
// it when a configuration goes live.
func (b *Backend) Activate() {
	for i, m := range b.members {
		m.State.live.Store(&memberRef{backend: b, member: i})
	}
}

// Release ends a session that Acquire, AcquireExcept or TryAcquire
// counted on member i.
func (b *Backend) Release(i int) {
	b.members[i].State.served.Add(-1)
	if b.countServed {
		b.served.Add(-1)
	}
	b.loadChanged(b.pool.Load(), i)
}

// UsableCount is the number of servers currently in the pool.
func (b *Backend) UsableCount() int { return len(b.pool.Load().usable) }

// EffectiveWeight is member i's weight in the current pool: its weight
// after runtime changes and slow start, 0 when it is not in the pool.
func (b *Backend) EffectiveWeight(i int) int { return b.pool.Load().weight[i] }

// SetWeight is HAProxy's "set weight": see Server.SetWeight. It is here
// because whether only 0% and 100% are allowed depends on the algorithm.
func (b *Backend) SetWeight(server string, value int, relative bool) error {
	for _, m := range b.members {
		if m.State.Name == server {
			return m.State.SetWeight(value, relative, b.spec.Static())
		}
	}
	return fmt.Errorf("backend %s has no server %q", b.Name, server)
}

// Rebuild recomputes the pool from the servers' current states. Servers call
// it on every state change; it is safe to call at any time.
func (b *Backend) Rebuild() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	now := time.Now()
	p, next := b.build(now)
	b.pool.Store(p)
	if b.ramp != nil {
		b.ramp.Stop()
		b.ramp = nil
	}
	if next > 0 {
		// A large pool of mixed weights takes tens of milliseconds to
		// build; slow-start steps then come no more often than keeps
		// rebuilding under a tenth of one core.
		b.ramp = time.AfterFunc(max(next, 10*time.Since(now)), b.Rebuild)
	}
	onChange := b.onChange.Load()
	b.mu.Unlock()
	if onChange != nil {
		(*onChange)()
	}
}

// build computes a pool, and when a member is still in its slow start, how
// long until its weight should next grow.
func (b *Backend) build(now time.Time) (*pool, time.Duration) {
	p := &pool{weight: make([]int, len(b.members)), maxconn: make(limits, len(b.members))}
	var next time.Duration
	eligible := func(backup bool) {
		for i := range b.members {
			m := &b.members[i]
			if m.Backup != backup || !m.State.usable() {
				continue
			}
			w, maxconn, wait := b.effective(m, now)
			if wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
			if w == 0 {
				continue
			}
			p.usable = append(p.usable, i)
			p.weight[i] = w
			p.maxconn[i] = maxconn
			p.total += w
			if backup && !b.spec.AllBackups {
				return
			}
		}
	}
	eligible(false)
	if len(p.usable) == 0 {
		eligible(true)
	}
	p.rotation = newRoundRobin(b.members, p, &b.cursor)
	switch b.spec.Algorithm {
	case config.AlgoRoundRobin, config.AlgoStaticRR:
		p.policy = p.rotation
	case config.AlgoLeastConn:
		t := newLeastConn(b.members, p)
		p.policy, p.load = t, t
	case config.AlgoFirst:
		t := newFirst(b.members, p)
		p.policy, p.load = t, t
	case config.AlgoRandom:
		p.policy = newRandom(b.members, p, b.spec.Draws)
	default: // hashing
		if b.spec.Consistent {
			p.policy = newConsistent(b.members, p, b.spec.BalanceFactor, &b.served)
		} else {
			p.policy = newMapBased(p)
		}
	}
	return p, next
}

// effective is a member's weight and maxconn now: the server's weight
// (runtime override or configured) and its maxconn, both scaled down
// linearly during its slow start, as HAProxy does: the maxconn always, the
// weight when the algorithm's weights are dynamic. wait is when the ramp
// should next advance, 0 when it is not ramping.
func (b *Backend) effective(m *Member, now time.Time) (w, maxconn int, wait time.Duration) {
	w, maxconn = m.State.Weight(m.Weight), m.MaxConn
	if rt := m.State.maxConn.Load(); rt >= 0 {
		maxconn = int(rt)
	}
	if w == 0 || m.SlowStart <= 0 {
		return w, maxconn, 0
	}
	from := m.State.rampFrom.Load()
	if from == 0 {
		return w, maxconn, 0
	}
	elapsed := now.Sub(time.Unix(0, from))
	if elapsed >= m.SlowStart || elapsed < 0 {
		return w, maxconn, 0
	}
	// Rounded up, at least 1, so the server takes some traffic at once.
	ramp := func(v int) int {
		return max(int((int64(v)*int64(elapsed)+int64(m.SlowStart)-1)/int64(m.SlowStart)), 1)
	}
	if !b.spec.Static() {
		w = ramp(w)
	}
	if maxconn > 0 {
		maxconn = ramp(maxconn)
	}
	// HAProxy steps every 5% of the period, at least every second; halo
	// steps more finely for short periods.
	step := max(m.SlowStart/20, 100*time.Millisecond)
	return w, maxconn, min(step, m.SlowStart-elapsed)
}

// Close detaches the backend from its servers' state changes.
func (b *Backend) Close() {
	b.mu.Lock()
	b.closed = true
	if b.ramp != nil {
		b.ramp.Stop()
		b.ramp = nil
	}
	b.mu.Unlock()
	for _, m := range b.members {
		m.State.unobserve(b)
		if ref := m.State.live.Load(); ref != nil && ref.backend == b {
			m.State.live.CompareAndSwap(ref, nil)
		}
	}
}
