package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestExpectProxyAsHAProxy compares tcp-request connection expect-proxy
// layer4 with Debian's haproxy, configured alike: a trusted source must
// start with a PROXY header, whose address the rules then see; another
// is served as itself, and its PROXY header is just bytes (a bad request).
func TestExpectProxyAsHAProxy(t *testing.T) {
	rules := []string{
		"connection expect-proxy layer4 if { src 127.0.0.8 }",
	}
	answer := `return status 200 content-type text/plain lf-string "src=%[src] dst=%[dst]"`
	hx := testnet.FreeAddr(t)
	cfg := "defaults\n  mode http\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\nfrontend fe\n  bind " + hx + "\n"
	for _, r := range rules {
		cfg += "  tcp-request " + r + "\n"
	}
	cfg += "  http-request " + answer + "\n  default_backend be\nbackend be\n  server s 127.0.0.1:1\n"
	startHAProxy(t, cfg, hx)
	yaml := "defaults: {mode: http, timeout: {connect: 1s, client: 2s, server: 2s}}\nfrontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    tcp-request:\n"
	for _, r := range rules {
		yaml += "      - '" + r + "'\n"
	}
	yaml += "    http-request: ['" + answer + "']\n    default_backend: be\nbackends:\n  be: {servers: [{name: s, address: \"127.0.0.1:1\"}]}\n"
	halo := frontendAddr(t, startProxy(t, yaml), "fe")

	const header = "PROXY TCP4 192.0.2.1 198.51.100.2 40000 8443\r\n"
	const req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	cases := []struct{ what, src, send string }{
		{"a trusted source with a header", "127.0.0.8", header + req},
		{"a trusted source without one", "127.0.0.8", req},
		{"another source", "127.0.0.9", req},
		{"another source with a header", "127.0.0.9", header + req},
	}
	ask := func(addr, src, send string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(4 * time.Second))
		io.WriteString(c, send)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "no answer"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return string(b)
	}
	for _, c := range cases {
		want, got := ask(hx, c.src, c.send), ask(halo, c.src, c.send)
		t.Logf("%s: haproxy %q, halo %q", c.what, want, got)
		if want != got {
			t.Errorf("%s: haproxy %q, halo %q", c.what, want, got)
		}
	}
}
