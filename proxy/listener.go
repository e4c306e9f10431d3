package proxy

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// listener is one bound socket. It outlives snapshots: a reload that keeps
// its address only repoints frontend, so no connection is ever refused.
type listener struct {
	key      string
	ln       *net.TCPListener
	frontend atomic.Pointer[frontend]
	closed   atomic.Bool
	global   *limiter
}

func (l *listener) close() {
	l.closed.Store(true)
	l.ln.Close()
	// Wake the accept loop if it is waiting for a maxconn slot.
	l.global.wake()
	if fe := l.frontend.Load(); fe != nil {
		fe.state.limit.wake()
	}
}

// serve is the accept loop. It takes a global and a frontend maxconn slot
// before accepting, so that at the limit new connections wait in the kernel
// backlog, and hands each connection to the frontend live at accept time.
func (l *listener) serve(p *Proxy) {
	aborted := l.closed.Load
	var backoff time.Duration
	for {
		if !l.global.acquire(aborted) {
			return
		}
		fe := l.frontend.Load()
		if !fe.state.limit.acquire(aborted) {
			l.global.release()
			return
		}
		c, err := l.ln.AcceptTCP()
		if err != nil {
			fe.state.limit.release()
			l.global.release()
			if l.closed.Load() {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if ce := p.log.Check(zap.ErrorLevel, "accept failed"); ce != nil {
				ce.Write(zap.String("bind", l.key), zap.Error(err), zap.Duration("retry_in", backoff))
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// The frontend may have been replaced while we waited for a slot;
		// the slot belongs to the frontend state, which a reload keeps.
		cur := l.frontend.Load()
		if cur.state != fe.state {
			fe.state.limit.release()
			cur.state.limit.n.Add(1)
		}
		p.conns.Add(1)
		p.workers.run(func() {
			defer p.conns.Done()
			defer l.global.release()
			defer cur.state.limit.release()
			cur.serve(c)
		})
	}
}

// listenerFor returns the running listener for bind, or opens a new one.
func (p *Proxy) listenerFor(bind string) (l *listener, isNew bool, err error) {
	host, port, _ := net.SplitHostPort(bind)
	if host == "*" {
		host = ""
	}
	addr := net.JoinHostPort(host, port)
	// Port 0 asks the kernel for a free port, so it is never "the same
	// address" as a running listener.
	if port != "0" {
		if l := p.listeners[addr]; l != nil {
			return l, false, nil
		}
	}
	// Accepted connections get no TCP keep-alive probes unless "option
	// clitcpka" asks (as in HAProxy); Go's default would cost four
	// setsockopt calls per connection.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("binding %s: %w", bind, err)
	}
	key := addr
	if port == "0" {
		key = ln.Addr().String()
	}
	return &listener{key: key, ln: ln.(*net.TCPListener), global: p.global}, true, nil
}
