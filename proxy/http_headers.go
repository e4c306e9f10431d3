package proxy

import (
	"bytes"
	"net/netip"

	"github.com/halo-lb/halo/proxy/h1"

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
	http11       = []byte("HTTP/1.1")
)

// prepareRequest turns the client's request into the one halo sends: its
// own HTTP version, no hop-by-hop fields (those RFC 9110 section 7.6.1
// names and those the client's Connection names), the path exactly as
// received, no Content-Type the client did not send, and X-Forwarded-For
// if configured. It refuses what the guard cannot see in one field line:
// an absolute-form target whose authority is not the Host, and a
// Connection that names a framing field.
func prepareRequest(ctx *fasthttp.RequestCtx, forwardFor bool) *h1.Error {
	req := &ctx.Request
	h := &req.Header
	if uri := h.RequestURI(); len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		// The guard let only http(s)://authority[path] through.
		if !bytes.EqualFold(req.URI().Host(), h.Host()) {
			return refusal("absolute-form target's authority differs from Host")
		}
	}
	// fasthttp would resolve dot segments and duplicate slashes and decode
	// the path it sends: a server must see the path the client sent.
	req.URI().DisablePathNormalizing = true
	req.UseHostHeader = true
	h.SetNoDefaultContentType(true)
	if !h.IsHTTP11() {
		h.SetProtocolBytes(http11)
	}
	// Each deletion scans every header; most requests carry none of
	// these, which one pass over the received header block tells.
	if raw := h.RawHeaders(); rawHasHopHeader(raw) {
		if err := dropHopFields(h, raw); err != nil {
			return err
		}
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
	return nil
}

func refusal(reason string) *h1.Error {
	return &h1.Error{Status: fasthttp.StatusBadRequest, Reason: reason, AtEnd: true}
}

// dropHopFields deletes the hop-by-hop fields, the fields the client's
// Connection fields name (RFC 9110 section 7.6.1), and Expect (halo
// answered any "Expect: 100-continue" itself while reading the body). It
// deletes each by the name as received: with names not normalised,
// fasthttp matches them case-sensitively. It refuses a Connection that
// names Content-Length, Transfer-Encoding or Host: a server honouring it
// would frame or route the request without them.
func dropHopFields(h *fasthttp.RequestHeader, raw []byte) *h1.Error {
	for line := range rawLines(raw) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, hopHeaders[0]) {
			continue
		}
		for opt := range bytes.SplitSeq(value, []byte(",")) {
			opt = bytes.Trim(opt, " \t\r")
			if bytes.EqualFold(opt, headerContentLength) || bytes.EqualFold(opt, headerTransferEncoding) || bytes.EqualFold(opt, headerHost) {
				return refusal("Connection names " + string(opt))
			}
		}
	}
	for line := range rawLines(raw) {
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && (isHopHeader(name) || namedByConnection(name, raw)) {
			h.DelBytes(name)
		}
	}
	return nil
}

// namedByConnection reports whether a Connection field in raw names name.
func namedByConnection(name, raw []byte) bool {
	for line := range rawLines(raw) {
		n, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(n, hopHeaders[0]) {
			continue
		}
		for opt := range bytes.SplitSeq(value, []byte(",")) {
			if bytes.EqualFold(bytes.Trim(opt, " \t\r"), name) {
				return true
			}
		}
	}
	return false
}

// rawLines yields the field lines of a received header block, which the
// guard has already held to "Name: value" CRLF lines.
func rawLines(raw []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			line := raw
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			if !yield(bytes.TrimRight(line, "\r")) {
				return
			}
		}
	}
}

var (
	headerContentLength    = []byte("Content-Length")
	headerTransferEncoding = []byte("Transfer-Encoding")
	headerHost             = []byte("Host")
)

func cleanResponse(h *fasthttp.ResponseHeader) {
	// As for requests, delete only when a pass finds something to, and by
	// the name as the server sent it; the header must not change while it
	// is being iterated, so each pass deletes one.
	for range 64 {
		var name [32]byte
		n := 0
		for k := range h.All() {
			if isHopHeader(k) {
				n = copy(name[:], k)
				break
			}
		}
		if n == 0 {
			break
		}
		h.DelBytes(name[:n])
	}
	// Whether the client connection stays open is decided on the client
	// side; the server closing its connection does not close the client's.
	h.ResetConnectionClose()
}
