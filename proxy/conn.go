package proxy

import (
	"net"

	"github.com/halo-lb/halo/config"
)

// serve handles one accepted client connection, on the worker the accept
// loop handed it to: the connection preamble, then the frontend's mode. In
// mode http it serves with the fasthttp server generation live now, not the
// one of the snapshot that accepted the connection: a reload may have
// replaced it since.
//
// Its frame is part of every request's stack, which an idle kept-alive
// connection keeps at its deepest size (see handleHTTP): no defers, and
// the mode http path written out here rather than in a function of its
// own, so that idle connections stay on 4 KiB stacks.
func (fe *frontend) serve(c *net.TCPConn, side *bindSide) {
	fe.active.Add(1)
	fe.state.MaxConns.Note(fe.state.CurConns.Add(1))
	fe.state.TotalConns.Add(1)
	var conn net.Conn
	if fe.acceptConn(c) {
		conn = fe.preamble(c, side)
	}
	if conn != nil && !fe.acceptSession(conn) {
		conn = nil
	}
	switch {
	case conn == nil:
		// Refused by tcp-request connection or session rules, or by the
		// bind (a bad PROXY header, a failed handshake), and closed.
	case fe.cfg.Mode == config.ModeHTTP:
		// nil: a reload switched the frontend to mode tcp after this
		// connection was accepted under mode http.
		h := fe.state.http.Load()
		if h != nil && h.conns.add(conn) {
			gc := newGuardConn(conn, fe.state, h.settings.limits)
			_ = h.srv.ServeConn(gc)
			h.conns.remove(conn)
			gc.free()
		} else {
			conn.Close() // or a retired generation past hard-stop-after
		}
	default:
		fe.serveTCP(conn)
	}
	fe.state.CurConns.Add(-1)
	fe.active.Add(-1)
}

// preamble readies an accepted connection for the mode's handler. It runs
// on the worker, after the accept loop and its maxconn gating have let the
// connection in, so that work done here (a PROXY header to read, a TLS
// handshake, per bind) never holds up accepting: it sets the client's TCP
// keep-alive ("option clitcpka"), then runs the bind's side (accept). It
// returns nil for a connection the bind refused, which is closed.
//
// It returns the connection the handler reads and writes: the socket
// itself while nothing wraps it, which lets mode tcp splice; a wrapper
// (TLS, a reader holding bytes read past a PROXY header) takes the relay's
// buffered path instead.
func (fe *frontend) preamble(c *net.TCPConn, side *bindSide) net.Conn {
	if fe.cfg.Options.CliTCPKA {
		_ = c.SetKeepAlive(true)
	}
	return fe.accept(c, side)
}
