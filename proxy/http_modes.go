package proxy

import "github.com/valyala/fasthttp"

// HTTP connection modes, HAProxy's option http-keep-alive (the default),
// http-server-close and httpclose, with http-pretend-keepalive. A request
// gets the more closing of its frontend's and its backend's mode
// (handleHTTP), as HAProxy combines them: httpclose over server-close over
// keep-alive.

// closeServerSide readies a request whose server connection closes after
// the response: the server is told so with "Connection: close", unless
// http-pretend-keepalive (on either side) asks to let it believe the
// connection stays open (some servers, such as Java ones, send a response
// they would otherwise end with a close and no length). It returns true:
// the connection is not kept for another request either way.
//
//go:noinline
func (fe *frontend) closeServerSide(ctx *fasthttp.RequestCtx, be *backend) bool {
	if !fe.cfg.Options.PretendKeepalive && !be.cfg.Options.PretendKeepalive {
		// The client's own "Connection: close" was noted by fasthttp
		// before the handler ran; this flag now speaks to the server.
		ctx.Request.Header.SetConnectionClose()
	}
	return true
}
