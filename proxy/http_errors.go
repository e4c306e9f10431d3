package proxy

import (
	"errors"
	"net"
	"os"
	"strconv"

	"github.com/halo-lb/halo/proxy/h1"

	"github.com/valyala/fasthttp"
)

// Errors of the L7 exchange, mapped to a status in one place (statusFor).
var (
	errNoServer = errors.New("no server available")
	// errRulesTimedOut: a condition the request's persistence depends on
	// (a stick rule's, force-persist, ignore-persist) ran past the rules'
	// deadline, so where the request should go is not known; answered
	// as the rules' own deadline is (rulesTimedOut).
	errRulesTimedOut = errors.New("the rules ran past their deadline")
	// errDial marks a failure to connect: nothing was sent, so the
	// request may always be retried on another server.
	errDial = errors.New("connecting to server")
	// errStale marks a kept-alive server connection that turned out to be
	// closed before any response byte came back: the server did not
	// process the request, so a replayable one may be retried.
	errStale = errors.New("server closed a kept-alive connection")
)

// clientError is a failure to read the request from the client after its
// head was accepted: the guard stopped its body, the client went away or
// was too slow. The request is answered 400 (or the guard's status, or 408)
// and never retried.
type clientError struct{ err error }

func (e *clientError) Error() string { return "reading the request body: " + e.err.Error() }

func (e *clientError) Unwrap() error { return e.err }

// serverProtocolError is a response a server sent that breaks the rules of
// package h1, or that did not end where its framing said.
type serverProtocolError struct {
	err  error
	head []byte // the response head as read, when err is an *h1.Error
}

func (e *serverProtocolError) Error() string { return "server response: " + e.err.Error() }

func (e *serverProtocolError) Unwrap() error { return e.err }

type staleError struct{ err error }

func (e *staleError) Error() string { return errStale.Error() + ": " + e.err.Error() }

func (e *staleError) Unwrap() []error {
	return []error{errStale, e.err}
}

type dialError struct{ err error }

func (e *dialError) Error() string { return errDial.Error() + ": " + e.err.Error() }

func (e *dialError) Unwrap() []error {
	return []error{errDial, e.err}
}

// answerError replaces the response with HAProxy's error page for err and
// counts the error where it belongs.
//
//go:noinline
func (fe *frontend) answerError(ctx *fasthttp.RequestCtx, be *backend, err error, srv *server) {
	status := statusFor(err)
	var ce *clientError
	if errors.As(err, &ce) {
		if gc, ok := ctx.Conn().(*guardConn); ok {
			gc.answered.Store(true) // this response is the guard's answer
		}
		fe.state.Errors.Add(1)
		fe.setError(&ctx.Response, be, status, true)
		return
	}
	if errors.Is(err, errRulesTimedOut) {
		fe.countInternal(be, nil)
		fe.setError(&ctx.Response, be, status, true)
		ctx.SetConnectionClose()
		return
	}
	var bodyErr *bodyError
	switch {
	case errors.Is(err, errNoServer) || errors.Is(err, errDial) || errors.Is(err, errQueueTimeout) || errors.Is(err, errQueueFull):
		be.counters.Denied.Add(1)
	case srv == nil:
	case errors.As(err, &bodyErr) && isTimeout(err):
		// A body that stalled is a server abort HAProxy does not count
		// as a response error (sD).
	default:
		srv.state.RespErrors.Add(1)
		be.captureBadResponse(srv, err)
	}
	fe.state.Errors.Add(1)
	fe.setError(&ctx.Response, be, status, false)
}

// terminationFor is HAProxy's four-character termination state for an
// exchange that ended in the handler: who ended it and in which phase (C:
// connecting, H: waiting for the response head), then the unused
// persistence characters.
func terminationFor(err error) string {
	if err == nil {
		// Before ce: errors.As makes it escape, and declared first it
		// was an allocation per request for every request that
		// succeeded.
		return "----"
	}
	var ce *clientError
	switch {
	case err == errRulesTimedOut:
		return "PR--" // as for the request's rules (rulesTimedOut)
	case errors.As(err, &ce):
		var ge *h1.Error
		switch {
		case errors.As(err, &ge):
			return "PD--" // the guard refused the body
		case statusFor(err) == fasthttp.StatusRequestTimeout:
			return "cD--"
		default:
			return "CD--"
		}
	case errors.As(err, new(*bodyError)):
		// The head had come: the server broke off or stalled in the
		// data phase, or overran its Content-Length (halo's proxy
		// check).
		switch {
		case errors.As(err, new(*serverProtocolError)):
			return "PD--"
		case statusFor(err) == fasthttp.StatusGatewayTimeout:
			return "sD--"
		}
		return "SD--"
	case errors.As(err, new(*serverProtocolError)):
		return "PH--" // not a response head: halo refused it, as HAProxy
	case statusFor(err) == fasthttp.StatusGatewayTimeout:
		return "sH--"
	case errors.Is(err, errQueueTimeout), errors.Is(err, errQueueFull):
		t := queueTermination(err)
		return string(t[:]) + "--"
	case statusFor(err) == fasthttp.StatusServiceUnavailable:
		return "SC--"
	default:
		return "SH--"
	}
}

