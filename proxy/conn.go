package proxy

import (
	"net"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"
)

// serve handles one accepted client connection, on the worker the accept
// loop handed it to: the connection preamble, then the frontend's mode. In
// mode http it serves with the fasthttp server generation live now, not the
// one of the snapshot that accepted the connection: a reload may have
// replaced it since. When the connection ends it releases slots; one that
// parks (parking.go) takes them along.
//
// It is the connection's last boundary for a panic (recover.go): one that
// its request or session did not recover ends the connection there
// (connPanicked), with what follows here released.
//
// Its frame is part of every request's stack: one defer only, and
// the work of admission in functions that are not inlined, so that
// connections stay on small stacks.
func (fe *frontend) serve(c *net.TCPConn, side *bindSide, slots connSlots) {
	fe.active.Add(1)
	fe.state.MaxConns.Note(fe.state.CurConns.Add(1))
	fe.state.TotalConns.Add(1)
	var gc *guardConn
	defer func() {
		if r := recover(); r != nil {
			fe.connPanicked(r, c, gc)
			slots.release()
		}
	}()
	if fe.cfg.Mode != config.ModeHTTP {
		fe.serveTCPConn(c, side)
	} else if gc = fe.admitHTTP(c, side); gc != nil {
		if fe.serveHTTP(gc, slots) {
			return // parked, still open
		}
		gc = nil // back in its pool
	}
	fe.state.CurConns.Add(-1)
	fe.active.Add(-1)
	slots.release()
}

// serveHTTP serves gc's requests with the generation live now until the
// connection ends, then frees gc (and ends the connection's rules' Txn),
// or until it parks, which serveHTTP reports: gc is the parking set's then.
func (fe *frontend) serveHTTP(gc *guardConn, slots connSlots) (parked bool) {
	// nil h: a reload switched the frontend to mode tcp after this
	// connection was accepted under mode http. A generation that no
	// longer takes connections was replaced by a reload since we loaded
	// it: the replacement takes this one.
	h := fe.state.http.Load()
	for h != nil && !h.conns.add(gc.Conn) {
		if next := fe.state.http.Load(); next != h {
			h = next
		} else {
			h = nil
		}
	}
	if h == nil {
		gc.Conn.Close() // or a retired generation past hard-stop-after
		gc.free()
		return false
	}
	gc.served = h
	gc.g.Reset(h.settings.limits)
	_ = h.srv.ServeConn(gc)
	h.conns.remove(gc.Conn)
	if gc.parked.Load() {
		gc.parked.Store(false)
		if fe.state.parking.park(fe, gc, slots) {
			return true
		}
		gc.Conn.Close()
	}
	gc.free()
	return false
}

// resumeHTTP serves a parked connection that became readable, on a
// worker, as serve would have gone on serving it.
func (fe *frontend) resumeHTTP(gc *guardConn, slots connSlots) {
	defer func() {
		if r := recover(); r != nil {
			fe.connPanicked(r, gc.Conn.(*net.TCPConn), gc)
			slots.release()
		}
	}()
	gc.start = time.Now()
	gc.closeNext = gc.served != nil && gc.served.retiring.Load()
	// The grace's deadline, long past, is still set: fasthttp sets its
	// own for a first request only with timeout http-request or client.
	_ = gc.Conn.SetReadDeadline(time.Time{})
	if fe.serveHTTP(gc, slots) {
		return
	}
	fe.state.CurConns.Add(-1)
	fe.active.Add(-1)
	slots.release()
}

// endParked closes a parked connection that its keep-alive timeout, a
// shutdown or its frontend's retirement ended, silently, as fasthttp
// closes an idle one.
func (fe *frontend) endParked(gc *guardConn, slots connSlots) {
	gc.Conn.Close()
	gc.free()
	fe.state.CurConns.Add(-1)
	fe.active.Add(-1)
	slots.release()
}

// admitHTTP admits a mode http connection (admitConn) and wraps it in the
// guard fasthttp reads it through, which holds the connection's rules'
// Txn. Nil: refused, closed. Not inlined, as admitConn.
//
//go:noinline
func (fe *frontend) admitHTTP(c *net.TCPConn, side *bindSide) *guardConn {
	conn, ct := fe.admitConn(c, side)
	if conn == nil {
		return nil
	}
	return newGuardConn(conn, fe.state, ct)
}

// serveTCPConn admits a mode tcp connection (admitConn) and proxies it.
func (fe *frontend) serveTCPConn(c *net.TCPConn, side *bindSide) {
	if conn, ct := fe.admitConn(c, side); conn != nil {
		fe.serveTCP(conn, ct) // and ends ct
	}
}

// admitConn runs a connection's tcp-request connection rules, its preamble
// and its tcp-request session rules. It returns the connection (nil:
// refused, closed) and its rules' Txn (connTxn), which the mode's
// handler ends. Not inlined: its work stays out of serve's frame, which
// every request's stack holds.
//
//go:noinline
func (fe *frontend) admitConn(c *net.TCPConn, side *bindSide) (net.Conn, *rules.Txn) {
	ct := fe.connTxn(c)
	admitted := false
	// The Txn is ended here unless the connection is admitted with it:
	// when it is refused, and in a panic, which goes on to serve's
	// recover.
	defer func() {
		if !admitted {
			endConnTxn(ct)
		}
	}()
	var conn net.Conn
	if fe.acceptConn(c, ct) {
		conn = fe.preamble(c, side, ct != nil && ct.ExpectProxy)
	}
	if h := panicHook.Load(); h != nil && conn != nil {
		(*h)(hookPreamble, conn)
	}
	if conn != nil && !fe.acceptSession(conn, ct) {
		conn = nil
	}
	if conn == nil {
		return nil, nil
	}
	admitted = true
	return conn, ct
}

// preamble readies an accepted connection for the mode's handler. It runs
// on the worker, after the accept loop and its maxconn gating have let the
// connection in, so that work done here (a PROXY header to read, a TLS
// handshake, per bind) never holds up accepting: it sets the client's TCP
// keep-alive ("option clitcpka"), then runs the bind's side (accept);
// expectProxy: a tcp-request connection rule asks for a PROXY header. It
// returns nil for a connection the bind refused, which is closed.
//
// It returns the connection the handler reads and writes: the socket
// itself while nothing wraps it, which lets mode tcp splice; a wrapper
// (TLS, a reader holding bytes read past a PROXY header) takes the relay's
// buffered path instead.
func (fe *frontend) preamble(c *net.TCPConn, side *bindSide, expectProxy bool) net.Conn {
	if fe.cfg.Options.CliTCPKA {
		_ = c.SetKeepAlive(true)
	}
	return fe.accept(c, side, expectProxy)
}
