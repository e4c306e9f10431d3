package tlsfront

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bytesConn is a connection whose peer sent data and then closed.
type bytesConn struct {
	net.Conn // nil: only the methods below are called
	r        *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// FuzzPeek feeds arbitrary first bytes to Peek: it must never panic, and
// whatever it says, the connection it returns must read back exactly the
// bytes the client sent. testdata/fuzz/FuzzPeek holds ClientHellos that
// Go's TLS client sent, with and without SNI (TestSeedsAreClientHellos
// checks they still peek as such).
func FuzzPeek(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		hello, pc, err := Peek(&bytesConn{r: bytes.NewReader(data)}, 0)
		if err == nil && len(data) == 0 {
			t.Fatalf("an empty stream peeked as %+v", hello)
		}
		got, _ := io.ReadAll(pc)
		if !bytes.Equal(got, data) {
			t.Fatalf("replayed %d bytes, the client sent %d", len(got), len(data))
		}
	})
}

// TestSeedsAreClientHellos checks that the recorded seeds peek as the
// hellos they were recorded from, so the corpus starts from real input.
func TestSeedsAreClientHellos(t *testing.T) {
	for file, sni := range map[string]string{"hello-sni": "api.example.org", "hello-nosni": ""} {
		raw, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzPeek", file))
		if err != nil {
			t.Fatal(err)
		}
		_, quoted, _ := strings.Cut(strings.TrimSpace(string(raw)), "[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		hello, _, err := Peek(&bytesConn{r: bytes.NewReader([]byte(data))}, 0)
		if err != nil || hello.ServerName != sni {
			t.Errorf("%s peeked as %+v, %v; want SNI %q", file, hello, err, sni)
		}
	}
}
