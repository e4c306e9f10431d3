package proxy

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zapcore"
)

// HAProxy's log date format: [24/Nov/2026:19:14:05.123].
const logTime = "02/Jan/2006:15:04:05.000"

func appendMs(b []byte, d time.Duration) []byte {
	return strconv.AppendInt(b, d.Milliseconds(), 10)
}

// logTCP writes HAProxy's tcplog line for a closed L4 session:
// client [accept date] frontend backend/server Tw/Tc/Tt bytes termination
// actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue
func (fe *frontend) logTCP(c net.Conn, ss *session) {
	if fe.access == nil {
		return
	}
	now := time.Now()
	_, overTLS := c.(*tls.Conn)
	lb := lineBufs.Get().(*[]byte)
	b := fe.appendLogPrefix((*lb)[:0], c.RemoteAddr(), overTLS, ss.accepted, ss.be, ss.srv)
	b = append(b, ' ')
	b = appendQueued(b, ss.queued, ss.srv == nil && ss.termination[1] == 'Q')
	b = append(b, '/')
	b = appendSpan(b, ss.accepted.Add(ss.queued), ss.connected)
	b = append(b, '/')
	b = appendMs(b, now.Sub(ss.accepted))
	b = append(b, ' ')
	b = strconv.AppendInt(b, ss.out, 10)
	b = append(b, ' ')
	b = append(b, ss.termination[:]...)
	b = fe.appendConnCounts(b, ss.be, ss.srv, ss.retries, ss.redispatched)
	b = appendQueues(b, ss.be, ss.srv)
	fe.accessLine(0, b)
	putLine(lb, b)
}

// logHTTP writes HAProxy's httplog line for one request:
// client [date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes - -
// termination actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue
// "request line"
// TR is 0 (halo sees the request once its head is read), Tw the time spent
// waiting for a server slot (-1 when it ran out), Tc is 0 for a reused server connection as in HAProxy, -1 when none
// was obtained; bytes are the response body bytes sent to the client.
// answered: the server's response is the one sent (its cookie capture
// applies).
func (fe *frontend) logHTTP(ctx *fasthttp.RequestCtx, ex *exchange, term string, answered bool) {
	total := time.Since(ex.start)
	srv := ex.srv
	if ex.connected == 0 {
		srv = nil // never connected: HAProxy logs <NOSRV>
	}
	lb := lineBufs.Get().(*[]byte)
	b := fe.appendLogPrefix((*lb)[:0], ctx.RemoteAddr(), clientTLS(ctx) != nil, ex.start, ex.be, srv)
	b = append(b, " 0/"...)
	b = appendQueued(b, ex.queued, srv == nil && (term[1] == 'Q'))
	b = append(b, '/')
	b = appendOffsetSpan(b, ex.queued, ex.connected)
	b = append(b, '/')
	b = appendOffsetSpan(b, ex.connected, ex.responded)
	b = append(b, '/')
	b = appendMs(b, total)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, ex.bytes, 10)
	b = fe.captures.appendCookies(b, ctx, answered)
	b = append(b, term...)
	if ex.be.cookie != nil && ex.be.cookie.cfg.Mode != config.CookiePassive && len(term) == 4 {
		b[len(b)-2], b[len(b)-1] = ex.ck.req, ex.ck.resp // HAProxy's cookie letters
	}
	b = fe.appendConnCounts(b, ex.be, ex.srv, int(ex.retries), ex.redispatched)
	b = appendQueues(b, ex.be, ex.srv)
	b = fe.captures.appendHeaders(b, ex.caps)
	b = append(b, " \""...)
	b = append(b, ctx.Method()...)
	b = append(b, ' ')
	b = append(b, ctx.RequestURI()...)
	b = append(b, ' ')
	b = append(b, ctx.Request.Header.Protocol()...)
	b = append(b, '"')
	switch {
	case ex.logLevel != 0:
		fe.accessLine(ex.logLevel, b)
	case fe.lines != nil:
		// Written here, not through accessLine: a frame more on this
		// path takes idle connections' stacks past 4 KiB (see
		// handleHTTP).
		fe.lines.WriteAccess(zapcore.InfoLevel, b)
	default:
		fe.access.Info(string(b))
	}
	putLine(lb, b)
}

