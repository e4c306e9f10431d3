package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// streamConn is a client connection that sent data and closed.
type streamConn struct {
	net.Conn // nil: only the methods below are called
	r        *bytes.Reader
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

// FuzzProxyHeader reads arbitrary first bytes as accept-proxy does (the
// header is required, go-proxyproto parses it): it never panics, a
// connection it accepts has a header whose source is what RemoteAddr
// reports, and the bytes after the header reach the mode intact.
func FuzzProxyHeader(f *testing.F) {
	for _, v := range []byte{1, 2} {
		var b bytes.Buffer
		header(v, "203.0.113.9").WriteTo(&b)
		b.WriteString("GET / HTTP/1.1\r\n\r\n")
		f.Add(b.Bytes())
	}
	f.Add([]byte("PROXY UNKNOWN\r\nrest"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pc := proxyproto.NewConn(&streamConn{r: bytes.NewReader(data)}, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(0))
		if _, err := pc.Read(nil); err != nil {
			return // refused: accept closes it
		}
		h := pc.ProxyHeader()
		if h == nil {
			t.Fatalf("accepted %q without a header", data)
		}
		if h.Command == proxyproto.PROXY && h.SourceAddr != nil && pc.RemoteAddr().String() != h.SourceAddr.String() {
			t.Fatalf("RemoteAddr %v, header source %v", pc.RemoteAddr(), h.SourceAddr)
		}
		rest, _ := io.ReadAll(pc)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("after the header the mode read %q, not the tail of %q", rest, data)
		}
	})
}
