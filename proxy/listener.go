package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
)

// listener is one bound socket. It outlives snapshots: a reload that keeps
// its address only repoints frontend, so no connection is ever refused.
type listener struct {
	key      listenerKey
	ln       *net.TCPListener
	frontend atomic.Pointer[frontend]
	// side is the live snapshot's accept side for this bind (TLS, PROXY
	// header).
	side   atomic.Pointer[bindSide]
	closed atomic.Bool
	global *limiter
	// waitingFor is the frontend state whose maxconn slot the accept loop
	// waits for; only the accept loop touches it.
	waitingFor *frontendState
}

// waitAborted ends the accept loop's wait for a frontend slot when the
// listener closes, or when a reload gave the listener to another frontend
// (a renamed one, or a bind moved), whose slots are another limiter's: the
// old frontend's may never free up. Apply wakes the old limiter.
func (l *listener) waitAborted() bool {
	return l.closed.Load() || l.frontend.Load().state != l.waitingFor
}

func (l *listener) close() {
	l.closed.Store(true)
	l.ln.Close()
	l.wake()
}

// closeForGood closes a listener a reload removed: the socket stops
// listening even where a copy of its descriptor lives on (stopListening).
func (l *listener) closeForGood() {
	l.closed.Store(true)
	stopListening(l.ln)
	l.ln.Close()
	l.wake()
}

func (l *listener) wake() {
	// Wake the accept loop if it is waiting for a maxconn slot.
	l.global.wake()
	if fe := l.frontend.Load(); fe != nil {
		fe.state.limit.wake()
	}
}

// serve is the accept loop. It takes a frontend and a global maxconn slot
// before accepting, so that at the limit new connections wait in the kernel
// backlog, and hands each connection to the frontend live at accept time.
//
// The frontend's slot comes first: a loop waiting for it must hold no
// global slot, or a frontend at its maxconn (with idle kept-alive clients,
// for as long as they idle) would keep one of the global slots from every
// other frontend. A loop waiting for a global slot holds one of its own
// frontend's, which only that frontend's loops could use, and they wait
// for a global slot too.
func (l *listener) serve(p *Proxy) {
	aborted, repointed := l.closed.Load, l.waitAborted
	var backoff time.Duration
	for {
		fe := l.frontend.Load()
		l.waitingFor = fe.state
		if !fe.state.limit.acquire(repointed) {
			if l.closed.Load() {
				return
			}
			continue // now another frontend's listener: wait for its slot
		}
		if !l.global.acquire(aborted) {
			fe.state.limit.release()
			return
		}
		c, err := l.ln.AcceptTCP()
		if err != nil {
			fe.state.limit.cancel()
			l.global.cancel()
			if l.closed.Load() {
				return
			}
			// Out of file descriptors and the like: back off as net/http
			// does, so the loop does not spin on an error that persists,
			// but try again as soon as a connection ends and frees its
			// descriptors, as HAProxy resumes a listener it paused at the
			// limit (measured: a client waiting in the backlog was
			// accepted up to the whole second later without this).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if ce := p.log.Check(zap.ErrorLevel, "accept failed"); ce != nil {
				ce.Write(zap.String("bind", l.key.addr), zap.Error(err), zap.Duration("retry_in", backoff))
			}
			p.connEnded.wait(backoff)
			continue
		}
		backoff = 0
		// The frontend may have been replaced while we waited for a slot;
		// the slot belongs to the frontend state, which a reload keeps.
		cur, side := l.frontend.Load(), l.side.Load()
		if cur.state != fe.state {
			fe.state.limit.release()
			cur.state.limit.n.Add(1)
		}
		p.conns.Add(1)
		slots := connSlots{p: p, global: l.global, frontend: cur.state.limit}
		p.workers.run(func() {
			// serve ends the connection and releases its slots (the
			// global one's release tells connEnded), or parks it with
			// them.
			cur.serve(c, side, slots)
		})
	}
}

// listenerKey identifies a listening socket across reloads: its address and
// the options that act on the socket. A bind with a running listener's key
// reuses that socket, so no connection waiting in its backlog is lost.
type listenerKey struct {
	addr string
	opts config.SocketOptions
}

// listenerKeyOf is the key a listener for bind has (but for port 0).
func listenerKeyOf(bind config.Bind) listenerKey { return listenerKey{bind.Address, bind.Socket} }

// runningListener returns the running listener for bind, or nil. Port 0
// asks the kernel for a free port, so it is never "the same address" as a
// running listener.
func (p *Proxy) runningListener(bind config.Bind) *listener {
	if strings.HasSuffix(bind.Address, ":0") {
		return nil
	}
	return p.listeners[listenerKeyOf(bind)]
}

// listen opens a new listener for bind.
func (p *Proxy) listen(bind config.Bind) (*listener, error) {
	// An IPv4 address, the wildcard 0.0.0.0 included, takes IPv4 only, as
	// in HAProxy (Go's "tcp" would make 0.0.0.0 a dual-stack socket); an
	// IPv6 one follows v6only (see setSocketOptions).
	network := "tcp4"
	if strings.HasPrefix(bind.Address, "[") {
		network = "tcp6"
	}
	// Accepted connections get no TCP keep-alive probes unless "option
	// clitcpka" asks (as in HAProxy); Go's default would cost four
	// setsockopt calls per connection.
	key := listenerKeyOf(bind)
	if ln := p.inherited(key); ln != nil {
		return &listener{key: key, ln: ln, global: p.global}, nil
	}
	lc := net.ListenConfig{KeepAlive: -1, Control: socketControl(bind.Socket, network == "tcp6")}
	ln, err := lc.Listen(context.Background(), network, bind.Address)
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", bind.Address, err)
	}
	if strings.HasSuffix(bind.Address, ":0") {
		key.addr = ln.Addr().String()
	}
	return &listener{key: key, ln: ln.(*net.TCPListener), global: p.global}, nil
}

// socketControl applies a bind's socket options to its socket before it is
// bound.
func socketControl(opts config.SocketOptions, ipv6 bool) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setSocketOptions(int(fd), opts, ipv6) }); err != nil {
			return err
		}
		return serr
	}
}

// endSignal wakes the accept loops that back off after a failed accept
// when a client connection ends. Notifying costs one atomic load while no
// loop waits, which is nearly always.
type endSignal struct {
	waiting atomic.Bool
	mu      sync.Mutex
	ch      chan struct{} // closed by notify; nil while no loop waits
}

// wait returns after d, or earlier once a connection ends.
func (s *endSignal) wait(d time.Duration) {
	s.mu.Lock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		s.waiting.Store(true)
	}
	ch := s.ch
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// notify wakes every waiting loop. The global limiter calls it as each
// connection ends, once the connection is closed: not the worker's
// closure, whose frame is part of every request's stack (see
// frontend.serve), and 32 bytes more there took idle connections from 4
// KiB stacks to 8 KiB.
func (s *endSignal) notify() {
	if !s.waiting.Load() {
		return
	}
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
		s.waiting.Store(false)
	}
	s.mu.Unlock()
}
