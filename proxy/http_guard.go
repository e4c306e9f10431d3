package proxy

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/proxy/h1"
	"github.com/halo-lb/halo/proxy/rules"
	"github.com/valyala/fasthttp"
)

// guardConn is a client connection in mode http as fasthttp sees it: every
// read passes through an h1.Guard, so fasthttp parses only requests that
// RFC 9112 frames one way (see package h1). When the guard stops, reads
// return its *h1.Error; fasthttp then asks the frontend's error handler
// for the response, or, where it closes a connection without one (a bad
// request that starts a read on a kept-alive connection), Close sends it.
type guardConn struct {
	net.Conn
	fs *frontendState
	g  h1.Guard // only the serving goroutine touches it
	// failed is the guard's error, published for Close, which fasthttp's
	// Shutdown calls from another goroutine on idle connections.
	failed   atomic.Pointer[h1.Error]
	answered atomic.Bool
	// tail holds the last bytes of the previous read, so that "show
	// errors" shows what came just before a read that the guard stopped
	// (fasthttp reads a request's first byte on its own).
	tail  [64]byte
	tailN int
	// clientCert is what option ssl-client-headers sets on each request
	// of this connection, built at its first.
	clientCert *clientCertHeaders
	// rules is the connection's rules' Txn, which each request's Txn
	// reaches (rules.Txn.Conn): session variables and what tcp-request
	// connection and session rules track. Nil without.
	rules *rules.Txn
	// served is the generation serving the connection, whose set holds
	// it: serve's recover takes it out after a panic, and a tunnel leaves
	// it (see tunnel).
	served *httpServer
	// start is when halo began serving the connection in mode http, the
	// date of the log line of a first request that could not be read.
	start time.Time
	// awaiting is set when a request has been handled: the read that
	// finds the guard at a message boundary then waits for the next
	// request, and may park the connection (parking.go). parkable is
	// whether this connection may park at all; parked, that its serve
	// loop ended to park it, so that Close must leave it open; idleUntil
	// is when its keep-alive timeout runs out.
	// closeNext: the generation that served the connection before it
	// parked retired meanwhile, so its next response says
	// "Connection: close", as the retired generation's would have.
	awaiting, parkable, closeNext bool
	parked                        atomic.Bool // Close reads it from fasthttp's Shutdown too
	idleUntil                     time.Time
}

var guardPool = sync.Pool{New: func() any { return new(guardConn) }}

func newGuardConn(c net.Conn, fs *frontendState, ct *rules.Txn) *guardConn {
	gc := guardPool.Get().(*guardConn)
	gc.rules = ct
	gc.Conn, gc.fs = c, fs
	gc.start = time.Now()
	gc.failed.Store(nil)
	gc.answered.Store(false)
	gc.tailN = 0
	gc.clientCert = nil
	gc.served = nil
	gc.awaiting, gc.closeNext = false, false
	gc.parked.Store(false)
	_, plain := c.(*net.TCPConn)
	gc.parkable = plain && fs.parking != nil
	return gc
}

func (gc *guardConn) free() {
	endConnTxn(gc.rules)
	gc.Conn, gc.fs, gc.clientCert, gc.rules, gc.served = nil, nil, nil, nil, nil
	guardPool.Put(gc)
}

// Read never returns 0 bytes without an error: fasthttp's first read of a
// kept-alive request panics on that. Bytes the guard drops (a chunk
// extension, a trailer) make it read again.
func (gc *guardConn) Read(p []byte) (int, error) {
	if err := gc.g.Err(); err != nil {
		return 0, err
	}
	for {
		boundary := gc.awaiting && gc.g.BeforeMessage()
		n, rerr := gc.read(p)
		before := gc.g.Offset()
		out, gerr := gc.g.Filter(p[:n])
		if gerr != nil {
			gc.failed.Store(gerr)
			read := append(append(make([]byte, 0, gc.tailN+n), gc.tail[:gc.tailN]...), p[:n]...)
			gc.fs.badRequests.record(gc.Conn.RemoteAddr(), gerr, read, gc.tailN+int(gerr.Offset-before))
			if out > 0 {
				return out, nil // the error comes with the next read
			}
			return 0, gerr
		}
		gc.keepTail(p[:n])
		if out > 0 || rerr != nil {
			return out, rerr
		}
		if boundary && gc.g.BeforeMessage() {
			// Only empty lines before the next request (RFC 9112
			// section 2.2), which the guard drops: still waiting for
			// it, with a grace of its own, not the one that ran.
			gc.awaiting = true
		}
	}
}

