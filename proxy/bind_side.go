package proxy

import (
	"crypto/tls"
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

// newBindSide builds a bind's side for one snapshot.
func (p *Proxy) newBindSide(b *config.Bind) *bindSide {
	s := &bindSide{bind: b}
	if b.TLS != nil {
		s.tls = tlsfront.ServerConfig(b.TLS, p.tickets)
	}
	s.proxy = b.AcceptProxy != nil
	return s
}

// proxyPolicy is accept-proxy's rule for a connection from peer, as
// go-proxyproto applies it: without accept-proxy-from every peer must send
// a header (HAProxy's accept-proxy). With it, the listed peers must; any
// other is served as itself, and in mode http one that sends a header
// anyway is refused, so that no client can forge its address. In mode tcp
// an unlisted peer's bytes are not inspected at all: a server-first
// protocol (MySQL) must not wait for a header that will never come.
func (s *bindSide) proxyPolicy(peer net.Addr, mode config.Mode) (proxyproto.Policy, bool) {
	if s.bind.AcceptProxy == nil {
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
// the frontend's timeout http-request in mode http (the handshake is part
// of waiting for the request, as in HAProxy), else timeout client, else
// ten seconds, since a handshake must never wait forever.
func (fe *frontend) handshakeTimeout() time.Duration {
	t := fe.cfg.Timeouts
	if fe.cfg.Mode == config.ModeHTTP && t.HTTPRequest > 0 {
		return t.HTTPRequest
	}
	if t.Client > 0 {
		return t.Client
	}
	return 10 * time.Second
}

// accept runs the bind side on an accepted connection: nil when the
// connection was refused (a bad PROXY header, a failed handshake), after
// closing and logging it.
func (fe *frontend) accept(c *net.TCPConn, side *bindSide) net.Conn {
	if side == nil || (side.tls == nil && !side.proxy) {
		return c
	}
	var conn net.Conn = c
	deadline := time.Now().Add(fe.handshakeTimeout())
	_ = c.SetDeadline(deadline)
	if policy, inspect := side.proxyPolicy(c.RemoteAddr(), fe.cfg.Mode); side.proxy && inspect {
		// The handshake deadline bounds the header too.
		pc := proxyproto.NewConn(c, proxyproto.WithPolicy(policy), proxyproto.SetReadHeaderTimeout(0))
		// Reading the header now, not at the first read: a bad one
		// refuses the connection before TLS or the mode sees it.
		if _, err := pc.Read(nil); err != nil {
			fe.refuseConn(c, "PROXY protocol header", err)
			return nil
		}
		conn = pc
	}
	if side.tls != nil {
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
