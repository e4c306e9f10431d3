package proxy

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/halo-lb/halo/internal/panics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Crash safety: a panic while a connection or a request is served ends
// that connection or answers that request, releases what it held, is
// counted (package panics, and eint of the frontend, backend and server)
// and logged once with the connection, and leaves the process serving
// everyone else.
//
// Releasing is the owner's: what a function takes it gives back in a
// deferred call, or its recover knows from the state it keeps (the
// exchange of a request, the session of an L4 connection) what is still
// held. Each goroutine of the data path has one boundary that recovers:
//
//	handleHTTP (endRequest)   a request: answered 500 (HAProxy's internal error, termination I), or
//	                          closed if a tunnel had started; its slot, session, Txn and captures released
//	serveTCP (recoverTCP)     an L4 session: closed, its tcplog line with termination I
//	relay's second direction  the client-to-server copy on its own worker: both sides closed (ID)
//	bodyStream Read and Close a response body fasthttp streams after the handler returned
//	serve                     everything else on a connection's worker: the preamble, the
//	                          connection's rules, fasthttp and the guard reading requests, its error handler
//
// A recovered panic is a bug: as HAProxy says of its internal errors, it
// should never happen, and a process that saw one may be worth restarting
// once convenient (docs/operations.md).

// exchanges holds the requests' exchanges: one is a request's from
// handleHTTP's start until its endRequest.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// hookPoint names a point of the data path where panicHook is called.
type hookPoint uint8

const (
	hookRules       hookPoint = iota + 1 // admit: the request's rules ran (what they track is held), before routing (subject: the RequestCtx)
	hookRequest                          // handleHTTP: a server slot is held, nothing sent yet (the RequestCtx)
	hookResponse                         // handleHTTP: the response head arrived, its body may stream (the RequestCtx)
	hookStreamRead                       // bodyStream.Read: a body streams to the client (the *bodyStream)
	hookStreamClose                      // bodyStream.Close, before the access line (the RequestCtx)
	hookClientError                      // fasthttp's error handler, outside handleHTTP (the RequestCtx)
	hookPreamble                         // admitConn: after the preamble (the client connection)
	hookTCP                              // serveTCP: connected to the server, before the relay (the client connection)
	hookRelay                            // relay: the client-to-server copy, on its own worker (the client connection)
)

// panicHook is crash safety's test seam: nothing a client or a server can
// send makes halo panic on purpose, so tests store here a function that
// panics at the points (and for the requests or connections) they choose,
// to prove that the panic is recovered, counted and released. Production
// code never stores one; unset, each point costs an atomic load and a
// branch.
var panicHook atomic.Pointer[func(hookPoint, any)]

// countInternal counts an internal error in the frontend's eint, and the
// backend's and server's when the work had reached them.
func (fe *frontend) countInternal(be *backend, srv *server) {
	fe.state.InternalErrors.Add(1)
	if be != nil {
		be.counters.InternalErrors.Add(1)
	}
	if srv != nil {
		srv.state.InternalErrors.Add(1)
	}
}

// panicFields are what a panic's log line says of the work that failed.
func (fe *frontend) panicFields(client net.Addr, be *backend, srv *server, more ...zap.Field) []zap.Field {
	fields := append(make([]zap.Field, 0, 4+len(more)), zap.String("frontend", fe.cfg.Name), zap.Stringer("client", client))
	if be != nil {
		fields = append(fields, zap.String("backend", be.cfg.Name))
	}
	if srv != nil {
		fields = append(fields, zap.String("server", srv.cfg.Name))
	}
	return append(fields, more...)
}

// endRequest ends handleHTTP, normally or in a panic, and gives the
// exchange back to its pool. A panic is the request's (requestPanicked).
// It calls recover itself, as recover only stops a panic when the
// deferred function calls it.
func (fe *frontend) endRequest(ctx *fasthttp.RequestCtx, ex *exchange) {
	if r := recover(); r != nil {
		fe.requestPanicked(ctx, ex, r)
	}
	*ex = exchange{}
	exchanges.Put(ex)
}

