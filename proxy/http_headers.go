package proxy

import (
	"bytes"

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

// rawHasHopHeader reports whether a header block as received names a
// hop-by-hop header or Expect. It does not rely on the guard for the
// whitespace before a colon: a name is read as a server lenient about it
// would read it.
func rawHasHopHeader(raw []byte) bool {
	for len(raw) > 0 {
		var line []byte
		line, raw = nextLine(raw)
		if name, _, ok := bytes.Cut(line, colon); ok && isHopHeader(bytes.TrimRight(name, " \t")) {
			return true
		}
	}
	return false
}

// nextLine splits the first line off a received header block, which the
// guard has held to "Name: value" CRLF lines.
func nextLine(raw []byte) (line, rest []byte) {
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return bytes.TrimSuffix(raw[:i], cr), raw[i+1:]
	}
	return bytes.TrimSuffix(raw, cr), nil
}

var (
	colon = []byte(":")
	comma = []byte(",")
	cr    = []byte("\r")
)

var (
	headerExpect = []byte("Expect")
	http11       = []byte("HTTP/1.1")
)

// prepareRequest turns the client's request into the one halo sends: its
// own HTTP version, no hop-by-hop fields (those RFC 9110 section 7.6.1
// names and those the client's Connection names), the path exactly as
// received, no Content-Type the client did not send (X-Forwarded-For is
// added once the request is routed: http_forwarded.go). It refuses what the guard cannot see in one field line:
// an absolute-form target whose authority is not the Host, and a
// Connection that names a framing field.
//
// A request that asks to switch protocols (Connection: upgrade) keeps its
// Connection and Upgrade for the server, and *upgrading is set (see
// http_tunnel.go).
func prepareRequest(ctx *fasthttp.RequestCtx, upgrading *bool) *h1.Error {
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
		upgrade := upgradeOf(h, raw)
		if err := dropHopFields(h, raw); err != nil {
			return err
		}
		if upgrade != nil {
			keepUpgrade(h, upgrade)
			*upgrading = true
		}
	}
	// The server connection is ours to keep alive whatever the client
	// asked; fasthttp has already noted a client's "Connection: close".
	h.ResetConnectionClose()
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
	var framing []byte
	connectionOptions(raw, func(opt []byte) bool {
		if bytes.EqualFold(opt, headerContentLength) || bytes.EqualFold(opt, headerTransferEncoding) || bytes.EqualFold(opt, headerHost) {
			framing = opt
		}
		return framing == nil
	})
	if framing != nil {
		return refusal("Connection names " + string(framing))
	}
	for rest := raw; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if name, _, ok := bytes.Cut(line, colon); ok && (isHopHeader(name) || namedByConnection(name, raw)) {
			h.DelBytes(name)
		}
	}
	return nil
}

// namedByConnection reports whether a Connection field in raw names name.
func namedByConnection(name, raw []byte) bool {
	named := false
	connectionOptions(raw, func(opt []byte) bool {
		named = bytes.EqualFold(opt, name)
		return !named
	})
	return named
}

// connectionOptions calls f with each option of the Connection fields in
// raw until f returns false.
func connectionOptions(raw []byte, f func(opt []byte) bool) {
	for len(raw) > 0 {
		var line []byte
		line, raw = nextLine(raw)
		name, value, ok := bytes.Cut(line, colon)
		if !ok || !bytes.EqualFold(name, hopHeaders[0]) {
			continue
		}
		for len(value) > 0 {
			var opt []byte
			opt, value, _ = bytes.Cut(value, comma)
			if opt = bytes.Trim(opt, " \t"); len(opt) > 0 && !f(opt) {
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
