package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
)

// clientTLS returns the TLS connection a request came in on, nil for plain
// TCP. fasthttp's own IsTLS cannot see it under the guard's wrapper.
func clientTLS(ctx *fasthttp.RequestCtx) *tls.Conn {
	gc, ok := ctx.Conn().(*guardConn)
	if !ok {
		return nil
	}
	tc, _ := gc.Conn.(*tls.Conn)
	return tc
}

var (
	headerXFProto = []byte("X-Forwarded-Proto")
	headerXFPort  = []byte("X-Forwarded-Port")
	protoHTTPS    = []byte("https")
	protoHTTP     = []byte("http")
)

// setForwardedProto is "option x-forwarded-proto": what TripleO writes as
// "http-request set-header X-Forwarded-Proto https if { ssl_fc }" and
// "http-request set-header X-Forwarded-Port %[dst_port]", so that an API
// behind halo builds its URLs with the scheme and port the client used.
// Values the client sent are replaced: they would let it lie about both.
func setForwardedProto(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	// Names are not normalised, so fasthttp matches them as spelled:
	// delete the client's under whatever case it used.
	for rest := h.RawHeaders(); len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if name, _, ok := bytes.Cut(line, colon); ok && (bytes.EqualFold(name, headerXFProto) || bytes.EqualFold(name, headerXFPort)) {
			h.DelBytes(name)
		}
	}
	if clientTLS(ctx) != nil {
		h.SetBytesKV(headerXFProto, protoHTTPS)
	} else {
		h.SetBytesKV(headerXFProto, protoHTTP)
	}
	if a, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
		var buf [8]byte
		h.SetBytesKV(headerXFPort, strconv.AppendInt(buf[:0], int64(a.Port), 10))
	}
}
