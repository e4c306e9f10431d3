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
		return sameField(name, headerXFProto) || sameField(name, headerXFPort)
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

// sameField reports whether a received field name is want, ignoring case
// and with '_' taken for '-': a WSGI or CGI server behind halo reads
// X_SSL_Client_CN as HTTP_X_SSL_CLIENT_CN, the variable the real
// X-SSL-Client-CN becomes, so a forged spelling must go too.
func sameField(name, want []byte) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range name {
		a := name[i]
		if a == '_' {
			a = '-'
		}
		// ASCII lower case; want holds only letters and '-', which no
		// other byte of a field name maps to.
		if a|0x20 != want[i]|0x20 {
			return false
		}
	}
	return true
}

var sslClientPrefix = []byte("X-SSL-Client-")

// clientCertHeaders are the X-SSL-Client-* fields of one connection,
// built from its handshake once and set on each of its requests.
type clientCertHeaders struct {
	fields [7][2]string
	n      int
}

// clientCertHeadersOf builds the fields of a TLS connection's client
// certificate.
func clientCertHeadersOf(tc *tls.Conn) *clientCertHeaders {
	cs := tc.ConnectionState()
	cert := tlsfront.ClientCertOf(&cs)
	ch := &clientCertHeaders{}
	add := func(k, v string) { ch.fields[ch.n] = [2]string{k, v}; ch.n++ }
	if !cert.Used {
		add("X-SSL-Client-Used", "0")
		return ch
	}
	add("X-SSL-Client-Used", "1")
	add("X-SSL-Client-Verify", "0")
	add("X-SSL-Client-S-DN", cert.SubjectDN)
	add("X-SSL-Client-I-DN", cert.IssuerDN)
	add("X-SSL-Client-CN", cert.CN)
	add("X-SSL-Client-Serial", cert.Serial)
	add("X-SSL-Client-NotAfter", cert.NotAfter)
	return ch
}

// setSSLClientHeaders is "option ssl-client-headers": the client
// certificate's facts as the headers a TripleO-style configuration sets
// with http-request set-header X-SSL-Client-... %[ssl_c_...], so that a
// service behind halo can authorise by certificate. X-SSL-Client-Verify
// is ssl_c_verify, 0 (verified): a certificate that failed verification
// failed the handshake. Whatever X-SSL-Client-* the client sent is
// dropped, so a client cannot claim a certificate. The fields are built
// once per connection (the guard keeps them), so a kept-alive request
// allocates nothing for them.
func setSSLClientHeaders(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	delReceived(h, func(name []byte) bool {
		return len(name) >= len(sslClientPrefix) && sameField(name[:len(sslClientPrefix)], sslClientPrefix)
	})
	gc, ok := ctx.Conn().(*guardConn)
	if !ok {
		return
	}
	tc, _ := gc.Conn.(*tls.Conn)
	if tc == nil {
		return
	}
	if gc.clientCert == nil {
		gc.clientCert = clientCertHeadersOf(tc)
	}
	ch := gc.clientCert
	for _, f := range ch.fields[:ch.n] {
		h.Set(f[0], f[1])
	}
}
