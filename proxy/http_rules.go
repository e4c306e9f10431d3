package proxy

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// txns are the rules' per-request state, reused: a Txn's buffers grow to
// what the rules need once and are then kept.
var txns = sync.Pool{New: func() any { return new(rules.Txn) }}

// startTxn readies a Txn for the request.
func (fe *frontend) startTxn(ctx *fasthttp.RequestCtx) *rules.Txn {
	t := txns.Get().(*rules.Txn)
	t.Reset(fe.vars)
	t.Ctx = ctx
	t.Src = addrPortOf(ctx.RemoteAddr())
	t.Dst = addrPortOf(ctx.LocalAddr())
	t.TLS = clientTLS(ctx)
	t.Env = fe.env
	t.SetDeadline(fe.rulesDeadline())
	t.Frontend, t.Backend = fe.index, fe.defaultBackend.index
	t.UniqueIDFormat = fe.uniqueID
	if gc, ok := ctx.Conn().(*guardConn); ok {
		t.Conn = gc.rules
	}
	return t
}

// rulesDeadline is when the rules of a request (or of its response)
// starting now must have finished: timeout http-request after, else
// timeout client, as the wait for the request head is bounded; none
// without either. It counts from when the head was read, not its first
// byte (fasthttp does not say when that came), so that a request may take
// up to twice timeout http-request before its rules give up.
func (fe *frontend) rulesDeadline() time.Time {
	d := fe.cfg.Timeouts.HTTPRequest
	if d <= 0 {
		d = fe.cfg.Timeouts.Client
	}
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// rulesTimedOut answers a request whose rules ran past their deadline
// (rules.Timeout) as HAProxy answers a rule's internal error: a 500, the
// connection closed, counted in eint (the frontend's, and the backend's
// whose rule it was). The access line says PR--: the proxy ended the
// request while processing it, as for a deny, not I, which HAProxy keeps
// for its own bugs (halo's panics log IR--).
func (fe *frontend) rulesTimedOut(ctx *fasthttp.RequestCtx, t *rules.Txn, be *backend) {
	fe.setError(&ctx.Response, be, fasthttp.StatusInternalServerError, true)
	ctx.SetConnectionClose()
	fe.countInternal(be, nil)
	fe.countAnswered(ctx, "PR--", t, be)
}

// endTxn ends the rules' view of a request or connection: what its
// stick-table tracking counted is closed (t.HTTPErr says whether the
// request counts as an HTTP error) and the Txn goes back to the pool.
func endTxn(t *rules.Txn) {
	t.Untrack(0, 0)
	t.Ctx, t.TLS, t.Env, t.Conn, t.Caps, t.UniqueIDFormat = nil, nil, nil, nil, nil, nil
	txns.Put(t)
}

// untrackHTTP ends what t tracks with the bytes the request and its
// answer moved, heads included, as HAProxy counts bytes_in and bytes_out
// (its request head as the client sent it, its answer's as halo writes
// it): bodyIn and bodyOut are the bodies'. answered: halo writes an
// answer (a rejected request's socket is closed without one). Only a
// request that tracks something has its heads measured.
func untrackHTTP(ctx *fasthttp.RequestCtx, t *rules.Txn, bodyIn, bodyOut int64, answered bool) {
	if t.CountsBytes() {
		bodyIn += requestHeadLen(&ctx.Request.Header)
		if answered {
			bodyOut += int64(len(ctx.Response.Header.Header()))
		}
	}
	t.Untrack(bodyIn, bodyOut)
}

// addrPortOf reads a TCP address without allocating.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// applyRequestRules runs the frontend's http-request rules, its redirect
// lines and use_backend, then the chosen backend's http-request rules, as
// HAProxy orders them. It returns the backend, or nil when a rule
// answered the request (deny, return, redirect, tarpit), which it has
// then counted and logged.
//
//go:noinline
func (fe *frontend) applyRequestRules(ctx *fasthttp.RequestCtx, t *rules.Txn) *backend {
	if fe.rejected(ctx, t, fe.tcp.content, nil) {
		return nil
	}
	// Counted once past the frontend's content rules, as HAProxy, whose
	// content inspection comes before the HTTP request: a request they
	// reject is not one in what the connection tracks.
	t.BeginRequest()
	if fe.answered(ctx, t, fe.rules.request, nil) || fe.answered(ctx, t, fe.rules.redirect, nil) {
		return nil
	}
	be := fe.defaultBackend
	for i := range fe.useBackends {
		if ub := &fe.useBackends[i]; ub.cond.Eval(t) {
			if b := ub.target(t, fe.backendsByName, fe.cfg.Mode); b != nil && !t.Expired() {
				be = b
				break
			}
		}
		if t.Expired() {
			fe.rulesTimedOut(ctx, t, nil)
			return nil
		}
	}
	t.Backend = be.index
	if be.hasRules && fe.backendAnswered(ctx, t, be) {
		return nil
	}
	return be
}

// backendAnswered runs the chosen backend's rules. The request is the
// backend's by then, as in HAProxy, whose counters count one its rules
// answer: a session, a request and its status (a rejected one has none).
//
//go:noinline
func (fe *frontend) backendAnswered(ctx *fasthttp.RequestCtx, t *rules.Txn, be *backend) bool {
	t.HoldRequestCount()
	rejected := fe.rejected(ctx, t, be.tcpContent, be)
	if !rejected {
		t.BeginRequest()
	}
	if !rejected && !fe.answered(ctx, t, be.rules.request, be) && !fe.answered(ctx, t, be.rules.redirect, be) {
		return false
	}
	fe.routeTo(be).endSession()
	be.counters.Requests.Add(1)
	if c := ctx.Response.StatusCode() / 100; c >= 1 && c <= 5 && !rejected {
		be.counters.HTTPStatus[c].Add(1)
	}
	return true
}

// rejected runs tcp-request content rules on a request in mode http, as
// HAProxy runs them on each request of a connection: reject closes the
// connection without an answer, and is counted as a denied request of
// the frontend's, even for a backend's rule (as HAProxy 2.6 counts it).
func (fe *frontend) rejected(ctx *fasthttp.RequestCtx, t *rules.Txn, p *rules.Program, be *backend) bool {
	if p.Empty() {
		return false
	}
	switch v, _ := p.Run(t); v {
	case rules.Timeout:
		fe.rulesTimedOut(ctx, t, be)
		return true
	case rules.Deny:
	default:
		return false
	}
	fe.state.DeniedReq.Add(1)
	ctx.SetConnectionClose()
	if gc, ok := ctx.Conn().(*guardConn); ok {
		_ = gc.Conn.Close() // the socket: nothing of the answer reaches the client
	}
	untrackHTTP(ctx, t, requestBodyLen(ctx), 0, false)
	fe.countAnswered(ctx, "PR--", t, be)
	return true
}

// answered runs a rule set, the frontend's (be nil) or the backend be's,
// and, when a rule ends the request with an answer, writes it. A denied
// request is counted in the frontend and in the backend whose rule denied
// it, and as an HTTP error in what the request tracks (deny, tarpit and
// auth are, whatever their status; return and redirect are not), as
// HAProxy counts them.
func (fe *frontend) answered(ctx *fasthttp.RequestCtx, t *rules.Txn, p *rules.Program, be *backend) bool {
	if p.Empty() {
		return false
	}
	v, r := p.Run(t)
	switch v {
	case rules.Continue, rules.Allow:
		return false
	case rules.Timeout:
		fe.rulesTimedOut(ctx, t, be)
	case rules.Deny, rules.Tarpit:
		if v == rules.Tarpit {
			// Held for timeout tarpit (HAProxy's default: timeout
			// connect) before the answer, to slow a client down.
			time.Sleep(fe.tarpitDelay())
		}
		if r.HasReply() {
			r.WriteReply(t)
		} else {
			fe.setError(&ctx.Response, be, r.Status, true)
		}
		ctx.SetConnectionClose()
		fe.state.DeniedReq.Add(1)
		if be != nil {
			be.counters.DeniedReq.Add(1)
		}
		t.HTTPErr = true
		fe.countAnswered(ctx, "PR--", t, be)
	case rules.Return:
		r.WriteReply(t)
		fe.countAnswered(ctx, "LR--", t, be)
	case rules.Redirect:
		r.WriteRedirect(t)
		fe.countAnswered(ctx, "LR--", t, be)
	case rules.Auth:
		// HAProxy's 401 page with the realm to ask credentials for (the
		// section's name without "realm").
		fe.setError(&ctx.Response, nil, 401, false)
		realm := r.Realm
		if realm == "" {
			realm = fe.cfg.Name
		}
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		t.HTTPErr = true
		fe.countAnswered(ctx, "PR--", t, be)
	}
	return true
}

// tarpitDelay is how long tarpit holds a request.
func (fe *frontend) tarpitDelay() time.Duration {
	if d := fe.defaultBackend.cfg.Timeouts.Connect; d > 0 {
		return d
	}
	return 5 * time.Second
}

// countAnswered counts and logs a request that a rule answered, at the
// level the rules chose and with what they captured; be is the backend
// whose rule it was (nil: the frontend's), which the line names as
// HAProxy's does.
func (fe *frontend) countAnswered(ctx *fasthttp.RequestCtx, term string, t *rules.Txn, be *backend) {
	// What the request tracks counts the answer's bytes (a rejected
	// request's were counted without one).
	untrackHTTP(ctx, t, requestBodyLen(ctx), int64(len(ctx.Response.Body())), true)
	status := ctx.Response.StatusCode()
	fe.state.Requests.Add(1)
	if c := status / 100; c >= 1 && c <= 5 {
		fe.state.HTTPStatus[c].Add(1)
	}
	if fe.access != nil {
		fe.logLocal(ctx, be, status, term, t.LogLevel, true, t.Caps, time.Time{})
	}
}

// applyResponseRules runs the backend's http-response rules, then the
// frontend's, on the response head (HAProxy's order). A deny replaces
// the response with a 502 and is counted in the frontend, the backend
// and the server, whichever section's rule it was, as HAProxy counts it.
// It reports whether a rule replaced the response (deny, return,
// redirect: a body that was to stream no longer does), and whether it
// was a deny.
//
//go:noinline
func (fe *frontend) applyResponseRules(ctx *fasthttp.RequestCtx, t *rules.Txn, be *backend, srv *server) (replaced, denied bool) {
	t.Response = true
	t.HeadersChanged() // the response's arrived, and option forwardfor added to the request's
	for _, p := range [2]*rules.Program{be.rules.response, fe.rules.response} {
		if p.Empty() {
			continue
		}
		switch v, r := p.Run(t); v {
		case rules.Deny:
			dropStream(ctx)
			ctx.Response.ResetBody()
			fe.setError(&ctx.Response, be, 502, true)
			be.counters.DeniedResp.Add(1)
			fe.state.DeniedResp.Add(1)
			srv.state.DeniedResp.Add(1)
			return true, true
		case rules.Timeout:
			// As a request's rules past their deadline: a 500 counted
			// in eint, and PH-- as a deny of the response.
			dropStream(ctx)
			ctx.Response.ResetBody()
			fe.setError(&ctx.Response, be, fasthttp.StatusInternalServerError, true)
			fe.countInternal(be, srv)
			return true, true
		case rules.Return:
			dropStream(ctx)
			ctx.Response.ResetBody()
			r.WriteReply(t)
			return true, false
		case rules.Redirect:
			dropStream(ctx)
			ctx.Response.ResetBody()
			r.WriteRedirect(t)
			return true, false
		}
	}
	return false, false
}
