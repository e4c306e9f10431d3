package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Hop-by-hop headers (RFC 9110 section 7.6.1) that a proxy must not forward.
// Transfer-Encoding is handled by fasthttp's framing.
var hopHeaders = [][]byte{
	[]byte("Connection"), []byte("Keep-Alive"), []byte("Proxy-Connection"), []byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"), []byte("Te"), []byte("Trailer"), []byte("Upgrade"),
}

// isHopHeader reports whether name is one of hopHeaders or Expect, in any
// case.
func isHopHeader(name []byte) bool {
	switch len(name) {
	case 2, 6, 7, 10, 16, 18, 19:
	default:
		return false
	}
	for _, k := range hopHeaders {
		if bytes.EqualFold(name, k) {
			return true
		}
	}
	return bytes.EqualFold(name, headerExpect)
}

// rawHasHopHeader reports whether a header block as received ("Name:
// value" lines, CRLF or LF separated) names a hop-by-hop header or Expect.
func rawHasHopHeader(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if i := bytes.IndexByte(line, ':'); i > 0 && isHopHeader(bytes.TrimRight(line[:i], " \t")) {
			return true
		}
	}
	return false
}

var (
	headerXFF    = []byte("X-Forwarded-For")
	headerExpect = []byte("Expect")
)

func prepareRequest(ctx *fasthttp.RequestCtx, forwardFor bool) {
	h := &ctx.Request.Header
	// Each deletion scans every header; most requests carry none of
	// these, which one pass over the received header block tells.
	if rawHasHopHeader(h.RawHeaders()) {
		for _, k := range hopHeaders {
			h.DelBytes(k)
		}
		// halo answered any "Expect: 100-continue" itself while reading
		// the body.
		h.DelBytes(headerExpect)
	}
	// The server connection is ours to keep alive whatever the client
	// asked; fasthttp has already noted a client's "Connection: close".
	h.ResetConnectionClose()
	if forwardFor {
		if ip, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
			var buf [48]byte
			h.AddBytesKV(headerXFF, ip.Unmap().AppendTo(buf[:0]))
		}
	}
}

func cleanResponse(h *fasthttp.ResponseHeader) {
	// As for requests, delete only when one pass finds something to; the
	// header must not change while it is being iterated.
	found := false
	for k := range h.All() {
		if found = isHopHeader(k); found {
			break
		}
	}
	if found {
		for _, k := range hopHeaders {
			h.DelBytes(k)
		}
	}
	// Whether the client connection stays open is decided on the client
	// side; the server closing its connection does not close the client's.
	h.ResetConnectionClose()
}
