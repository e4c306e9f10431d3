package proxy

import (
	"sync"
	"sync/atomic"
)

// limiter is a counting semaphore for maxconn. Taking and returning a slot
// is a compare-and-swap and an atomic add; only a caller that finds the
// limit reached takes the mutex and sleeps, as HAProxy stops accepting once
// maxconn is reached and lets the kernel backlog hold new connections.
type limiter struct {
	n, max  atomic.Int64
	waiters atomic.Int64
	mu      sync.Mutex
	cond    *sync.Cond
	// freed, when set, is told of every release: the global limiter's
	// slot is released when a connection has ended and its descriptor is
	// free, which accept loops backing off at the descriptor limit wait
	// for (see listener.serve).
	freed *endSignal
}

func newLimiter(max int) *limiter {
	l := &limiter{}
	l.cond = sync.NewCond(&l.mu)
	l.setMax(max)
	return l
}

// setMax changes the limit (0 means unlimited) and wakes any waiter that
// the new limit lets through.
func (l *limiter) setMax(max int) {
	if max <= 0 {
		max = 1 << 62
	}
	l.max.Store(int64(max))
	l.wake()
}

func (l *limiter) tryAcquire() bool {
	for {
		cur := l.n.Load()
		if cur >= l.max.Load() {
			return false
		}
		if l.n.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

// acquire takes a slot, waiting while the limit is reached. It gives up and
// returns false once abort reports true; whoever sets abort calls wake.
func (l *limiter) acquire(abort func() bool) bool {
	if l.tryAcquire() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		if abort() {
			return false
		}
		if l.tryAcquire() {
			return true
		}
		l.cond.Wait()
	}
}

// release gives back the slot of a connection that ended.
func (l *limiter) release() {
	l.cancel()
	if l.freed != nil {
		l.freed.notify()
	}
}

// cancel gives back a slot taken for a connection that never came (the
// accept failed): no descriptor was freed, so freed is not told, or two
// accept loops backing off at the descriptor limit would wake each other
// without end.
func (l *limiter) cancel() {
	l.n.Add(-1)
	if l.waiters.Load() > 0 {
		l.mu.Lock()
		l.cond.Signal()
		l.mu.Unlock()
	}
}

// wake makes every waiter re-check its abort condition and the limit.
func (l *limiter) wake() {
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *limiter) current() int64 { return l.n.Load() }
