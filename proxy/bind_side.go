package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/tlsfront"
	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"
)

// bindSide is what one bind of a snapshot does to a connection before the
// frontend's mode sees it: read a PROXY protocol header, terminate TLS.
// The listener holds the live one (a reload that keeps the socket swaps
// it), so a reload that changes a certificate changes it for the next
// handshake, and handshakes under way finish with the old one.
type bindSide struct {
	bind *config.Bind
	tls  *tls.Config // nil: plain TCP
	// proxy is whether connections start with a PROXY header
	// (accept-proxy).
	proxy bool
}

// newBindSide builds a bind's side for one snapshot of frontend fe.
func (p *Proxy) newBindSide(fe string, b *config.Bind) *bindSide {
	s := &bindSide{bind: b}
	if b.TLS != nil {
		// The ticket keys are the bind's own, by a name a reload keeps.
		s.tls = tlsfront.ServerConfig(b.TLS, p.tickets, fe+" "+b.Address)
	}
	s.proxy = b.AcceptProxy != nil
	return s
}

// proxyPolicy is accept-proxy's rule for a connection from peer, in
// go-proxyproto's terms (readProxyHeader applies it), and whether to read a
// header at all: without accept-proxy-from every peer must send
// a header (HAProxy's accept-proxy). With it, the listed peers must; any
// other is served as itself, and in mode http one that sends a header
// anyway is refused, so that no client can forge its address. In mode tcp
// an unlisted peer's bytes are not inspected at all: a server-first
// protocol (MySQL) must not wait for a header that will never come.
func (s *bindSide) proxyPolicy(peer net.Addr, mode config.Mode) (proxyproto.Policy, bool) {
	if s == nil || s.bind.AcceptProxy == nil {
		return proxyproto.USE, false
	}
	from := s.bind.AcceptProxy.From
	if len(from) == 0 {
		return proxyproto.REQUIRE, true
	}
	if ta, ok := peer.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		for _, pfx := range from {
			if pfx.Contains(ip.Unmap()) {
				return proxyproto.REQUIRE, true
			}
		}
	}
	return proxyproto.REJECT, mode == config.ModeHTTP
}

// handshakeTimeout bounds reading a PROXY header and the TLS handshake:
// the frontend's timeout client, as HAProxy 2.6 bounds them (measured: it
// closes a stalled handshake at timeout client, not at timeout
// http-request), else ten seconds, since a handshake must never wait
// forever.
func (fe *frontend) handshakeTimeout() time.Duration {
	if t := fe.cfg.Timeouts.Client; t > 0 {
		return t
	}
	return 10 * time.Second
}

// accept runs the bind side on an accepted connection: nil when the
// connection was refused (a bad PROXY header, a failed handshake), after
// closing and logging it. expectProxy (tcp-request connection
// expect-proxy layer4) requires a PROXY header as accept-proxy does.
func (fe *frontend) accept(c *net.TCPConn, side *bindSide, expectProxy bool) net.Conn {
	if !expectProxy && (side == nil || (side.tls == nil && !side.proxy)) {
		return c
	}
	var conn net.Conn = c
	deadline := time.Now().Add(fe.handshakeTimeout())
	_ = c.SetDeadline(deadline)
	policy, inspect := side.proxyPolicy(c.RemoteAddr(), fe.cfg.Mode)
	if expectProxy {
		policy, inspect = proxyproto.REQUIRE, true
	}
	if (expectProxy || side.proxy) && inspect {
		// Read now, not at the first read: a bad header refuses the
		// connection before TLS or the mode sees it. The handshake
		// deadline bounds it.
		pc, err := readProxyHeader(c, policy)
		if err != nil {
			fe.refuseConn(c, "PROXY protocol header", err)
			return nil
		}
		if pc != nil {
			conn = pc
		}
	}
	if side != nil && side.tls != nil {
		tc := tls.Server(conn, side.tls)
		if err := tc.Handshake(); err != nil {
			fe.state.TLSFailed.Add(1)
			fe.refuseConn(conn, "TLS handshake", err)
			return nil
		}
		fe.state.TLSSessions.Add(1)
		if tc.ConnectionState().DidResume {
			fe.state.TLSReused.Add(1)
		}
		conn = tc
	}
	_ = c.SetDeadline(time.Time{})
	return conn
}

