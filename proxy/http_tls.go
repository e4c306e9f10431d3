package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"

	"github.com/halo-lb/halo/tlsfront"
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
	delReceived(h, func(name []byte) bool {
		return bytes.EqualFold(name, headerXFProto) || bytes.EqualFold(name, headerXFPort)
	})
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

// delReceived deletes the fields the client sent whose names match, under
// whatever case it spelled them: names are not normalised, so fasthttp's
// Del matches them as spelled.
func delReceived(h *fasthttp.RequestHeader, match func(name []byte) bool) {
	for rest := h.RawHeaders(); len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if name, _, ok := bytes.Cut(line, colon); ok && match(name) {
			h.DelBytes(name)
		}
	}
}

var sslClientPrefix = []byte("X-SSL-Client-")

// setSSLClientHeaders is "option ssl-client-headers": the client
// certificate's facts as the headers a TripleO-style configuration sets
// with http-request set-header X-SSL-Client-... %[ssl_c_...], so that a
// service behind halo can authorise by certificate. X-SSL-Client-Verify
// is ssl_c_verify, 0 (verified): a certificate that failed verification
// failed the handshake. Whatever X-SSL-Client-* the client sent is
// dropped, so a client cannot claim a certificate.
func setSSLClientHeaders(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	delReceived(h, func(name []byte) bool {
		return len(name) >= len(sslClientPrefix) && bytes.EqualFold(name[:len(sslClientPrefix)], sslClientPrefix)
	})
	tc := clientTLS(ctx)
	if tc == nil {
		return
	}
	cs := tc.ConnectionState()
	cert := tlsfront.ClientCertOf(&cs)
	if !cert.Used {
		h.Set("X-SSL-Client-Used", "0")
		return
	}
	h.Set("X-SSL-Client-Used", "1")
	h.Set("X-SSL-Client-Verify", "0")
	h.Set("X-SSL-Client-S-DN", cert.SubjectDN)
	h.Set("X-SSL-Client-I-DN", cert.IssuerDN)
	h.Set("X-SSL-Client-CN", cert.CN)
	h.Set("X-SSL-Client-Serial", cert.Serial)
	h.Set("X-SSL-Client-NotAfter", cert.NotAfter)
}