// read reads from the connection. The wait for the next request of a
// kept-alive connection that may park gives up after parkGrace with
// errParked, with nothing read, when the keep-alive timeout leaves time
// to park (fasthttp set it as the read deadline just before).
func (gc *guardConn) read(p []byte) (int, error) {
	if !gc.awaiting || !gc.g.BeforeMessage() { // or what is left of a request's body
		return gc.Conn.Read(p)
	}
	gc.awaiting = false
	if !gc.parkable || gc.served == nil || gc.served.settings.keepAliveTimeout <= 2*parkGrace {
		return gc.Conn.Read(p)
	}
	now := time.Now()
	gc.idleUntil = now.Add(gc.served.settings.keepAliveTimeout)
	if gc.Conn.SetReadDeadline(now.Add(parkGrace)) != nil {
		return gc.Conn.Read(p)
	}
	n, err := gc.Conn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		gc.parked.Store(true)
		return 0, errParked
	}
	return n, err
}

// keepTail keeps the end of a read for the next one's capture.
func (gc *guardConn) keepTail(b []byte) {
	if len(b) >= len(gc.tail) {
		gc.tailN = copy(gc.tail[:], b[len(b)-len(gc.tail):])
		return
	}
	keep := min(gc.tailN, len(gc.tail)-len(b))
	copy(gc.tail[:], gc.tail[gc.tailN-keep:gc.tailN])
	gc.tailN = keep + copy(gc.tail[keep:], b)
}

// Close sends the guard's error response if fasthttp closed the
// connection without asking for one.
func (gc *guardConn) Close() error {
	if gc.parked.Load() {
		return nil // the parking set has it now (see frontend.serveHTTP)
	}
	if err := gc.failed.Load(); err != nil && gc.answered.CompareAndSwap(false, true) {
		_ = gc.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		var resp fasthttp.Response
		setErrorResponse(&resp, err.Status, true)
		bw := bufio.NewWriterSize(gc.Conn, 512)
		if resp.Write(bw) == nil {
			_ = bw.Flush()
		}
	}
	if gc.failed.Load() != nil {
		lingerBeforeClose(gc.Conn)
	}
	return gc.Conn.Close()
}

// Lingering bounds: how long and how much of a refused request halo reads
// and drops after its error response, before it closes.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 4 << 20
)

// lingerBeforeClose ends the write side after an error response and reads
// what the client is still sending, dropping it, until the client closes,
// lingerTime passes or lingerBytes were read. Closing a socket with unread
// input sends a reset, and a reset arriving at the client while it still
// writes (a 1 MiB header refused at its 16 KiB) makes its kernel drop the
// error response it had received: the client saw "connection reset" where
// it should have read 431. HAProxy lingers the same way (option nolinger
// turns it off there).
func lingerBeforeClose(c net.Conn) {
	cw, ok := c.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	var buf [4096]byte
	for read := 0; read < lingerBytes; {
		n, err := c.Read(buf[:])
		read += n
		if err != nil {
			return
		}
	}
}

