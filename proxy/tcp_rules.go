package proxy

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/proxy/rules"
	"github.com/halo-lb/halo/tlsfront"
)

// tcpRules are a frontend's tcp-request rule sets (rules_build.go).
type tcpRules struct {
	connection *rules.Program // at accept, before the preamble
	session    *rules.Program // after the PROXY header and the TLS handshake
	content    *rules.Program // mode tcp: on the stream's first bytes
}

// tcpTxn readies a Txn for a connection's tcp-request rules.
func (fe *frontend) tcpTxn(c net.Conn) *rules.Txn {
	t := txns.Get().(*rules.Txn)
	t.Reset(fe.vars)
	t.Src, t.Dst = addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
	t.TLS, _ = c.(*tls.Conn)
	t.Env = fe.env
	t.Frontend, t.Backend = fe.index, fe.defaultBackend.index
	t.Payload, t.Hello, t.HelloSNI = nil, false, nil
	return t
}

// connTxn is the Txn a connection's rules share from accept to close
// (tcp-request connection, session and, in mode tcp, content rules, with
// what they track and the session variables), nil when the frontend has
// none of those.
func (fe *frontend) connTxn(c net.Conn) *rules.Txn {
	if !fe.connRules {
		return nil
	}
	return fe.tcpTxn(c)
}

// endConnTxn ends a connection's Txn (nil: none): what its rules
// tracked is released.
func endConnTxn(t *rules.Txn) {
	if t != nil {
		endTxn(t)
	}
}

// acceptConn runs tcp-request connection rules on a connection just
// accepted (its socket's addresses: before a PROXY header is read, as in
// HAProxy). False: rejected, and closed.
func (fe *frontend) acceptConn(c *net.TCPConn, t *rules.Txn) bool {
	return fe.tcp.connection.Empty() || fe.accepts(fe.tcp.connection, t, c, &fe.state.DeniedConn)
}

// acceptSession runs tcp-request session rules once the preamble is done,
// with the addresses a PROXY header gave and the TLS connection, which
// the rules after it read too.
func (fe *frontend) acceptSession(c net.Conn, t *rules.Txn) bool {
	if t == nil {
		return true
	}
	t.Src, t.Dst = addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
	t.TLS, _ = c.(*tls.Conn)
	return fe.tcp.session.Empty() || fe.accepts(fe.tcp.session, t, c, &fe.state.DeniedSess)
}

// accepts runs a connection-level rule set; a rejected connection is
// counted in denied and closed.
func (fe *frontend) accepts(p *rules.Program, t *rules.Txn, c net.Conn, denied *atomic.Uint64) bool {
	if v, _ := p.Run(t); v == rules.Deny {
		denied.Add(1)
		c.Close()
		return false
	}
	return true
}

// routeTCP runs the frontend's tcp-request content rules and use_backend
// lines in mode tcp, then the chosen backend's content rules, in the
// connection's Txn, which the caller ends (endTCPTxn) with the
// connection: what track-sc tracks is tracked for the connection's life. With
// inspect-delay set it first waits (at most that long) for the client's
// first bytes, read as a TLS ClientHello when they are one, so that
// req.ssl_sni can route TLS it does not terminate; those bytes are sent to
// the server before the rest (the returned connection holds them). False
// means a rule rejected the connection: the frontend's (the backend is
// nil) or the backend's.
func (fe *frontend) routeTCP(c net.Conn, t *rules.Txn) (net.Conn, *backend, bool) {
	if fe.captures != nil {
		t.Caps = fe.captures.slots()
	}
	if d := fe.cfg.Rules.InspectDelay; d > 0 {
		hello, pc, err := tlsfront.Peek(c, d)
		c = pc
		t.Payload = pc.Peeked()
		if err == nil {
			t.Hello, t.HelloSNI = true, append(t.HelloSNI[:0], hello.ServerName...)
		}
	}
	if v, _ := fe.tcp.content.Run(t); v == rules.Deny {
		return c, nil, false
	}
	be := fe.defaultBackend
	for i := range fe.useBackends {
		if ub := &fe.useBackends[i]; ub.cond.Eval(t) {
			if b := ub.target(t, fe.backendsByName, fe.cfg.Mode); b != nil {
				be = b
				break
			}
		}
	}
	t.Backend = be.index
	if v, _ := be.tcpContent.Run(t); v == rules.Deny {
		return c, be, false
	}
	return c, be, true
}

// rejectTCP counts and logs a connection a tcp-request content rule
// rejected, as HAProxy 2.6 does: a denied request of the frontend's
// (dreq, even for a backend's rule), a session of the backend's when it
// was chosen, and a tcplog line with termination state PR.
//
//go:noinline
func (fe *frontend) rejectTCP(c net.Conn, be *backend, accepted time.Time) {
	fe.state.DeniedReq.Add(1)
	if be != nil {
		fe.routeTo(be).endSession()
	}
	if fe.access == nil {
		return
	}
	_, overTLS := c.(*tls.Conn)
	lb := lineBufs.Get().(*[]byte)
	b := fe.appendLogPrefix((*lb)[:0], c.RemoteAddr(), overTLS, accepted, be, nil)
	b = append(b, " -1/-1/"...)
	b = appendMs(b, time.Since(accepted))
	b = append(b, " 0 PR"...)
	b = fe.appendConnCounts(b, nil, nil, 0, false)
	b = append(b, " 0/0"...)
	fe.accessLine(0, b)
	putLine(lb, b)
}

// endTCPTxn ends a mode tcp connection's Txn, counting the bytes it
// moved in what it tracked.
func endTCPTxn(t *rules.Txn, ss *session) {
	t.Untrack(ss.in, ss.out)
	endCaptures(t.Caps)
	endTxn(t)
}