// accessLine writes an access log line at the level set-log-level chose
// for the request (info unless a rule said otherwise; none for silent):
// as bytes to the process's AccessLines when it has them, else as a zap
// entry.
//
//go:noinline
func (fe *frontend) accessLine(level int8, b []byte) {
	switch {
	case level == rules.LogSilent:
	case fe.lines != nil:
		fe.lines.WriteAccess(zapcore.Level(level), b)
	case level == 0:
		fe.access.Info(string(b))
	default:
		if ce := fe.access.Check(zapcore.Level(level), string(b)); ce != nil {
			ce.Write()
		}
	}
}

// AccessLines takes access log lines as the bytes they are, so that
// writing one costs no string and no zap entry: the interface the process's
// log core implements when it can (cmd/halo's does; a core that does not,
// such as the tests' observer, gets each line as a zap entry's message,
// named "access").
type AccessLines interface {
	// WriteAccess writes line, at level, as the "access" logger's
	// message; it must not keep line after it returns.
	WriteAccess(level zapcore.Level, line []byte)
}

// lineBufs are the buffers access lines are built in: a line passed to
// AccessLines escapes, and one buffer per line would be an allocation per
// request.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putLine returns the buffer of line b to lineBufs; one that grew past 4
// KiB (long captures, a long URI) is left to the collector.
func putLine(lb *[]byte, b []byte) {
	if cap(b) > 4<<10 {
		return
	}
	*lb = b[:0]
	lineBufs.Put(lb)
}

// appendAddr appends a client's address as net.Addr's String writes it
// (1.2.3.4:5, [::1]:5), without allocating for a TCP address.
func appendAddr(b []byte, a net.Addr) []byte {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return append(b, a.String()...)
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return append(b, a.String()...)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		b = append(b, '[')
		b = ip.AppendTo(b)
		if ta.Zone != "" {
			b = append(b, '%')
			b = append(b, ta.Zone...)
		}
		b = append(b, ']')
	} else {
		b = ip.AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendInt(b, int64(ta.Port), 10)
}

// appendLogPrefix appends what both log layouts start with:
// client [date] frontend backend/server (<NOSRV> when srv is nil). The
// frontend is HAProxy's %ft: its name, with a '~' after it for a
// connection that came over TLS.
func (fe *frontend) appendLogPrefix(b []byte, client net.Addr, overTLS bool, at time.Time, be *backend, srv *server) []byte {
	b = appendAddr(b, client)
	b = append(b, " ["...)
	b = at.AppendFormat(b, logTime)
	b = append(b, "] "...)
	b = append(b, fe.cfg.Name...)
	if overTLS {
		b = append(b, '~')
	}
	b = append(b, ' ')
	if be == nil {
		// A request refused before routing: HAProxy names the frontend.
		b = append(b, fe.cfg.Name...)
	} else {
		b = append(b, be.cfg.Name...)
	}
	b = append(b, '/')
	if srv == nil {
		return append(b, "<NOSRV>"...)
	}
	return append(b, srv.cfg.Name...)
}

// appendSpan appends to-from in milliseconds, or -1 if the later event
// never happened.
func appendSpan(b []byte, from, to time.Time) []byte {
	if to.IsZero() || from.IsZero() {
		return append(b, "-1"...)
	}
	return appendMs(b, to.Sub(from))
}

// appendOffsetSpan is appendSpan for two offsets from a request's start
// (0: not reached).
func appendOffsetSpan(b []byte, from, to time.Duration) []byte {
	if to == 0 {
		return append(b, "-1"...)
	}
	return appendMs(b, to-from)
}

