package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/pires/go-proxyproto"
)

// The statuses of a check over TLS, as HAProxy's.
const (
	L6OK   Status = "L6OK"   // the TLS handshake succeeded (a connect check)
	L6RSP  Status = "L6RSP"  // the handshake failed: a TLS error or a refused certificate
	L6TOUT Status = "L6TOUT" // the handshake did not finish within the check timeout
)

// Transport is what a check connection carries besides TCP: a PROXY
// header (check-send-proxy), then TLS (check-ssl). The zero value is plain
// TCP.
type Transport struct {
	// TLS is the client configuration of check-ssl, nil without.
	TLS *tls.Config
	// ProxyVersion is the PROXY protocol version sent first (0: none).
	// A check has no client, so the header says so: "PROXY UNKNOWN" in
	// v1, the LOCAL command in v2, as HAProxy sends with its checks.
	ProxyVersion int
}

// dial opens a check connection through t, the context's deadline set on
// it. On failure it returns the check's result: L4CON or L4TOUT for TCP,
// L6RSP or L6TOUT for the handshake.
func (t *Transport) dial(ctx context.Context, addr string) (net.Conn, Result, bool) {
	conn, err := t.dialTCP(ctx, "tcp", addr)
	if err != nil {
		return nil, connectFailure(err), false
	}
	if t == nil || t.TLS == nil {
		return conn, Result{}, true
	}
	tc := tls.Client(conn, t.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, handshakeFailure(err), false
	}
	return tc, Result{}, true
}

// dialTCP connects and sends the PROXY header, if any: the dial function
// of the database drivers, which do their own TLS.
func (t *Transport) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := dialCheck(ctx, addr)
	if err != nil || t == nil || t.ProxyVersion == 0 {
		return conn, err
	}
	h := &proxyproto.Header{Version: byte(t.ProxyVersion), Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if _, err := h.WriteTo(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sending the PROXY header: %w", err)
	}
	return conn, nil
}

// tlsConfig is the check's TLS configuration, nil without check-ssl.
func (t *Transport) tlsConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.TLS
}

// handshakeFailure is the result of a failed TLS handshake: L6TOUT when
// the time ran out, otherwise L6RSP.
func handshakeFailure(err error) Result {
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Result{Status: L6TOUT, Err: err, Desc: "Layer6 timeout"}
	}
	return Result{Status: L6RSP, Err: err, Desc: "Layer6 invalid response: " + err.Error()}
}

// isTLSFailure reports whether a database driver's error came from the
// TLS handshake: a refused server certificate, or an alert or a record
// that is not TLS from the server.
func isTLSFailure(err error) bool {
	var ce *config.ServerCertError
	var ae tls.AlertError
	var re tls.RecordHeaderError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ce) || errors.As(err, &ae) || errors.As(err, &re) || errors.As(err, &ve)
}

// ConnChecker is a connect check through a Transport: it passes with L6OK
// once the TLS handshake succeeds, or L4OK once the PROXY header is sent
// without TLS. Plain TCP connect checks use TCPChecker.
type ConnChecker struct {
	Transport *Transport
}

var _ Checker = ConnChecker{}

func (c ConnChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	conn, r, ok := c.Transport.dial(ctx, addr)
	if ok {
		r = Result{Status: L4OK, OK: true}
		if tc, isTLS := conn.(*tls.Conn); isTLS {
			st := tc.ConnectionState()
			r = Result{Status: L6OK, OK: true, Desc: fmt.Sprintf("Layer6 check passed: %s", tls.VersionName(st.Version))}
		}
		conn.Close()
	}
	r.Duration = time.Since(start)
	return r
}