// answerClientError is fasthttp's ErrorHandler: the response to a request
// that could not be read, because the guard stopped it, fasthttp's own
// parser refused it, or the client was too slow. HAProxy counts these as
// request errors and logs them with termination state PR-- (cR-- for a
// timeout) and no backend.
func (fe *frontend) answerClientError(ctx *fasthttp.RequestCtx, err error) {
	if h := panicHook.Load(); h != nil {
		(*h)(hookClientError, ctx)
	}
	status, term := fasthttp.StatusBadRequest, "PR--"
	var ge *h1.Error
	gc, _ := ctx.Conn().(*guardConn)
	if gc != nil {
		gc.answered.Store(true)
		ge = gc.g.Err()
	}
	var ne net.Error
	timedOut := false
	switch {
	case ge != nil:
		status = ge.Status
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		status, term, timedOut = fasthttp.StatusRequestTimeout, "cR--", true
	default:
		fe.state.badRequests.record(ctx.RemoteAddr(), &h1.Error{Status: status, Reason: err.Error(), AtEnd: true}, nil, 0)
	}
	fe.state.Errors.Add(1)
	fe.state.Requests.Add(1)
	fe.setError(&ctx.Response, nil, status, true)
	fe.state.HTTPStatus[status/100].Add(1)
	if fe.access != nil {
		fe.logBadRequest(ctx, status, term, fe.unreadRequestStart(ctx, gc, timedOut))
	}
}

// unreadRequestStart is when a request that could not be read began, for
// the date and the total time of its log line, as HAProxy logs them
// (measured with 2.6: "[accept date] ... -1/-1/-1/-1/2002 408 ... cR--"
// for timeout http-request 2s): the connection's start for its first
// request (not fasthttp's ConnTime, which it loses when it waits for a
// first byte with ReduceMemoryUsage); for a later one on a kept-alive connection, its first byte,
// which a timeout places timeout http-request ago, since that is when the
// server re-armed the read deadline. Zero when it is not known (another
// error on a later request): the line then has the time of the answer.
func (fe *frontend) unreadRequestStart(ctx *fasthttp.RequestCtx, gc *guardConn, timedOut bool) time.Time {
	h := fe.state.http.Load()
	switch {
	case gc != nil && gc.g.Pending() == gc.g.Offset(): // no message completed yet
		return gc.start
	case timedOut && h != nil:
		return time.Now().Add(-h.settings.requestTimeout)
	}
	return time.Time{}
}

// setErrorResponse makes resp halo's error page for status, closing the
// connection.
// setErrorResponse makes resp HAProxy's error page for status. An error of
// the client's (a refused request, a timeout reading it) closes the
// connection, whose stream can no longer be trusted; one of the servers'
// (502, 503, 504) keeps it open, as HAProxy 2.6 does (measured: a second
// request on the same connection is served after each of them).
func setErrorResponse(resp *fasthttp.Response, status int, closeConn bool) {
	resp.Reset()
	resp.SetStatusCode(status)
	if phrase := errorPhrase(status); phrase != nil {
		resp.Header.SetStatusMessage(phrase)
	}
	resp.Header.SetContentTypeBytes(textHTML)
	resp.SetBodyRaw(errorPage(status))
	if closeConn {
		resp.SetConnectionClose()
	}
}

// captureLog keeps the last message a frontend (requests) or backend
// (responses) refused, with the bytes around the offending one, for "show
// errors" (HAProxy keeps the last error per proxy and direction too).
type captureLog struct {
	last atomic.Pointer[h1.Capture]
}

func (l *captureLog) record(peer net.Addr, err *h1.Error, read []byte, at int) {
	who := ""
	if peer != nil {
		who = peer.String()
	}
	l.last.Store(h1.NewCapture(who, err, read, at))
}

// Last returns the last refused message, or nil.
func (l *captureLog) Last() *h1.Capture { return l.last.Load() }

// LastBadRequest is the last request the named frontend refused, for the
// runtime API's "show errors".
func (p *Proxy) LastBadRequest(frontend string) *h1.Capture {
	if s := p.current.Load(); s != nil {
		if fe := s.frontendsByName[frontend]; fe != nil {
			return fe.state.badRequests.Last()
		}
	}
	return nil
}

// LastBadResponse is the last response a server of the named backend sent
// that halo refused (502), for "show errors".
func (p *Proxy) LastBadResponse(backend string) *h1.Capture {
	if s := p.current.Load(); s != nil {
		if be := s.backendsByName[backend]; be != nil {
			return be.state.badResponses.Last()
		}
	}
	return nil
}