// refuseConn closes a connection refused before its mode saw it. A
// frontend that logs says why in its access log, as HAProxy logs "SSL
// handshake failure"; otherwise it is a debug message.
func (fe *frontend) refuseConn(c net.Conn, what string, err error) {
	c.Close()
	if fe.access != nil {
		fe.access.Info(c.RemoteAddr().String()+" "+fe.cfg.Name+"/"+fe.bindName(c)+": "+what+" failure", zap.Error(err))
		return
	}
	if ce := fe.log.Check(zap.DebugLevel, what+" failure"); ce != nil {
		ce.Write(zap.String("frontend", fe.cfg.Name), zap.Stringer("client", c.RemoteAddr()), zap.Error(err))
	}
}

// bindName names the bind a connection came in on, by its local address.
func (fe *frontend) bindName(c net.Conn) string { return c.LocalAddr().String() }

// proxiedConn is a client connection that began with a PROXY protocol
// header: it reports the header's addresses as its own, and reads first the
// bytes that arrived with the header. It keeps the socket itself within
// reach, so that mode tcp sends those bytes on and then splices (relayConn).
type proxiedConn struct {
	net.Conn // the socket
	src, dst net.Addr
	prefix   []byte
}

func (c *proxiedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.src }
func (c *proxiedConn) LocalAddr() net.Addr  { return c.dst }

// errProxyHeaderFromUntrusted refuses a header from a peer not listed in
// accept-proxy-from.
var errProxyHeaderFromUntrusted = errors.New("PROXY header from a peer not listed in accept-proxy-from")

// readProxyHeader reads the PROXY protocol header (v1 or v2) that c starts
// with, parsed by go-proxyproto, under policy: REQUIRE refuses a
// connection without a valid one, REJECT one that has one. It returns the
// connection the frontend serves: nil to go on with c as it is (no header,
// and none was required), or c with the header's addresses. A LOCAL
// header (a balancer's own health check) and an UNKNOWN one keep the
// socket's addresses, as HAProxy does.
func readProxyHeader(c net.Conn, policy proxyproto.Policy) (*proxiedConn, error) {
	br := bufio.NewReader(c)
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol) && policy == proxyproto.REJECT:
		h = nil
	case err != nil:
		return nil, err
	case policy == proxyproto.REJECT:
		return nil, errProxyHeaderFromUntrusted
	}
	pc := &proxiedConn{Conn: c, src: c.RemoteAddr(), dst: c.LocalAddr()}
	if n := br.Buffered(); n > 0 {
		pc.prefix, _ = br.Peek(n) // the reader is dropped: its buffer is the prefix's now
	}
	if h != nil && h.Command.IsProxy() && h.SourceAddr != nil && h.DestinationAddr != nil {
		if _, ok := h.SourceAddr.(*net.TCPAddr); ok {
			pc.src, pc.dst = h.SourceAddr, h.DestinationAddr
		}
	}
	if h == nil && len(pc.prefix) == 0 {
		return nil, nil
	}
	return pc, nil
}

// relayConn is the connection mode tcp moves a client's bytes through:
// the socket itself when it can be, so that the kernel splices them. For a
// connection that began with a PROXY header, the bytes read with it are
// sent to the server first.
// It returns how many bytes it sent.
func relayConn(c net.Conn, server net.Conn) (net.Conn, int64, error) {
	var sent int64
	if pc, ok := c.(*tlsfront.PrefixConn); ok {
		// The first bytes tcp-request content inspected.
		if prefix := pc.Prefix(); len(prefix) > 0 {
			n, err := server.Write(prefix)
			if sent += int64(n); err != nil {
				return c, sent, err
			}
		}
		c = pc.Raw()
	}
	pc, ok := c.(*proxiedConn)
	if !ok {
		return c, sent, nil
	}
	n, err := server.Write(pc.prefix)
	pc.prefix = nil
	return pc.Conn, sent + int64(n), err
}
