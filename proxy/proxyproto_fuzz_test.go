package proxy

import (
	"bufio"
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

// FuzzProxyHeader reads arbitrary first bytes as accept-proxy does
// (readProxyHeader, the header required, go-proxyproto parsing it): it
// never panics, a connection it accepts reports the header's source as its
// RemoteAddr, and the bytes after the header reach the mode intact.
func FuzzProxyHeader(f *testing.F) {
	for _, v := range []byte{1, 2} {
		var b bytes.Buffer
		header(v, "203.0.113.9").WriteTo(&b)
		b.WriteString("GET / HTTP/1.1\r\n\r\n")
		f.Add(b.Bytes(), true)
	}
	f.Add([]byte("PROXY UNKNOWN\r\nrest"), true)
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n"), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, required bool) {
		policy := proxyproto.REQUIRE
		if !required {
			policy = proxyproto.REJECT // an untrusted peer in mode http
		}
		pc, err := readProxyHeader(&streamConn{r: bytes.NewReader(data)}, policy)
		if err != nil {
			return // refused: accept closes it
		}
		if pc == nil {
			if required || len(data) > 0 {
				t.Fatalf("%q passed through untouched (required %v)", data, required)
			}
			return
		}
		if !required && pc.RemoteAddr().String() != "127.0.0.1:1" {
			t.Fatalf("an untrusted peer's bytes %q set its address to %v", data, pc.RemoteAddr())
		}
		rest, _ := io.ReadAll(pc)
		if !bytes.HasSuffix(data, rest) || (!required && !bytes.Equal(rest, data)) {
			t.Fatalf("the mode read %q of %q", rest, data)
		}
		if required {
			h, herr := proxyproto.Read(bufio.NewReader(bytes.NewReader(data)))
			if herr != nil {
				t.Fatalf("accepted %q, which go-proxyproto does not parse: %v", data, herr)
			}
			if h.Command.IsProxy() && h.SourceAddr != nil {
				if _, tcp := h.SourceAddr.(*net.TCPAddr); tcp && pc.RemoteAddr().String() != h.SourceAddr.String() {
					t.Fatalf("RemoteAddr %v, header source %v", pc.RemoteAddr(), h.SourceAddr)
				}
			}
		}
	})
}
