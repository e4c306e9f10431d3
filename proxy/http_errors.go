package proxy

import (
	"errors"
	"net"
	"os"

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
	if errors.Is(err, errNoServer) || errors.Is(err, errDial) || errors.Is(err, errQueueTimeout) || errors.Is(err, errQueueFull) {
		be.counters.Denied.Add(1)
	} else if srv != nil {
		srv.state.RespErrors.Add(1)
	}
	fe.state.Errors.Add(1)
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(textHTML)
	ctx.Response.SetBodyRaw(errorPages[status])
	ctx.Response.SetConnectionClose()
}

// terminationFor is HAProxy's four-character termination state for an
// exchange that ended in the handler: who ended it and in which phase (C:
// connecting, H: waiting for the response head), then the unused
// persistence characters.
func terminationFor(err error) string {
	switch {
	case err == nil:
		return "----"
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
	switch {
	case errors.Is(err, errNoServer), errors.Is(err, errDial), errors.Is(err, errQueueTimeout), errors.Is(err, errQueueFull):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusGatewayTimeout
	default:
		return fasthttp.StatusBadGateway
	}
}

var (
	textHTML   = []byte("text/html")
	errorPages = map[int][]byte{
		fasthttp.StatusBadGateway:         []byte("<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"),
		fasthttp.StatusServiceUnavailable: []byte("<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"),
		fasthttp.StatusGatewayTimeout:     []byte("<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"),
	}
)
