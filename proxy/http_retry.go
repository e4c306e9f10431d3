package proxy

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/h1"

	"github.com/valyala/fasthttp"
)

// An exchange that failed is tried again, within the backend's retries,
// when retry-on (config.RetryOn) names its failure and the request can be
// sent again, as HAProxy's retry-on decides it:
//
//	conn-failure      the connection failed (errDial): nothing was sent
//	empty-response    the server closed or reset the connection before its
//	                  response head was complete (or while the request was
//	                  being written)
//	junk-response     what came back is not an HTTP response head
//	response-timeout  timeout server struck before the head was complete
//	401 ... 504       the head came with one of these statuses: the
//	                  response is dropped unless this was the last try
//
// Anything after the response head (a body cut short, bodyError) is never
// retried: the head may be on its way to the client. Past conn-failure,
// halo retries a request only when its method is idempotent and its body
// was buffered (at most 64 KiB): HAProxy 2.6 retries any method, halo
// holds to the rule that a request the server may have acted on is sent
// twice only when that is harmless. A kept-alive connection that turns
// out closed (errStale) is retried as before, whatever retry-on says.

// bodyError is a failure of the server side after the response head was
// read: the body was cut short, stalled, or overran its Content-Length.
// It ends the exchange in the data phase (termination ?D).
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "server response body: " + e.err.Error() }

func (e *bodyError) Unwrap() error { return e.err }

// retryStatusError is a response whose status retry-on names, dropped so
// that the request is tried again.
type retryStatusError struct{ status int }

func (e *retryStatusError) Error() string {
	return "server answered " + strconv.Itoa(e.status) + ", which retry-on retries"
}

// retryAfter counts a failed attempt on srv where HAProxy counts it and
// reports whether the request may be tried again.
//
//go:noinline
func (be *backend) retryAfter(ctx *fasthttp.RequestCtx, srv *server, err error, ex *exchange) bool {
	if errors.Is(err, errDial) {
		srv.state.ConnErrors.Add(1)
		if srv.observe != 0 {
			srv.observed(false)
		}
		return be.cfg.RetryOn.Has(config.RetryConnFailure)
	}
	if errors.Is(err, errStale) {
		return true
	}
	var rs *retryStatusError
	if errors.As(err, &rs) {
		return true // forward only drops a response it may retry
	}
	kind := retryKind(err)
	if kind == 0 || !be.cfg.RetryOn.Has(kind) || !replayable(ctx, ex) {
		return false
	}
	// The attempt failed at the server: HAProxy counts a response error
	// for junk and for a reset (not for a close or a timeout) even when
	// it retries, and the passive check hears of it.
	if kind == config.RetryJunkResponse || errors.Is(err, syscall.ECONNRESET) {
		srv.state.RespErrors.Add(1)
		be.captureBadResponse(srv, err)
	}
	if srv.observe == 7 {
		srv.observed(false)
	} else if srv.observe == 4 {
		srv.observed(true) // the connection was made
	}
	return true
}

// retryKind is the retry-on keyword that names a failure to get a
// response head, 0 for anything else (a client's error, a body cut
// short).
func retryKind(err error) config.RetryOn {
	var ce *clientError
	var be *bodyError
	var pe *serverProtocolError
	switch {
	case err == nil, errors.As(err, &ce), errors.As(err, &be):
		return 0
	case errors.As(err, &pe):
		return config.RetryJunkResponse
	case isTimeout(err):
		return config.RetryResponseTimeout
	case closedBeforeResponse(err):
		return config.RetryEmptyResponse
	}
	return 0
}

// isTimeout reports whether err is a deadline that struck.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// replayable reports whether the request can be sent again after the
// server may have seen it: its body is in memory, and sending it twice is
// harmless (an idempotent method).
func replayable(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	return !ctx.Request.IsBodyStream() && idempotent(&ctx.Request) && !ex.upgrading
}

// retryStatus is a retryStatusError when forward should drop the
// response whose head ctx holds so that the request is tried again:
// retry-on names its status, the request is replayable and tries are
// left (ex.retries counts the tries so far). Off forward's frame (see
// handleHTTP).
//
//go:noinline
func (ex *exchange) retryStatus(ctx *fasthttp.RequestCtx) error {
	status := ctx.Response.Header.StatusCode()
	if int(ex.retries) < ex.be.cfg.Retries && ex.be.cfg.RetryOn.OnStatus(status) && replayable(ctx, ex) {
		return &retryStatusError{status: status}
	}
	return nil
}

// retry decides what follows an attempt on the server at idx that failed
// with err: the member to try next (its slot held) and true, or false
// when the request is answered with err. Off handleHTTP's frame.
//
//go:noinline
func (ex *exchange) retry(ctx *fasthttp.RequestCtx, err error, idx, attempt int) (int, bool) {
	be, srv := ex.be, ex.be.servers[idx]
	if !be.retryAfter(ctx, srv, err, ex) {
		return idx, false
	}
	next, again := be.retryTarget(idx, attempt)
	if !again {
		return idx, false
	}
	ex.redispatched = ex.redispatched || next != idx
	ex.srv = be.servers[next]
	ex.retries++
	return next, true
}

// headReadError is what fasthttp's failure to parse a response head that
// package h1 passed comes to: a protocol error, unless the connection
// failed or timed out under it. Off readResponseHead's frame (see
// handleHTTP).
//
//go:noinline
func headReadError(err error) error {
	if closedBeforeResponse(err) || isTimeout(err) {
		return err
	}
	return &serverProtocolError{err: err}
}

// captureBadResponse keeps a server's invalid response head for "show
// errors".
func (be *backend) captureBadResponse(srv *server, err error) {
	var pe *serverProtocolError
	var he *h1.Error
	if errors.As(err, &pe) && errors.As(pe.err, &he) {
		be.state.badResponses.last.Store(h1.NewCapture(srv.addr, he, pe.head, int(he.HeadOffset)))
	}
}
