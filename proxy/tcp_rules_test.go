package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TLS passthrough routed by the ClientHello's server name: halo does not
// terminate it, the servers' own certificates reach the client, and a
// tcp-request connection rule refuses a source before any byte is read.
func TestTCPRoutesBySNI(t *testing.T) {
	ca := newTestCA(t, "ca")
	certA, _ := ca.leaf(t, "a.example")
	certB, _ := ca.leaf(t, "b.example")
	a := startTLSHTTPBackend(t, "a", certA)
	b := startTLSHTTPBackend(t, "b", certB)
	yaml := `
defaults: {mode: tcp, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    tcp-request:
      - connection reject if { src 127.0.0.5 }
      - inspect-delay 2s
      - content reject unless { req.ssl_hello_type 1 }
    use_backend:
      - by_a if { req.ssl_sni -i a.example }
    default_backend: by_b
backends:
  by_a: {servers: [{name: a, address: "{{a}}"}]}
  by_b: {servers: [{name: b, address: "{{b}}"}]}
`
	p := startProxy(t, yaml, a, b)
	addr := frontendAddr(t, p, "fe")
	get := func(name string) (string, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: ca.Pool()})
		if err != nil {
			return "", err
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.0\r\nHost: "+name+"\r\n\r\n")
		body, err := io.ReadAll(c)
		return string(body), err
	}
	for name, want := range map[string]string{"a.example": "a", "A.EXAMPLE": "a", "b.example": "b"} {
		body, err := get(name)
		if err != nil || !strings.HasSuffix(body, "\r\n\r\n"+want) {
			t.Errorf("SNI %s: %q %v, want the body %q", name, body, err, want)
		}
	}
	// Not TLS: the content rule rejects it once the hello does not come.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("plain text got %d bytes, %v; want the connection closed", n, err)
	}
	c.Close()
	// A refused source.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}}
	if c, err := d.Dial("tcp", addr); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("127.0.0.5 got %d bytes, %v; want the connection closed", n, err)
		}
		c.Close()
	}
	fc := p.FrontendCounters("fe")
	// A content rule's reject is a denied request, as HAProxy 2.6 counts
	// it (stats/deny_counters_test.go compares them).
	waitFor(t, 5*time.Second, "denied connections and requests counted (dcon 1, dreq 1, dses 0)",
		func() bool { return fc.DeniedConn.Load() == 1 && fc.DeniedReq.Load() == 1 && fc.DeniedSess.Load() == 0 })
}