// requestPanicked answers a request whose handling panicked and releases
// what its exchange still holds. Nothing of the response has left halo
// unless a tunnel started (the handler's response is written once it
// returns): the client gets a 500 and the connection closes, as HAProxy
// answers an internal error; a tunnel's client connection is closed
// instead. The access line says I and the phase the request was in: R
// before a server was chosen, C before its connection was ready, H before
// its response was sent, D in a tunnel.
func (fe *frontend) requestPanicked(ctx *fasthttp.RequestCtx, ex *exchange, r any) {
	be, srv := ex.be, ex.srv
	panics.Recovered(fe.log, "panic handling a request", r, fe.panicFields(ctx.RemoteAddr(), be, srv,
		zap.ByteString("method", ctx.Method()), zap.ByteString("uri", ctx.RequestURI()))...)
	fe.countInternal(be, srv)
	// A body that would have streamed is the handler's again, as when a
	// rule replaces a response: its stream closes only the server's side.
	dropStream(ctx)
	// Released before anything is written: if what failed was the log
	// line, a second panic writing it again must not keep the slot.
	if srv != nil {
		be.queue.release(srv.member)
	}
	if be != nil {
		be.endSession()
	}
	fe.endTxn(ex)
	if ex.body != nil {
		ctx.Request.ResetBody()
		smallBodies.Put(ex.body)
		ex.body = nil
	}
	phase, class := byte('R'), 5
	switch {
	case ex.tunneled:
		phase, class = 'D', 1
		_ = ctx.Conn().Close()
		ctx.Response.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.SkipBody = true
	case srv != nil && ex.connected == 0:
		phase = 'C'
	case srv != nil:
		phase = 'H'
	}
	if !ex.tunneled {
		fe.setError(&ctx.Response, be, fasthttp.StatusInternalServerError, true)
	}
	ctx.SetConnectionClose()
	fe.state.HTTPStatus[class].Add(1)
	if be != nil {
		be.counters.HTTPStatus[class].Add(1)
	}
	if fe.access != nil {
		term := string([]byte{'I', phase, '-', '-'})
		if be != nil && !ex.start.IsZero() {
			fe.logHTTP(ctx, ex, term, false)
		} else {
			fe.logLocal(ctx, be, fasthttp.StatusInternalServerError, term, ex.logLevel, true, ex.caps, ex.start)
		}
	}
	endCaptures(ex.caps)
	ex.caps = nil
}

// connPanicked ends a connection whose worker panicked outside the
// boundaries of its request or session (serve recovered it): in the
// preamble, the connection's rules, fasthttp or the guard reading a
// request, the error handler. The connection closes; what serve would have
// released after it is released here. gc is the connection as fasthttp
// served it, nil before it had one.
func (fe *frontend) connPanicked(r any, c *net.TCPConn, gc *guardConn) {
	panics.Recovered(fe.log, "panic serving a connection", r, fe.panicFields(c.RemoteAddr(), nil, nil)...)
	fe.countInternal(nil, nil)
	if gc != nil {
		if gc.served != nil {
			gc.served.conns.remove(gc.Conn)
		}
		endConnTxn(gc.rules)
		gc.rules = nil
		_ = gc.Conn.Close()
		// Not back to its pool: a panic through ServeConn leaves the
		// connection in the fasthttp server's idle map, whose shutdown
		// closes what it holds. It must stay this closed connection.
	}
	_ = c.Close()
	fe.state.CurConns.Add(-1)
	fe.active.Add(-1)
}

// recoverTCP ends an L4 session whose handler panicked. serveTCP defers it
// first so that it runs last: by then the session's other deferred calls
// have closed both connections and given back the server slot, the
// backend's session and the rules' Txn. It writes the tcplog line with
// termination I, in phase C before the server connection was ready, else
// D.
func (fe *frontend) recoverTCP(c net.Conn, ss *session) {
	r := recover()
	if r == nil {
		return
	}
	panics.Recovered(fe.log, "panic relaying a connection", r, fe.panicFields(c.RemoteAddr(), ss.be, ss.srv)...)
	fe.countInternal(ss.be, ss.srv)
	ss.termination = [2]byte{'I', 'C'}
	if !ss.connected.IsZero() {
		ss.termination[1] = 'D'
	}
	fe.logTCP(c, ss)
}

// recoverRelay ends the client-to-server direction of an L4 session or a
// tunnel that panicked on its own worker: both connections close, so the
// other direction ends too, and the session's termination says I
// (errPanicked, through *upErr).
func (fe *frontend) recoverRelay(c, sc net.Conn, ss *session, upErr *error) {
	r := recover()
	if r == nil {
		return
	}
	panics.Recovered(fe.log, "panic relaying a connection's client side", r, fe.panicFields(c.RemoteAddr(), ss.be, ss.srv)...)
	fe.countInternal(ss.be, ss.srv)
	*upErr = errPanicked
	_ = c.Close()
	_ = sc.Close()
}

// recoverRead stops a panic in Read, which fasthttp's response writer
// would otherwise swallow uncounted: the read fails with errPanicked, the
// response ends short and fasthttp closes the stream (its access line:
// ID--) and the connection.
func (s *bodyStream) recoverRead(n *int, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.panicked(r)
	s.upErr = errPanicked
	*n, *err = 0, errPanicked
}

// recoverClose stops a panic in Close and releases what the stream still
// holds: the server slot, the backend's session, the server connection
// (closed, never reused). The stream and its reader are left to the
// garbage collector rather than pooled half reset.
func (s *bodyStream) recoverClose() {
	r := recover()
	if r == nil {
		return
	}
	s.panicked(r)
	s.releaseSlot()
	s.ex.caps = nil
	if release := s.release; release != nil {
		s.release = nil
		release(false)
	}
	s.active = false
}

func (s *bodyStream) panicked(r any) {
	fe := s.fe
	panics.Recovered(fe.log, "panic streaming a response body", r, fe.panicFields(s.ctx.RemoteAddr(), s.ex.be, s.srv,
		zap.ByteString("method", s.ctx.Method()), zap.ByteString("uri", s.ctx.RequestURI()))...)
	fe.countInternal(s.ex.be, s.srv)
}
