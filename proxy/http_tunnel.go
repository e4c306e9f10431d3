package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// An Upgrade (RFC 9110 section 7.8), WebSocket's opening handshake among
// them: the client's request keeps its "Connection: upgrade" and
// "Upgrade" fields, and a 101 answer turns both connections into a byte
// tunnel, as HAProxy does. The tunnel runs on the request's own goroutine,
// inside the handler, so the connection keeps its maxconn slot, its
// server slot and its place in a retiring generation (hard-stop-after
// bounds it) for as long as it lives.

var (
	headerUpgrade    = []byte("Upgrade")
	headerConnection = []byte("Connection")
	tokenUpgrade     = []byte("upgrade")
	tokenH2C         = []byte("h2c")
	status101        = []byte(" 101")
)

// upgradeOf returns the Upgrade field of a request that asks for a
// protocol switch (Connection names "upgrade"), as received, or nil. Only
// a request without a body may switch: its end is where the tunnel starts.
func upgradeOf(h *fasthttp.RequestHeader, raw []byte) []byte {
	// ContentLength: -1 chunked, -2 neither field (a request without a
	// body), else the length.
	if cl := h.ContentLength(); cl > 0 || cl == -1 || !namedByConnection(tokenUpgrade, raw) {
		return nil
	}
	for rest := raw; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if name, value, ok := bytes.Cut(line, colon); ok && bytes.EqualFold(name, headerUpgrade) {
			// h2c is HTTP/2's cleartext upgrade, which RFC 9113
			// deprecates: the request goes on as HTTP/1.1, its
			// Upgrade dropped, so that every request on the
			// connection stays one halo routes and logs. HAProxy 2.6
			// forwards it (measured); halo declines it on purpose.
			if v := bytes.Trim(value, " \t"); len(v) > 0 && !bytes.EqualFold(v, tokenH2C) {
				return v
			}
		}
	}
	return nil
}

// keepUpgrade puts back the two fields prepareRequest dropped as
// hop-by-hop, for the server to switch.
func keepUpgrade(h *fasthttp.RequestHeader, upgrade []byte) {
	h.SetBytesKV(headerConnection, tokenUpgrade)
	h.SetBytesKV(headerUpgrade, upgrade)
}

// is101 reports whether a response head (as checkResponseHead passed it)
// has status 101.
func is101(head []byte) bool {
	sp := bytes.IndexByte(head, ' ')
	return sp > 0 && bytes.HasPrefix(head[sp:], status101)
}

// switchProtocols runs the tunnel of a request the server answered with
// 101, its head still in br. A function of its own, so that forward's
// frame, part of every request's stack, stays small.
//
//go:noinline
func (srv *server) switchProtocols(ctx *fasthttp.RequestCtx, fe *frontend, conn net.Conn, br *bufio.Reader, heads int64, ex *exchange) error {
	fe.countBytes(srv, 0, heads)
	n, _ := checkResponseHead(br) // checked already: the 101's length
	head, _ := br.Peek(n)
	head = bytes.Clone(head)
	_, _ = br.Discard(n)
	return srv.tunnel(ctx, fe, conn, br, head, ex)
}

var errEarlyTunnelData = errors.New("the client sent data after its upgrade request before the server switched protocols")

// tunnel serves a switched connection: it sends the server's 101 head (as
// the server wrote it) and whatever the server sent after it to the
// client, then moves bytes both ways until both directions end, with the
// backend's timeout tunnel (else timeout client and server), counting
// them as a session's. Where both sides are plain TCP sockets the kernel
// splices them. Both connections are closed when it returns; the access
// log line, written after, has status 101, the tunnel's bytes to the
// client and its termination state.
func (srv *server) tunnel(ctx *fasthttp.RequestCtx, fe *frontend, conn net.Conn, br *bufio.Reader, head []byte, ex *exchange) error {
	gc, ok := ctx.Conn().(*guardConn)
	if !ok {
		return errors.New("no client connection to switch")
	}
	if gc.g.Pending() > 0 {
		// A WebSocket client waits for the 101 (RFC 6455 section 4.1);
		// bytes read past the request are in fasthttp's reader, out
		// of the tunnel's reach.
		return &clientError{errEarlyTunnelData}
	}
	// A tunnel is a session of its frontend from now on, no longer a
	// connection of the HTTP server generation that parsed its request:
	// a reload that replaces the generation drains it without waiting
	// for tunnels, or cutting them at hard-stop-after; like mode tcp
	// sessions they end only if the frontend goes. "shutdown sessions
	// server" finds them there too.
	if gc.served != nil {
		gc.served.conns.remove(gc.Conn)
	}
	tracked := gc.fs.tcp.addSession(gc.Conn, srv) // false: the frontend was removed, its sessions closed
	if tracked {
		defer gc.fs.tcp.remove(gc.Conn)
	}
	client := socketOf(gc.Conn)
	// Both connections close when the tunnel ends, even in a panic; from
	// the first byte written to the client on, the connection is the
	// tunnel's and no error response may follow (requestPanicked).
	defer conn.Close()
	defer client.Close()
	ex.tunneled = true
	ss := session{be: ex.be, srv: srv, accepted: ex.start, connected: time.Now(), termination: [2]byte{'-', '-'}}
	if t := fe.cfg.Timeouts.Client; t > 0 {
		_ = client.SetWriteDeadline(time.Now().Add(t))
	}
	out := int64(0)
	n, err := client.Write(head)
	out += int64(n)
	if err == nil && br.Buffered() > 0 {
		early, _ := br.Peek(br.Buffered())
		n, err = client.Write(early)
		out += int64(n)
	}
	fe.countBytes(srv, 0, out-int64(len(head))) // the head was counted as read
	switch {
	case err == nil && tracked:
		fe.relay(client, conn, &ss)
	case err == nil:
		ss.termination = [2]byte{'K', 'D'} // cut as its removed frontend's sessions were
	default:
		ss.termination = [2]byte{'C', 'D'} // the client went before the switch reached it
	}
	ex.bytes = out - int64(len(head)) + ss.out
	ex.term = ss.termination
	ctx.Response.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.SkipBody = true
	ctx.SetConnectionClose()
	return nil
}

// socketOf is the connection a tunnel moves a client's bytes through: the
// socket under a PROXY header's wrapper (nothing of it is left to read
// once a request was parsed), so that it can splice; otherwise c.
func socketOf(c net.Conn) net.Conn {
	if pc, ok := c.(*proxiedConn); ok && len(pc.prefix) == 0 {
		return pc.Conn
	}
	return c
}
