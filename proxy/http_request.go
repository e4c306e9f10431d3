package proxy

import (
	"errors"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/h1"
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// countBytes adds body bytes moved between this frontend and srv to the
// frontend's, the server's backend's and the server's counters.
func (fe *frontend) countBytes(srv *server, in, out int64) {
	if in > 0 {
		fe.state.BytesIn.Add(uint64(in))
		srv.be.counters.BytesIn.Add(uint64(in))
		srv.state.BytesIn.Add(uint64(in))
	}
	if out > 0 {
		fe.state.BytesOut.Add(uint64(out))
		srv.be.counters.BytesOut.Add(uint64(out))
		srv.state.BytesOut.Add(uint64(out))
	}
}

// handleHTTP forwards one request to a server of the backend it is routed
// to. A panic while it runs is recovered by endRequest, which answers the
// request and releases what the exchange holds (recover.go).
//
// Its frame is kept small on purpose: forward, called from here, reaches
// the deepest point of a connection's stack, and a goroutine keeps the
// stack it grew for its first request while its connection idles. Taking
// a server slot, answering an error and the accounting after the exchange
// run in functions of their own so that their temporaries are not part of
// this frame (measured: 9,800 idle connections hold 4 KiB stacks each
// instead of 8 KiB). The exchange itself comes from a pool rather than
// this frame: its 128 bytes make room for the deferred endRequest and the
// connection's in serve (a frame 16 bytes larger took idle stacks to 8 KiB).
func (fe *frontend) handleHTTP(ctx *fasthttp.RequestCtx) {
	ex := exchanges.Get().(*exchange)
	defer fe.endRequest(ctx, ex)
	if !fe.admit(ctx, ex) {
		return
	}
	ex.start = fe.startClock()
	fe.state.Requests.Add(1)
	ex.be.counters.Requests.Add(1)
	streamed := false
	idx, err := ex.be.acquireFor(ctx, ex)
	for attempt := 0; err == nil; attempt++ {
		srv := ex.be.servers[idx]
		ex.srv = srv
		if h := panicHook.Load(); h != nil {
			(*h)(hookRequest, ctx)
		}
		streamed, err = srv.forward(ctx, fe, ex.be.cfg.Timeouts.Server, ex)
		if err == nil {
			break
		}
		var again bool
		if idx, again = ex.retry(ctx, err, idx, attempt); !again {
			break
		}
		err = nil
	}
	if h := panicHook.Load(); h != nil && err == nil {
		(*h)(hookResponse, ctx)
	}
	if ex.txn != nil || ex.caps != nil {
		streamed = fe.finishTxn(ctx, ex, err, streamed)
	}
	if ex.be.cookie != nil && err == nil && !ex.tunneled {
		ex.be.cookie.respond(ctx, ex, streamed)
	}
	fe.endExchange(ctx, ex, streamed, err)
	if ex.closeClient {
		ctx.Response.SetConnectionClose() // httpclose: the client's too
	}
}

// admit readies a request for forwarding, or answers it: it is refused
// (prepareRequest), redirected (https-redirect) or the stats page's. It
// sets the headers the options add, routes the request and applies the
// connection mode. Its temporaries are off handleHTTP's frame (see there).
//
//go:noinline
func (fe *frontend) admit(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	if fe.monitor != nil && fe.answerMonitor(ctx) {
		return false
	}
	if err := prepareRequest(ctx, &ex.upgrading); err != nil {
		fe.refuseRequest(ctx, err)
		return false
	}
	if fe.cfg.HTTPSRedirect != 0 && fe.redirectToHTTPS(ctx) {
		return false
	}
	if fe.captures != nil {
		ex.caps = fe.captures.start(ctx)
	}
	if fe.cfg.Options.XForwardedProto {
		setForwardedProto(ctx)
	}
	if fe.cfg.Options.SSLClientHeaders {
		setSSLClientHeaders(ctx)
	}
	be := fe.defaultBackend
	if fe.hasRules {
		t := fe.startTxn(ctx)
		t.Caps = ex.caps
		ex.txn = t // the exchange's from here, for endRequest if a rule panics
		if be = fe.applyRequestRules(ctx, t); be == nil {
			fe.endTxn(ex)
			endCaptures(ex.caps)
			ex.caps = nil
			return false
		}
		if fe.uniqueID != nil {
			fe.addUniqueID(ctx, t)
		}
		if h := panicHook.Load(); h != nil {
			(*h)(hookRules, ctx)
		}
	}
	if fe.stats != nil && fe.stats.serves(ctx) {
		fe.endTxn(ex)
		endCaptures(ex.caps)
		ex.caps = nil
		fe.serveStats(ctx)
		return false
	}
	ex.timed, ex.be = fe.timed, fe.routeTo(be)
	if fe.fwd != nil || ex.be.fwd != nil {
		fe.addForwarded(ctx, ex.be)
	}
	// The more closing of the frontend's and the backend's mode.
	if mode := max(fe.cfg.Options.ConnMode, ex.be.cfg.Options.ConnMode); mode != config.KeepAlive {
		ex.closeServer = fe.closeServerSide(ctx, ex.be)
		ex.closeClient = mode == config.Close
	}
	return true
}

// endExchange answers a failed exchange with HAProxy's error page, counts
// the response, and unless the response body streams (then the stream does
// it once the body is sent) writes the access line, frees the server slot
// and ends the backend's session.
//
//go:noinline
func (fe *frontend) endExchange(ctx *fasthttp.RequestCtx, ex *exchange, streamed bool, err error) {
	be, srv := ex.be, ex.srv
	if ex.body != nil {
		ctx.Request.ResetBody()
		smallBodies.Put(ex.body)
		ex.body = nil
	}
	if err != nil {
		fe.answerError(ctx, be, err, srv)
	}
	class := ctx.Response.StatusCode() / 100
	if class < 1 || class > 5 {
		class = 0
	}
	fe.state.HTTPStatus[class].Add(1)
	be.counters.HTTPStatus[class].Add(1)
	if srv != nil {
		srv.countResponse(ctx, ex, err)
	}
	if streamed {
		return
	}
	if ex.timed && srv != nil && err == nil {
		srv.recordTimes(ex)
	}
	// Logged before the slot is freed, so that the line counts this
	// request in beconn and srv_conn as HAProxy does.
	if fe.access != nil {
		term := terminationFor(err)
		if ex.term[0] != 0 {
			term = string(ex.term[:]) + "--"
		}
		fe.logHTTP(ctx, ex, term, err == nil)
	}
	endCaptures(ex.caps)
	ex.caps = nil
	// What is released is forgotten, so that a panic after this point
	// (endRequest) does not release it twice.
	if srv != nil {
		be.queue.release(srv.member)
		ex.srv = nil
	}
	be.endSession()
	ex.be = nil
}

// countResponse counts the status the server sent, which the rules may
// have changed since, in its counters and passive check, as HAProxy
// counts it; an exchange that failed counts no status.
//
//go:noinline
func (srv *server) countResponse(ctx *fasthttp.RequestCtx, ex *exchange, err error) {
	status := ctx.Response.StatusCode()
	if ex.srvStatus != 0 {
		status = int(ex.srvStatus)
	}
	if err == nil {
		class := status / 100
		if class < 1 || class > 5 {
			class = 0
		}
		srv.state.HTTPStatus[class].Add(1)
	}
	if srv.observe != 0 && !errors.Is(err, errDial) {
		srv.observeResponse(status, err)
	}
}

// observeResponse reports a request the server took to its passive check:
// with observe layer7, an error or a 5xx status other than 501 and 505
// (HAProxy's list) counts as an error; with layer4, reaching the server
// was the success.
//
//go:noinline
func (srv *server) observeResponse(status int, err error) {
	ok := true
	if srv.observe == 7 {
		ok = err == nil && (status < 500 || status == 501 || status == 505)
	}
	srv.observed(ok)
}

// acquireFor takes a server slot for the request, computing the key of a
// hashing algorithm and waiting in the queue when servers are full; it
// records the wait in ex.
//
//go:noinline
func (be *backend) acquireFor(ctx *fasthttp.RequestCtx, ex *exchange) (int, error) {
	if be.cookie != nil {
		if idx, ok, err := be.cookie.acquire(be, ctx, ex); ok {
			return idx, err
		}
	}
	if len(be.sticks) > 0 {
		if idx, waited, ok, err := be.stickAcquire(ex.txn); ok {
			ex.queued = waited
			return idx, err
		}
	}
	if ex.txn != nil && ex.txn.Expired() {
		// A persistence condition ran out of time (a stick rule's
		// that matched took a slot: it did not run out).
		return -1, errRulesTimedOut
	}
	key, hasKey := uint64(0), false
	if be.hashed {
		key, hasKey = keyOf(&be.cfg.Balance, be.header, ctx)
	}
	idx, waited, err := be.queue.acquire(key, hasKey)
	ex.queued = waited
	return idx, err
}

// exchange records one request's way through halo for its httplog line.
// Times are only taken when the frontend logs or something reads the
// servers' timings (frontend.timed).
type exchange struct {
	be     *backend      // where the request was routed
	start  time.Time     // request handed to halo's handler
	queued time.Duration // waiting for a server slot
	// connected (a server connection is ready, dialed or reused) and
	// responded (its response head arrived) are offsets from start, read
	// off the monotonic clock alone (half the cost of time.Now); 0: not
	// reached.
	connected time.Duration
	responded time.Duration
	srv       *server
	retries   int32
	timed     bool // beside retries, in what would be padding
	// srvStatus is the status the server sent, when http-response rules
	// may have changed it since (0: the response's is the server's): the
	// server's counters and passive checks count what it sent.
	srvStatus int16
	bytes     int64 // response body bytes sent to the client
	// srvHead is how many bytes the server's response heads took (what
	// tracked counters count in bytes_out with the body).
	srvHead  int64
	body     *[]byte // the request body, read whole (a smallBodies buffer)
	hostless bool    // the client sent no Host: each attempt names its server
	// upgrading: the client asked to switch protocols; tunneled: the
	// server switched and the tunnel has ended. term, when set, is how
	// the exchange ended, in HAProxy's two termination letters: the
	// tunnel's, or PH for a response an http-response deny refused.
	upgrading bool
	tunneled  bool
	term      [2]byte
	// closeServer, closeClient: the connection mode closes the server
	// connection after the response (http-server-close, httpclose), and
	// the client's (httpclose).
	closeServer, closeClient bool
	// logLevel is the access line's level, as set-log-level left it
	// (beside the other small fields, in what would be padding: the
	// exchange is part of handleHTTP's frame).
	logLevel int8
	// redispatched: a retry went to another server (the access line's
	// retries get HAProxy's '+'); in the byte after logLevel.
	redispatched bool
	// txn is the rules' view of the request, nil when no rule applies.
	txn *rules.Txn
	// caps are the request's capture slots (http_capture.go), nil when
	// the frontend has none; they outlive txn, until the access line.
	caps *rules.Captures
	ck   cookieState // cookie persistence (http_cookie.go)
}

// finishTxn captures the response's headers and runs the http-response
// rules on a response that arrived, and hands the Txn back. A streamed
// response's access line is the stream's to write, from its copy of the
// exchange: what the rules decided for it goes there too. It returns
// whether the response still streams (a rule that replaced it stopped
// the stream: the handler writes the line and releases the rest).
//
//go:noinline
func (fe *frontend) finishTxn(ctx *fasthttp.RequestCtx, ex *exchange, err error, streamed bool) bool {
	if ex.caps != nil && err == nil {
		fe.captures.response(ctx, ex.caps)
	}
	if ex.txn == nil {
		return streamed
	}
	// A server's 4xx is an HTTP error of what the request tracks, by the
	// status it sent (http-response set-status does not change that),
	// counted before the response's rules run, as HAProxy counts it when
	// the head arrives; halo's own answers to a failed exchange are not.
	if err == nil && ctx.Response.StatusCode()/100 == 4 {
		ex.txn.CountHTTPError()
	}
	// The response's rules and stick stores have a deadline of their
	// own: the request's passed while the server answered.
	ex.txn.SetDeadline(fe.rulesDeadline())
	replaced := false
	if err == nil && !ex.tunneled {
		ex.srvStatus = int16(ctx.Response.StatusCode())
		var denied bool
		if replaced, denied = fe.applyResponseRules(ctx, ex.txn, ex.be, ex.srv); replaced {
			streamed = false
			if denied {
				ex.term = [2]byte{'P', 'H'}
			}
		}
	}
	if len(ex.be.sticks) > 0 && err == nil {
		ex.be.stickStore(ex.txn, ex.srv, false)
		ex.be.stickStore(ex.txn, ex.srv, true)
	}
	ex.logLevel = ex.txn.LogLevel
	if streamed {
		if s, ok := ctx.Response.BodyStream().(*bodyStream); ok {
			s.ex.logLevel = ex.logLevel
		}
	}
	// Tracked entries count the bytes known now: a streamed response's
	// body as its Content-Length says.
	out := ex.bytes
	if cl := ctx.Response.Header.ContentLength(); out == 0 && cl > 0 {
		out = int64(cl)
	}
	switch {
	case err == nil && !replaced:
		// The server's answer: its head as the server sent it, as
		// HAProxy counts what it receives.
		ex.txn.Untrack(requestBodyLen(ctx)+requestHeadLen(&ctx.Request.Header), out+ex.srvHead)
	case err == nil:
		// A response rule's answer replaced the server's, written whole.
		untrackHTTP(ctx, ex.txn, requestBodyLen(ctx), int64(len(ctx.Response.Body())), true)
	default:
		// halo's error page is written after the rules' view has ended
		// (endExchange): the request's bytes count, the page's do not.
		untrackHTTP(ctx, ex.txn, requestBodyLen(ctx), 0, false)
	}
	fe.endTxn(ex)
	return streamed
}

// requestBodyLen is the request body's length as its head declares it
// (a chunked body's is not known: 0).
func requestBodyLen(ctx *fasthttp.RequestCtx) int64 {
	return int64(max(ctx.Request.Header.ContentLength(), 0))
}

func (fe *frontend) endTxn(ex *exchange) {
	if ex.txn != nil {
		endTxn(ex.txn)
		ex.txn = nil
	}
}

// recordTimes adds a finished exchange's times to the server's latency
// histograms, as HAProxy's Tw, Tc, Tr and Tt. A reused connection's
// connect time is the wait for it from the pool.
//
//go:noinline
func (srv *server) recordTimes(ex *exchange) {
	connect := ex.connected - ex.queued
	if connect <= reusedAtOnce {
		connect = 0 // a kept-alive connection, ready at once
	}
	srv.state.Timings.Observe(ex.queued, connect, ex.responded-ex.connected, time.Since(ex.start))
}

// reusedAtOnce is exchange.connected for a kept-alive server connection
// that was ready at once: connected, with no time spent.
const reusedAtOnce = time.Duration(1)

// startClock is the start of a request's timing. The access log needs the
// wall clock; the histograms only the monotonic one, which costs half as
// much to read (time.Since against a start taken once keeps it).
func (fe *frontend) startClock() time.Time {
	switch {
	case fe.access != nil:
		return time.Now()
	case fe.timed:
		return clockBase.Add(time.Since(clockBase))
	}
	return time.Time{}
}

// clockBase is what startClock counts monotonic time from.
var clockBase = time.Now()

// since returns the time since start, 0 when requests are not timed.
func (ex *exchange) since() time.Duration {
	if !ex.timed {
		return 0
	}
	return time.Since(ex.start)
}

// refuseRequest answers a request that prepareRequest refused, before it
// was routed.
//
//go:noinline
func (fe *frontend) refuseRequest(ctx *fasthttp.RequestCtx, err *h1.Error) {
	fe.state.badRequests.record(ctx.RemoteAddr(), err, nil, 0)
	fe.state.Requests.Add(1)
	fe.state.Errors.Add(1)
	fe.state.HTTPStatus[err.Status/100].Add(1)
	fe.setError(&ctx.Response, nil, err.Status, true)
	if fe.access != nil {
		fe.logBadRequest(ctx, err.Status, "PR--", time.Time{})
	}
}