// appendConnCounts writes actconn/feconn/beconn/srv_conn/retries, the
// retries with HAProxy's '+' before them when the session was
// redispatched to another server.
func (fe *frontend) appendConnCounts(b []byte, be *backend, srv *server, retries int, redispatched bool) []byte {
	b = append(b, ' ')
	b = strconv.AppendInt(b, fe.active.Load(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, fe.state.CurConns.Load(), 10)
	b = append(b, '/')
	if be != nil {
		b = strconv.AppendInt(b, be.counters.CurConns.Load(), 10)
	} else {
		b = append(b, '0')
	}
	b = append(b, '/')
	if srv != nil {
		b = strconv.AppendInt(b, srv.state.CurConns(), 10)
	} else {
		b = append(b, '0')
	}
	b = append(b, '/')
	if redispatched {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, int64(retries), 10)
}

// appendQueued writes Tw: the time spent in the queue, or -1 when the
// session never got out of it, as HAProxy.
func appendQueued(b []byte, queued time.Duration, gaveUp bool) []byte {
	if gaveUp {
		return append(b, "-1"...)
	}
	return appendMs(b, queued)
}

// appendQueues writes srv_queue/backend_queue: the sessions waiting for
// this server and for any server of the backend as the line is written.
func appendQueues(b []byte, be *backend, srv *server) []byte {
	if be == nil {
		return append(b, " 0/0"...) // a session that panicked before it was routed
	}
	member := -1
	if srv != nil {
		member = srv.member
	}
	s, q := be.queue.lengths(member)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, int64(q), 10)
}

// logBadRequest writes the httplog line of a request refused before it was
// routed, as HAProxy logs one: no backend, no timers but the total one
// since began (the request's start; zero: unknown, then the line's date
// is now and the total 0), the termination state, and "<BADREQ>" for the
// request line.
func (fe *frontend) logBadRequest(ctx *fasthttp.RequestCtx, status int, term string, began time.Time) {
	fe.logLocal(ctx, nil, status, term, 0, false, nil, began)
}

// logLocal writes the httplog line of a request halo answered itself
// (refused as malformed, or answered by a rule: deny, return, redirect),
// at level (see accessLine), naming be when its rule answered (nil: the
// frontend's); with request, the request line is logged
// with the captures rc holds, else "<BADREQ>". began is when the request
// began, for the date and the total time (zero: now, and 0).
func (fe *frontend) logLocal(ctx *fasthttp.RequestCtx, be *backend, status int, term string, level int8, request bool, rc *rules.Captures, began time.Time) {
	if level == rules.LogSilent {
		return
	}
	now := time.Now()
	if began.IsZero() || began.After(now) {
		began = now
	}
	lb := lineBufs.Get().(*[]byte)
	b := fe.appendLogPrefix((*lb)[:0], ctx.RemoteAddr(), clientTLS(ctx) != nil, began, be, nil)
	// TR is 0 for a request that was read whole (HAProxy's -1 is for
	// one it could not read); the bytes are the answer's body, as for
	// every line of halo's.
	if request {
		b = append(b, " 0/-1/-1/-1/"...)
	} else {
		b = append(b, " -1/-1/-1/-1/"...)
	}
	b = appendMs(b, now.Sub(began))
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	// A request halo could not read has no captures, as HAProxy logs
	// one (measured with 2.6); one a rule answered has them.
	caps := fe.captures
	if !request {
		caps = nil
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(ctx.Response.Body())), 10)
	b = caps.appendCookies(b, ctx, false)
	b = append(b, term...)
	b = fe.appendConnCounts(b, nil, nil, 0, false)
	b = append(b, " 0/0"...)
	b = caps.appendHeaders(b, rc)
	if request {
		b = append(b, " \""...)
		b = append(b, ctx.Method()...)
		b = append(b, ' ')
		b = append(b, ctx.RequestURI()...)
		b = append(b, ' ')
		b = append(b, ctx.Request.Header.Protocol()...)
		b = append(b, '"')
	} else {
		b = append(b, " \"<BADREQ>\""...)
	}
	fe.accessLine(level, b)
	putLine(lb, b)
}
