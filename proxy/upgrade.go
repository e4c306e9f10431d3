package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// This file is the proxy's side of a binary upgrade: its listening sockets
// pass to the new process, which takes them for the binds of the same
// address and options, so that no connection is refused at any instant;
// then the old proxy hands over (Handover): it stops accepting and lets
// its connections finish, kept-alive ones after one more response.

// ListenerName is the name a listening socket passes to the next process
// under: its address and the socket options set on it that are not the
// defaults, so that the next process takes it only for a bind with the
// same address and options (the options act on the socket and stay with
// it). An option added to halo later is absent from the name while it has
// its default, so names stay the same from one version to the next.
func ListenerName(key listenerKey) string {
	var b strings.Builder
	b.WriteString("tcp " + key.addr)
	o := key.opts
	for _, opt := range []struct {
		on   bool
		word string
	}{{o.V4V6, "v4v6"}, {o.V6Only, "v6only"}, {o.Transparent, "transparent"}, {o.FreeBind, "freebind"}} {
		if opt.on {
			b.WriteString(" " + opt.word)
		}
	}
	if o.Interface != "" {
		b.WriteString(" interface=" + o.Interface)
	}
	return b.String()
}

// Inherit has the proxy take the listening sockets a previous process
// passed on: for each bind it opens, the next Apply first asks inherited
// for the socket of the bind's name (ListenerName), and listens anew only
// when there is none. Call it before the first Apply.
func (p *Proxy) Inherit(inherited func(name string) (*net.TCPListener, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inherit = inherited
}

// inherited returns the socket a previous process passed on for key, or
// nil. One that no longer listens (a reload of that process removed its
// bind after a failed upgrade had copied it) or is bound elsewhere is
// closed and not taken.
func (p *Proxy) inherited(key listenerKey) *net.TCPListener {
	if p.inherit == nil || strings.HasSuffix(key.addr, ":0") {
		return nil
	}
	name := ListenerName(key)
	ln, err := p.inherit(name)
	if err != nil || ln == nil {
		if err != nil {
			p.log.Warn("cannot take a listening socket of the previous process; opening a new one", zap.String("bind", key.addr), zap.Error(err))
		}
		return nil
	}
	if !listening(ln) || ln.Addr().String() != key.addr {
		p.log.Warn("the previous process passed a socket that no longer listens there; opening a new one", zap.String("socket", name), zap.String("bound", ln.Addr().String()))
		ln.Close()
		return nil
	}
	return ln
}

// PassedListener is a listening socket for the next process, by name.
type PassedListener struct {
	Name     string
	Listener *net.TCPListener
}

// PassListeners returns every listening socket of the live configuration, for
// a binary upgrade to pass on.
func (p *Proxy) PassListeners() []PassedListener {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PassedListener, 0, len(p.listeners))
	for _, l := range p.listeners {
		out = append(out, PassedListener{Name: ListenerName(l.key), Listener: l.ln})
	}
	return out
}

// Handover ends this process's part once the next one serves the same
// sockets. It stops accepting (the sockets stay open in the next process,
// so connections waiting in their backlog are its to accept) and lets the
// connections being served finish: in mode http each finishes its current
// request, and a kept-alive one serves one more, answered with
// "Connection: close", rather than being closed while idle, which a client
// sending on it at that moment would see as a failed request; one that
// stays idle closes at its keep-alive timeout, as always. It returns when
// every connection has ended, or when ctx is done (hard-stop-after) with
// ctx's error; the caller then exits, closing what is left.
func (p *Proxy) Handover(ctx context.Context) error {
	// This descriptor only: the next process listens on.
	checks := p.stopAccepting((*listener).close, true)
	// The next process checks the servers now; this one's verdicts would
	// only move its own pools, which take no new connections.
	for _, c := range checks {
		c.stop()
	}
	done := make(chan struct{})
	go func() {
		p.acceptLoops.Wait() // stopped above: no more conns.Add
		p.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		p.parking.shutdown()        // what is still parked closes, as the process exits
		p.workers.close(time.Now()) // the idle ones now, the busy ones as they finish
		return fmt.Errorf("connections still open at hard-stop-after: %w", ctx.Err())
	}
	// Every connection has ended: stop the servers' idle machinery.
	var wg sync.WaitGroup
	p.httpMu.Lock()
	for srv := range p.httpServers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.shutdown(ctx)
		}()
	}
	p.httpMu.Unlock()
	wg.Wait()
	if s := p.current.Load(); s != nil {
		s.closeServerConns() // the idle kept-alive ones, as Shutdown does
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	p.parking.shutdown() // nothing is parked any more: stop its loop
	p.workers.close(deadline)
	return nil
}
