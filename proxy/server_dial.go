package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/tlsfront"
	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/valyala/fasthttp"
)

// serverTransport is what a connection to a server carries besides TCP: a
// PROXY protocol header, then TLS. A server with neither has a zero value
// and its connections stay raw sockets, which mode tcp splices.
type serverTransport struct {
	tls *tls.Config // nil: plain TCP
	// sniHost sends the request's Host as SNI (sni req.hdr(host)).
	sniHost bool
	proxy   config.ProxyProtocol
	// private is whether a connection belongs to one client (its PROXY
	// header or its SNI came from that client's request), so that it
	// must not be pooled for others.
	private bool
}

func newServerTransport(sc *config.Server) (serverTransport, error) {
	t := serverTransport{proxy: sc.SendProxy}
	if sc.TLS != nil {
		c, err := sc.TLS.ClientConfig()
		if err != nil {
			return t, err
		}
		t.tls, t.sniHost = c, sc.TLS.SNIFromHost
	}
	t.private = t.proxy.Version != 0 || t.sniHost
	return t, nil
}

// newCheckTransport is the server's check-ssl and check-send-proxy, nil
// when its checks are plain TCP.
func newCheckTransport(sc *config.Server) (*health.Transport, error) {
	if sc.CheckTLS == nil && sc.CheckSendProxy.Version == 0 {
		return nil, nil
	}
	t := &health.Transport{ProxyVersion: sc.CheckSendProxy.Version}
	if sc.CheckTLS != nil {
		c, err := sc.CheckTLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		t.TLS = c
	}
	return t, nil
}

// tlsError is a failed TLS handshake with a server: like a refused
// connection, nothing of the request was sent, so it is retried and, once
// the retries are spent, answered with 503 as HAProxy does.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake with the server: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// dialServer connects to the server: TCP, the PROXY header for client (the
// connection halo serves; nil writes none), then the TLS handshake with
// sni ("" for the configured one), bounded by timeout connect.
func (srv *server) dialServer(d *net.Dialer, client net.Conn, sni string) (net.Conn, error) {
	start := time.Now()
	c, err := d.Dial("tcp", srv.addr)
	if err != nil {
		return nil, err
	}
	t := &srv.transport
	if t.proxy.Version != 0 && client != nil {
		if err := writeProxyHeader(c, t.proxy, client); err != nil {
			c.Close()
			return nil, err
		}
	}
	if t.tls == nil {
		return c, nil
	}
	cfg := t.tls
	if sni != "" {
		cfg = cfg.Clone() // shares the session cache
		cfg.ServerName = sni
	}
	tc := tls.Client(c, cfg)
	if d.Timeout > 0 {
		_ = tc.SetDeadline(start.Add(d.Timeout))
	}
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, &tlsError{err}
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// writeProxyHeader writes the PROXY header of pp for the client connection:
// its source is the client as halo sees it (RemoteAddr, which accept-proxy
// makes the address the header halo received named), its destination the
// address the client reached (LocalAddr).
func writeProxyHeader(c io.Writer, pp config.ProxyProtocol, client net.Conn) error {
	h := proxyproto.HeaderProxyFromAddrs(byte(pp.Version), client.RemoteAddr(), client.LocalAddr())
	if pp.SSL {
		if cs, ok := clientTLSState(client); ok {
			tlv, err := sslTLV(cs, pp.SSLCN)
			if err != nil {
				return err
			}
			if err := h.SetTLVs([]proxyproto.TLV{tlv}); err != nil {
				return err
			}
		}
	}
	if _, err := h.WriteTo(c); err != nil {
		return fmt.Errorf("sending the PROXY header: %w", err)
	}
	return nil
}

// connectionStater is a TLS connection, or a wrapper of one that exposes
// its state.
type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

// clientTLSState finds the TLS state of a client connection through the
// wrappers around it (halo's own guard, and any that expose NetConn, as
// *tls.Conn itself does).
func clientTLSState(c net.Conn) (tls.ConnectionState, bool) {
	for range 8 { // wrappers nest a few deep at most
		if s, ok := c.(connectionStater); ok {
			return s.ConnectionState(), true
		}
		switch w := c.(type) {
		case *guardConn:
			c = w.Conn
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		default:
			return tls.ConnectionState{}, false
		}
	}
	return tls.ConnectionState{}, false
}

// sslTLV is PP2_TYPE_SSL as HAProxy sends it: the client used TLS, with a
// certificate or not and whether it was verified, the version and, with
// cn, the client certificate's common name.
func sslTLV(cs tls.ConnectionState, cn bool) (proxyproto.TLV, error) {
	s := tlvparse.PP2SSL{Client: tlvparse.PP2_BITFIELD_CLIENT_SSL, Verify: 1}
	if len(cs.PeerCertificates) > 0 {
		s.Client |= tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN | tlvparse.PP2_BITFIELD_CLIENT_CERT_SESS
		if len(cs.VerifiedChains) > 0 {
			s.Verify = 0
		}
	}
	s.TLV = append(s.TLV, proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(tlsfront.VersionName(cs.Version))})
	if cn && len(cs.PeerCertificates) > 0 && cs.PeerCertificates[0].Subject.CommonName != "" {
		s.TLV = append(s.TLV, proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte(cs.PeerCertificates[0].Subject.CommonName)})
	}
	return s.Marshal()
}

// privateClient is a host client for one request to a server whose
// connections belong to one client (send-proxy, sni req.hdr(host)). Its one
// connection carries the client's PROXY header and SNI and is closed after
// the response: halo does not pool such connections, as HAProxy does not
// share them between clients. That costs this client its allocation and a
// handshake per request; servers without these options are unaffected.
func (be *backend) privateClient(srv *server, ctx *fasthttp.RequestCtx) *fasthttp.HostClient {
	client := ctx.Conn()
	sni := ""
	if srv.transport.sniHost {
		sni = hostOnly(string(ctx.Request.Header.Host()))
	}
	hc := be.newHostClient(srv)
	hc.Dial = func(string) (net.Conn, error) {
		c, err := srv.dialServer(&be.dialer, client, sni)
		if err != nil {
			return nil, &dialError{err}
		}
		return c, nil
	}
	return hc
}

// hostOnly strips a port from a Host header value.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
