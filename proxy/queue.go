package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
)

// Errors of a session that found every eligible server full.
var (
	errQueueTimeout = errors.New("timed out in the queue waiting for a server slot")
	errQueueFull    = errors.New("every server is full and so is its queue")
)

// queue holds the sessions waiting for a server slot when servers are at
// their maxconn, as HAProxy's queues do: one for sessions any server may
// take, and one per server for sessions whose key maps to that server
// (hashing). A freed slot goes to the oldest session that can use it, so
// positions are fair (FIFO) across both.
//
// Concurrency: the hot path reads only the atomic waiting count; everything
// else runs under mu, and only while servers are full.
type queue struct {
	pool    *balancer.Backend
	timeout time.Duration // 0: wait as long as it takes
	waiting atomic.Int32

	mu      sync.Mutex
	ticket  uint64
	any     waitList
	servers []waitList // by member
	// maxQueue bounds each server's list (0: no bound); the list for any
	// server is bounded by their sum when every member has a bound.
	maxQueue []int
	members  []balancer.Member
	counters *balancer.Counters // the backend's, for qmax
}

type waitList struct {
	head, tail *waiter
	n          int
}

// waiter is one queued session. ready receives the member whose slot it was
// given, or -1 when it must pick again (its server left the pool).
type waiter struct {
	ready      chan int
	ticket     uint64
	member     int // the server it waits for, or -1 for any
	prev, next *waiter
	queued     bool
	// direct: persistence sends it to member, which may be outside the
	// pool (draining, or DOWN under option persist).
	direct bool
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ready: make(chan int, 1)} }}

func newQueue(pool *balancer.Backend, members []balancer.Member, maxQueue []int, timeout time.Duration, counters *balancer.Counters) *queue {
	// The caller sets the pool's OnChange to call redistribute.
	return &queue{pool: pool, timeout: timeout, servers: make([]waitList, len(members)), maxQueue: maxQueue, members: members, counters: counters}
}

// acquire returns a member with a slot counted for the session, waiting in
// the queue when every eligible server is full. waited is the time spent
// queued.
func (q *queue) acquire(key uint64, hasKey bool) (member int, waited time.Duration, err error) {
	if q.waiting.Load() == 0 {
		i, r := q.pool.Acquire(key, hasKey)
		switch r {
		case balancer.Assigned:
			return i, 0, nil
		case balancer.NoServer:
			return -1, 0, errNoServer
		}
	}
	return q.wait(key, hasKey)
}

func (q *queue) wait(key uint64, hasKey bool) (int, time.Duration, error) {
	start := time.Now()
	var deadline <-chan time.Time
	if q.timeout > 0 {
		t := time.NewTimer(q.timeout)
		defer t.Stop()
		deadline = t.C
	}
	w := waiterPool.Get().(*waiter)
	defer waiterPool.Put(w)
	w.direct = false
	for {
		q.mu.Lock()
		i, r := q.pool.Acquire(key, hasKey)
		target := -1
		switch r {
		case balancer.NoServer:
			q.mu.Unlock()
			return -1, time.Since(start), errNoServer
		case balancer.Assigned:
			// Someone queued before us may use this slot: they get it,
			// and we take our place behind them.
			if older := q.oldestFor(i); older == nil {
				q.mu.Unlock()
				return i, time.Since(start), nil
			} else {
				q.handOver(older, i)
			}
			if hasKey && q.pool.Spec().Hashed() {
				target = i
			}
		case balancer.ServerFull:
			target = i
		}
		if !q.enqueue(w, target) {
			q.mu.Unlock()
			return -1, time.Since(start), errQueueFull
		}
		q.mu.Unlock()
		select {
		case i := <-w.ready:
			if i >= 0 {
				return i, time.Since(start), nil
			}
			// The server it waited for left the pool: pick again.
		case <-deadline:
			q.mu.Lock()
			if w.queued {
				q.remove(w)
				q.mu.Unlock()
				return -1, time.Since(start), errQueueTimeout
			}
			q.mu.Unlock()
			// Given a slot (or a retry) as the timer fired.
			if i := <-w.ready; i >= 0 {
				return i, time.Since(start), nil
			}
			return -1, time.Since(start), errQueueTimeout
		}
	}
}

// errLeftPool: the server a persistent session waited for left the pool;
// it is balanced normally instead.
var errLeftPool = errors.New("the persistent server left the pool")

// acquireDirect takes a slot on member i for a session that persistence
// sends there, waiting in i's own queue when the server is full, as
// HAProxy queues a persistent request on its server.
func (q *queue) acquireDirect(i int) (time.Duration, error) {
	if q.waiting.Load() == 0 && q.pool.TryAcquireDirect(i) {
		return 0, nil
	}
	return q.waitDirect(i)
}

