package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestPayloadFetchesRouteAsHAProxy routes the same TCP streams through
// Debian's haproxy and through halo, configured alike, by what their first
// bytes are: the predefined ACLs HTTP, RDP_COOKIE and WAIT_END,
// req.rdp_cookie(name), req.payload(offset,length) matched as bytes and as
// a string. Each stream must reach the same server in both.
func TestPayloadFetchesRouteAsHAProxy(t *testing.T) {
	names := []string{"http", "rdp", "bin", "str", "sni", "long", "def"}
	var bs []*testBackend
	for _, n := range names {
		bs = append(bs, startTCPBackend(t, n))
	}
	hx := testnet.FreeAddr(t)
	rules := []string{
		"inspect-delay 2s",
		"content accept if HTTP",
		"content accept if RDP_COOKIE",
		"content accept if { req.payload(0,3) -m bin 160301 }",
		"content accept if { req.payload(0,4) -m str PING }",
		"content accept if { req.ssl_hello_type 1 }",
		"content accept if WAIT_END",
	}
	use := []string{
		"b_sni if { req.ssl_sni -i a.example }",
		"b_long if { req.len gt 100 }",
		"b_http if HTTP",
		"b_rdp if { req.rdp_cookie(mstshash) -m str alice }",
		"b_bin if { req.payload(0,3) -m bin 160301 }",
		"b_str if { req.payload(0,4) -m str PING }",
	}
	cfg := "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nfrontend fe\n  bind " + hx + "\n"
	yaml := "defaults: {mode: tcp, timeout: {connect: 1s, client: 5s, server: 5s}}\nfrontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    tcp-request:\n"
	for _, r := range rules {
		cfg += "  tcp-request " + r + "\n"
		yaml += "      - '" + r + "'\n"
	}
	yaml += "    use_backend:\n"
	for _, u := range use {
		cfg += "  use_backend " + u + "\n"
		yaml += "      - '" + u + "'\n"
	}
	cfg += "  default_backend b_def\n"
	yaml += "    default_backend: b_def\nbackends:\n"
	for i, n := range names {
		cfg += fmt.Sprintf("backend b_%s\n  server s %s\n", n, bs[i].addr)
		yaml += fmt.Sprintf("  b_%s: {servers: [{name: s, address: \"%s\"}]}\n", n, bs[i].addr)
	}
	startHAProxy(t, cfg, hx)
	halo := frontendAddr(t, startProxy(t, yaml), "fe")

	streams := map[string]string{
		"an HTTP request":             "GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
		"half an HTTP request":        "GET / HTTP/1.1\r\nHost: x\r\n",
		"a bad request line":          "GET /\r\n\r\n",
		"an RDP cookie (alice)":       "\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n",
		"an RDP cookie (bob)":         "\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: mstshash=bob\r\n",
		"an RDP cookie, no CRLF":      "\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice",
		"a TLS record start":          "\x16\x03\x01\x00\x05hello\n",
		"PING":                        "PING and more\n",
		"PIN":                         "PIN\n",
		"something else":              "other\n",
		"a space before the cookie":   "\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie:   mstshash=alice\r\n",
		"a ClientHello for a.example": clientHello(t, "a.example"),
		"a ClientHello for b.example": clientHello(t, "b.example"),
		"200 bytes of text":           strings.Repeat("x", 199) + "\n",
	}
	bye := regexp.MustCompile(`bye from (\w+)`)
	reach := func(addr, payload string) string {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, payload)
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		if m := bye.FindSubmatch(b); m != nil {
			return string(m[1])
		}
		return fmt.Sprintf("none (%q)", b)
	}
	for what, payload := range streams {
		want, got := reach(hx, payload), reach(halo, payload)
		t.Logf("%s: haproxy %s, halo %s", what, want, got)
		if want != got {
			t.Errorf("%s: haproxy sends it to %s, halo to %s", what, want, got)
		}
	}
}

// clientHello is the first flight of a TLS client asking for name: the
// bytes it writes before it waits for the server.
func clientHello(t *testing.T, name string) string {
	t.Helper()
	c, s := net.Pipe()
	go func() {
		tc := tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(time.Second))
		tc.Handshake() // fails once the pipe closes
	}()
	s.SetReadDeadline(time.Now().Add(time.Second))
	b := make([]byte, 16<<10)
	n, err := s.Read(b)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}
