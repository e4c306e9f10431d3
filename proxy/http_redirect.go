package proxy

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	headerLocation = []byte("Location")
	schemeHTTPS    = []byte("https://")
)

// redirectToHTTPS is "https-redirect": HAProxy's
// "redirect scheme https code N if !{ ssl_fc }" for a request that came
// over plain TCP. The Location is the same host (with any port the client
// wrote) and the same target, as HAProxy's redirect scheme builds it; the
// client connection stays open. It reports whether it answered.
func (fe *frontend) redirectToHTTPS(ctx *fasthttp.RequestCtx) bool {
	if clientTLS(ctx) != nil {
		return false
	}
	status := fe.cfg.HTTPSRedirect
	target := ctx.Request.Header.RequestURI()
	if len(target) == 0 || target[0] != '/' {
		// An absolute-form target (its authority is the Host, which
		// prepareRequest checked): keep its path and query.
		target = ctx.Request.URI().RequestURI()
	}
	var buf [512]byte
	loc := append(append(append(buf[:0], schemeHTTPS...), ctx.Request.Header.Host()...), target...)
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetBytesKV(headerLocation, loc)
	ctx.Response.Header.SetContentLength(0)
	fe.state.Requests.Add(1)
	fe.state.HTTPStatus[status/100].Add(1)
	if fe.access != nil {
		fe.logRedirect(ctx, status)
	}
	return true
}

// logRedirect writes the httplog line of a request answered by halo itself
// as HAProxy logs a redirect: no server, termination state LR.
func (fe *frontend) logRedirect(ctx *fasthttp.RequestCtx, status int) {
	lb := lineBufs.Get().(*[]byte)
	b := fe.appendLogPrefix((*lb)[:0], ctx.RemoteAddr(), false, time.Now(), nil, nil)
	b = append(b, " 0/-1/-1/-1/0 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " 0 - - LR--"...)
	b = fe.appendConnCounts(b, nil, nil, 0, false)
	b = append(b, " 0/0 \""...)
	b = append(b, ctx.Method()...)
	b = append(b, ' ')
	b = append(b, ctx.RequestURI()...)
	b = append(b, ' ')
	b = append(b, ctx.Request.Header.Protocol()...)
	b = append(b, '"')
	fe.accessLine(0, b)
	putLine(lb, b)
}