// statusFor maps an exchange error to the status HAProxy would send.
func statusFor(err error) int {
	var ne net.Error
	var ce *clientError
	var ge *h1.Error
	switch {
	case err == errRulesTimedOut:
		return fasthttp.StatusInternalServerError
	case errors.As(err, &ce):
		switch {
		case errors.As(err, &ge):
			return ge.Status
		case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			return fasthttp.StatusRequestTimeout
		default:
			return fasthttp.StatusBadRequest
		}
	case errors.Is(err, errNoServer), errors.Is(err, errDial), errors.Is(err, errQueueTimeout), errors.Is(err, errQueueFull):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusGatewayTimeout
	default:
		return fasthttp.StatusBadGateway
	}
}

var textHTML = []byte("text/html")

// errorPage is the body of halo's response with status.
func errorPage(status int) []byte {
	if p, ok := errorPages[status]; ok {
		return p.body
	}
	return page(status, fasthttp.StatusMessage(status), "halo answered this request itself.").body
}

// errorPhrase is the reason phrase of halo's own answer with status: the
// one HAProxy 2.6 writes on its default pages (400 "Bad request", 408
// "Request Time-out", 504 "Gateway Time-out", 407 "Unauthorized"), which
// differs from fasthttp's for a few, nil where they agree.
func errorPhrase(status int) []byte { return errorPages[status].phrase }

type errorPageText struct {
	body   []byte
	phrase []byte // see errorPhrase
}

func page(status int, phrase, text string) errorPageText {
	p := errorPageText{body: []byte("<html><body><h1>" + strconv.Itoa(status) + " " + phrase + "</h1>\n" + text + "\n</body></html>\n")}
	if phrase != fasthttp.StatusMessage(status) {
		p.phrase = []byte(phrase)
	}
	return p
}

// errorPages are halo's own answers, in its words, for every status HAProxy
// has a default page for (the statuses a deny or tarpit without a body may
// take, DefaultPageStatuses in config) and the ones halo's parser refuses
// with.
var errorPages = map[int]errorPageText{
	200: page(200, "OK", "halo is up."), // monitor-uri's answer
	400: page(400, "Bad request", "Your browser sent a request that halo could not read as HTTP/1.1."),
	401: page(401, "Unauthorized", "This content needs credentials."),
	403: page(403, "Forbidden", "This request is not allowed."),
	404: page(404, "Not Found", "Nothing is here."),
	405: page(405, "Method Not Allowed", "This method is not allowed here."),
	407: page(407, "Unauthorized", "This proxy needs credentials."),
	408: page(408, "Request Time-out", "The request did not arrive in time."),
	410: page(410, "Gone", "This content is gone for good."),
	413: page(413, "Payload Too Large", "The request body is larger than this proxy accepts."),
	417: page(417, "Expectation Failed", "The expectation in the request cannot be met."),
	421: page(421, "Misdirected Request", "This server does not answer for that name."),
	422: page(422, "Unprocessable Content", "The request could not be processed."),
	425: page(425, "Too Early", "The request came too early: send it again once the handshake is done."),
	429: page(429, "Too Many Requests", "Too many requests: slow down."),
	431: page(431, "Request Header Fields Too Large", "The request head is larger than this proxy accepts."),
	500: page(500, "Internal Server Error", "halo could not handle this request."),
	501: page(501, "Not Implemented", "The request uses a transfer coding this proxy does not support."),
	502: page(502, "Bad Gateway", "The server returned an invalid or incomplete response."),
	503: page(503, "Service Unavailable", "No server is available to handle this request."),
	504: page(504, "Gateway Time-out", "The server didn't respond in time."),
	505: page(505, "HTTP Version Not Supported", "The request's HTTP version is not supported."),
}
