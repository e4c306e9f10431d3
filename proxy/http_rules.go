package proxy

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/halo-lb/halo/balancer"
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
	t.Frontend, t.Backend = fe.index, fe.defaultBackend.index
	if gc, ok := ctx.Conn().(*guardConn); ok {
		t.Conn = gc.rules
	}
	return t
}

// endTxn ends the rules' view of a request or connection: what its
// stick-table tracking counted is closed (the answer's status in mode
// http) and the Txn goes back to the pool.
func endTxn(t *rules.Txn) {
	status := 0
	if t.Ctx != nil {
		status = t.Ctx.Response.StatusCode()
	}
	t.Untrack(status, 0, 0)
	t.Ctx, t.TLS, t.Env, t.Conn, t.Caps = nil, nil, nil, nil, nil
	txns.Put(t)
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
	if fe.rejected(ctx, t, fe.tcp.content, &fe.state.Counters) {
		return nil
	}
	// Counted once past the frontend's content rules, as HAProxy, whose
	// content inspection comes before the HTTP request: a request they
	// reject is not one in what the connection tracks.
	t.BeginRequest()
	if fe.answered(ctx, t, fe.rules.request, &fe.state.Counters) || fe.answered(ctx, t, fe.rules.redirect, &fe.state.Counters) {
		return nil
	}
	be := fe.defaultBackend
	for i := range fe.useBackends {
		if ub := &fe.useBackends[i]; ub.cond.Eval(t) {
			if b := ub.target(t, fe.backendsByName, fe.cfg.Mode); b != nil {
				be = b
				break
			}
		}
	}
	t.Backend = be.index
	if be.hasRules && (fe.rejected(ctx, t, be.tcpContent, be.counters) || fe.answered(ctx, t, be.rules.request, be.counters) || fe.answered(ctx, t, be.rules.redirect, be.counters)) {
		return nil
	}
	return be
}

// rejected runs tcp-request content rules on a request in mode http, as
// HAProxy runs them on each request of a connection: reject closes the
// connection without an answer, and is counted in c as a denied request.
func (fe *frontend) rejected(ctx *fasthttp.RequestCtx, t *rules.Txn, p *rules.Program, c *balancer.Counters) bool {
	if p.Empty() {
		return false
	}
	if v, _ := p.Run(t); v != rules.Deny {
		return false
	}
	c.DeniedReq.Add(1)
	ctx.SetConnectionClose()
	if gc, ok := ctx.Conn().(*guardConn); ok {
		_ = gc.Conn.Close() // the socket: nothing of the answer reaches the client
	}
	fe.countAnswered(ctx, "PR--", t)
	return true
}

// answered runs a rule set and, when a rule ends the request with an
// answer, writes it; a denied request is counted in c, the counters of
// the section whose rule denied it.
func (fe *frontend) answered(ctx *fasthttp.RequestCtx, t *rules.Txn, p *rules.Program, c *balancer.Counters) bool {
	if p.Empty() {
		return false
	}
	v, r := p.Run(t)
	switch v {
	case rules.Continue, rules.Allow:
		return false
	case rules.Deny, rules.Tarpit:
		if v == rules.Tarpit {
			// Held for timeout tarpit (HAProxy's default: timeout
			// connect) before the answer, to slow a client down.
			time.Sleep(fe.tarpitDelay())
		}
		if r.HasReply() {
			r.WriteReply(t)
		} else {
			fe.setError(&ctx.Response, fe.ruleBackend(t, p), r.Status, true)
		}
		ctx.SetConnectionClose()
		c.DeniedReq.Add(1)
		fe.countAnswered(ctx, "PR--", t)
	case rules.Return:
		r.WriteReply(t)
		fe.countAnswered(ctx, "LR--", t)
	case rules.Redirect:
		r.WriteRedirect(t)
		fe.countAnswered(ctx, "LR--", t)
	case rules.Auth:
		// HAProxy's 401 page with the realm to ask credentials for (the
		// section's name without "realm").
		fe.setError(&ctx.Response, nil, 401, false)
		realm := r.Realm
		if realm == "" {
			realm = fe.cfg.Name
		}
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		fe.countAnswered(ctx, "PR--", t)
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
// level the rules chose and with what they captured.
func (fe *frontend) countAnswered(ctx *fasthttp.RequestCtx, term string, t *rules.Txn) {
	status := ctx.Response.StatusCode()
	fe.state.Requests.Add(1)
	if c := status / 100; c >= 1 && c <= 5 {
		fe.state.HTTPStatus[c].Add(1)
	}
	if fe.access != nil {
		fe.logLocal(ctx, status, term, t.LogLevel, true, t.Caps)
	}
}

// applyResponseRules runs the backend's http-response rules, then the
// frontend's, on the response head (HAProxy's order). A deny replaces
// the response with a 502.
//
//go:noinline
func (fe *frontend) applyResponseRules(ctx *fasthttp.RequestCtx, t *rules.Txn, be *backend) {
	t.Response = true
	t.HeadersChanged() // the response's arrived, and option forwardfor added to the request's
	for i, p := range [2]*rules.Program{be.rules.response, fe.rules.response} {
		if p.Empty() {
			continue
		}
		switch v, r := p.Run(t); v {
		case rules.Deny:
			ctx.Response.ResetBody()
			fe.setError(&ctx.Response, be, 502, true)
			if i == 0 {
				be.counters.DeniedResp.Add(1)
			} else {
				fe.state.DeniedResp.Add(1)
			}
			return
		case rules.Return:
			ctx.Response.ResetBody()
			r.WriteReply(t)
			return
		case rules.Redirect:
			ctx.Response.ResetBody()
			r.WriteRedirect(t)
			return
		}
	}
}
