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
	if errors.Is(err, errNoServer) || errors.Is(err, errDial) || errors.Is(err, errQueueTimeout) || errors.Is(err, errQueueFull) {
		be.counters.Denied.Add(1)
	} else if srv != nil {
		srv.state.RespErrors.Add(1)
		var pe *serverProtocolError
		var he *h1.Error
		if errors.As(err, &pe) && errors.As(pe.err, &he) {
			be.state.badResponses.last.Store(h1.NewCapture(srv.addr, he, pe.head, int(he.HeadOffset)))
		}
	}
	fe.state.Errors.Add(1)
	fe.setError(&ctx.Response, be, status, false)
}

// terminationFor is HAProxy's four-character termination state for an
// exchange that ended in the handler: who ended it and in which phase (C:
// connecting, H: waiting for the response head), then the unused
// persistence characters.
func terminationFor(err error) string {
	var ce *clientError
	switch {
	case err == nil:
		return "----"
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
	if b, ok := errorPages[status]; ok {
		return b
	}
	return errorPages[fasthttp.StatusBadRequest]
}

func page(status int, text string) []byte {
	return []byte("<html><body><h1>" + strconv.Itoa(status) + " " + fasthttp.StatusMessage(status) + "</h1>\n" + text + "\n</body></html>\n")
}

var errorPages = map[int][]byte{
	fasthttp.StatusOK:                          page(200, "halo is up."), // monitor-uri's answer
	fasthttp.StatusBadRequest:                  page(400, "Your browser sent a request that halo could not read as HTTP/1.1."),
	fasthttp.StatusMethodNotAllowed:            page(405, "This method is not allowed here."),
	fasthttp.StatusRequestTimeout:              page(408, "The request did not arrive in time."),
	fasthttp.StatusExpectationFailed:           page(417, "The expectation in the request cannot be met."),
	fasthttp.StatusRequestHeaderFieldsTooLarge: page(431, "The request head is larger than this proxy accepts."),
	fasthttp.StatusNotImplemented:              page(501, "The request uses a transfer coding this proxy does not support."),
	fasthttp.StatusHTTPVersionNotSupported:     page(505, "The request's HTTP version is not supported."),
	fasthttp.StatusBadGateway:                  []byte("<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"),
	fasthttp.StatusServiceUnavailable:          []byte("<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"),
	fasthttp.StatusGatewayTimeout:              []byte("<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"),
}
