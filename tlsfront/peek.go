package tlsfront

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// Hello is what a peeked ClientHello says: HAProxy's req.ssl_sni,
// req.ssl_alpn and req.ssl_ver.
type Hello struct {
	ServerName string
	ALPN       []string
	// Versions are the versions the client offers, newest first.
	Versions []uint16
}

// MaxHello bounds the bytes Peek reads: a ClientHello larger than this
// (HAProxy's default buffer) is not waited for.
const MaxHello = 16 << 10

var (
	errPeeked  = errors.New("tlsfront: ClientHello read")
	errTooLong = errors.New("ClientHello larger than 16 KiB")
	// ErrNotTLS is Peek's error when the client's first bytes are not a
	// TLS handshake.
	ErrNotTLS = errors.New("not a TLS ClientHello")
)

// Peek reads the client's ClientHello from c, within timeout (HAProxy's
// tcp-request inspect-delay), without answering it, and returns what it
// says and a connection that reads those same bytes again before the rest,
// for a relay that passes the TLS through unterminated. crypto/tls parses
// the hello, so what Peek accepts is what a TLS server would. On error
// (not TLS, cut short, too slow) the connection is still returned, with
// the bytes read so far, for the caller to relay or close.
func Peek(c net.Conn, timeout time.Duration) (Hello, *PrefixConn, error) {
	rec := &recorder{Conn: c}
	var hello Hello
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = Hello{ServerName: h.ServerName, ALPN: append([]string(nil), h.SupportedProtos...), Versions: append([]uint16(nil), h.SupportedVersions...)}
		return nil, errPeeked
	}}
	if timeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	}
	err := tls.Server(rec, cfg).Handshake()
	_ = c.SetReadDeadline(time.Time{})
	pc := &PrefixConn{Conn: c, prefix: rec.buf.Bytes()}
	switch {
	case errors.Is(err, errPeeked):
		return hello, pc, nil
	case rec.err != nil:
		return Hello{}, pc, rec.err
	case len(pc.prefix) > 0 && pc.prefix[0] != 0x16:
		return Hello{}, pc, ErrNotTLS
	}
	return Hello{}, pc, err
}

// recorder is the connection crypto/tls reads the hello from: it keeps
// every byte read and writes nothing back (the alert that ends the peek
// must not reach the client).
type recorder struct {
	net.Conn
	buf bytes.Buffer
	err error // the read error, rather than the TLS error it caused
}

func (r *recorder) Read(p []byte) (int, error) {
	if r.buf.Len() >= MaxHello {
		r.err = errTooLong
		return 0, r.err
	}
	p = p[:min(len(p), MaxHello-r.buf.Len())]
	n, err := r.Conn.Read(p)
	r.buf.Write(p[:n])
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }

// PrefixConn is a connection some of whose first bytes were already read:
// reads return those first. A relay that wants the socket itself (to
// splice) sends Prefix on and then uses Raw.
type PrefixConn struct {
	net.Conn
	prefix []byte
}

// NewPrefixConn returns c with prefix read before it.
func NewPrefixConn(c net.Conn, prefix []byte) *PrefixConn {
	return &PrefixConn{Conn: c, prefix: prefix}
}

func (c *PrefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Prefix returns the bytes not yet read again and forgets them: the
// caller sends them on itself.
func (c *PrefixConn) Prefix() []byte {
	p := c.prefix
	c.prefix = nil
	return p
}

// Peeked returns the bytes not yet read again, keeping them: what a rule
// inspects (req.len) before the relay starts.
func (c *PrefixConn) Peeked() []byte { return c.prefix }

// Raw is the connection under the prefix.
func (c *PrefixConn) Raw() net.Conn { return c.Conn }