func (q *queue) waitDirect(i int) (time.Duration, error) {
	start := time.Now()
	q.mu.Lock()
	if q.servers[i].head == nil && q.pool.TryAcquireDirect(i) {
		q.mu.Unlock()
		return 0, nil
	}
	w := waiterPool.Get().(*waiter)
	defer waiterPool.Put(w)
	w.direct = true
	if !q.enqueue(w, i) {
		q.mu.Unlock()
		return time.Since(start), errQueueFull
	}
	q.mu.Unlock()
	var deadline <-chan time.Time
	if q.timeout > 0 {
		t := time.NewTimer(q.timeout)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case got := <-w.ready:
		if got < 0 {
			return time.Since(start), errLeftPool
		}
		return time.Since(start), nil
	case <-deadline:
		q.mu.Lock()
		if w.queued {
			q.remove(w)
			q.mu.Unlock()
			return time.Since(start), errQueueTimeout
		}
		q.mu.Unlock()
		if got := <-w.ready; got >= 0 {
			return time.Since(start), nil
		}
		return time.Since(start), errLeftPool
	}
}

// release frees a session's slot on member i and gives it to the oldest
// session waiting for it, if any.
func (q *queue) release(i int) {
	q.pool.Release(i)
	if q.waiting.Load() > 0 {
		q.mu.Lock()
		q.dispatch(i)
		q.mu.Unlock()
	}
}

// dispatch hands member i's free slots to the oldest sessions that can use
// them. Called with mu held.
func (q *queue) dispatch(i int) {
	for {
		w := q.oldestFor(i)
		if w != nil && w.member < 0 && !q.pool.Usable(i) {
			// A server outside the pool serves only the sessions that
			// persistence sends to it.
			w = q.servers[i].head
		}
		if w == nil {
			return
		}
		if w.direct && !q.pool.TryAcquireDirect(i) || !w.direct && !q.pool.TryAcquire(i) {
			return
		}
		q.handOver(w, i)
	}
}

// redistribute runs after every change of the pool: servers that became
// usable take waiting sessions, and sessions waiting for a server that left
// the pool, or for any server when none is left, pick again.
func (q *queue) redistribute() {
	if q.waiting.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pool.UsableCount() == 0 {
		// Nothing left to wait for: every session picks again and gets
		// its 503 or close now rather than at its timeout.
		for w := q.any.head; w != nil; w = q.any.head {
			q.remove(w)
			w.ready <- -1
		}
	}
	for i := range q.servers {
		if !q.pool.Usable(i) {
			for w := q.servers[i].head; w != nil; w = q.servers[i].head {
				q.remove(w)
				w.ready <- -1
			}
			continue
		}
		q.dispatch(i)
	}
}

// oldestFor is the longest-waiting session that a slot on member i can
// serve: the head of i's own list or of the list for any server.
func (q *queue) oldestFor(i int) *waiter {
	a, s := q.any.head, q.servers[i].head
	switch {
	case a == nil:
		return s
	case s == nil:
		return a
	case s.ticket < a.ticket:
		return s
	}
	return a
}

func (q *queue) handOver(w *waiter, i int) {
	q.remove(w)
	w.ready <- i
}

// enqueue appends w to the list for member target (-1: any server), unless
// that list is at its bound.
func (q *queue) enqueue(w *waiter, target int) bool {
	list := &q.any
	if target >= 0 {
		list = &q.servers[target]
		if limit := q.maxQueue[target]; limit > 0 && list.n >= limit {
			return false
		}
	} else if limit := q.anyLimit(); limit > 0 && list.n >= limit {
		return false
	}
	q.ticket++
	w.ticket, w.member, w.queued, w.next = q.ticket, target, true, nil
	w.prev = list.tail
	if list.tail != nil {
		list.tail.next = w
	} else {
		list.head = w
	}
	list.tail = w
	list.n++
	q.waiting.Add(1)
	if target >= 0 {
		q.members[target].State.MaxQueued.Note(int64(list.n))
	} else {
		q.counters.MaxQueued.Note(int64(list.n))
	}
	return true
}

func (q *queue) remove(w *waiter) {
	list := &q.any
	if w.member >= 0 {
		list = &q.servers[w.member]
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		list.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		list.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	list.n--
	q.waiting.Add(-1)
}

// anyLimit is the bound of the list for any server: the sum of the usable
// servers' maxqueue when every one has a bound, otherwise none.
func (q *queue) anyLimit() int {
	sum := 0
	for i, m := range q.maxQueue {
		if !q.pool.Usable(i) {
			continue
		}
		if m == 0 {
			return 0
		}
		sum += m
	}
	return sum
}

// lengths returns how many sessions wait for member i and for any server,
// for the access log.
func (q *queue) lengths(i int) (server, backend int) {
	if q.waiting.Load() == 0 {
		return 0, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if i >= 0 {
		server = q.servers[i].n
	}
	return server, q.any.n
}
