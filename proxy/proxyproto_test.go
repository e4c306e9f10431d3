package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	proxyproto "github.com/pires/go-proxyproto"
)

// xffBackend answers with the X-Forwarded-For halo sent.
func xffBackend(t *testing.T) *testBackend {
	return startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	})
}

// getWithHeader sends one request on a connection from 127.0.0.1 that
// starts with hdr (nil: none), and returns the response's body or the
// error that ended it.
func getWithHeader(addr string, hdr *proxyproto.Header) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if hdr != nil {
		if _, err := hdr.WriteTo(c); err != nil {
			return "", err
		}
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func header(version byte, src string) *proxyproto.Header {
	return &proxyproto.Header{Version: version, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr: &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, DestinationAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 443}}
}

func TestAcceptProxy(t *testing.T) {
	a := xffBackend(t)
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", accept-proxy: true}
    option: {forwardfor: true}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	for _, v := range []byte{1, 2} {
		if got, err := getWithHeader(addr, header(v, "203.0.113.9")); err != nil || got != "203.0.113.9" {
			t.Errorf("PROXY v%d: X-Forwarded-For %q, %v; want the header's source", v, got, err)
		}
	}
	// Every peer must send one: a request without is refused.
	if got, err := getWithHeader(addr, nil); err == nil {
		t.Errorf("a connection without a PROXY header was served: %q", got)
	}
}

func TestAcceptProxyFromTrustedPeersOnly(t *testing.T) {
	a := xffBackend(t)
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", accept-proxy: true, accept-proxy-from: [127.0.0.2]}
    option: {forwardfor: true}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	// 127.0.0.1 is not trusted: served as itself, and its header refused.
	if got, err := getWithHeader(addr, nil); err != nil || got != "127.0.0.1" {
		t.Errorf("untrusted peer without a header: %q, %v; want served as 127.0.0.1", got, err)
	}
	if got, err := getWithHeader(addr, header(2, "203.0.113.9")); err == nil {
		t.Errorf("an untrusted peer's PROXY header was accepted: %q", got)
	}
	// 127.0.0.2 is trusted: its header is used, and required.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	header(1, "198.51.100.4").WriteTo(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "198.51.100.4" {
		t.Errorf("trusted peer's header: X-Forwarded-For %q", body)
	}
}

// TestAcceptProxyModeTCP keeps the bytes after the header, and a
// server-first protocol from an untrusted peer is not held up.
func TestAcceptProxyModeTCP(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, `
frontends:
  fe: {bind: {address: "127.0.0.1:0", accept-proxy: true}, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Header and data in one write: what was read past the header must
	// reach the server.
	var b strings.Builder
	header(2, "203.0.113.9").WriteTo(&b)
	b.WriteString("one\ntwo\n")
	io.WriteString(c, b.String())
	r := bufio.NewReader(c)
	for i := range 2 {
		if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
			t.Fatalf("answer %d: %q, %v", i, line, err)
		}
	}
}

// TestBehindHAProxySendProxy puts Debian's HAProxy in front of halo with
// send-proxy and send-proxy-v2: halo's server sees the address of the
// client that connected to HAProxy (127.0.0.2), not HAProxy's.
func TestBehindHAProxySendProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (scripts/install-deps installs it)")
	}
	a := xffBackend(t)
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", accept-proxy: true, accept-proxy-from: [127.0.0.0/8]}
    option: {forwardfor: true}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	halo := frontendAddr(t, p, "fe")
	for _, send := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(send, func(t *testing.T) {
			front := testnet.FreeAddr(t)
			dir := t.TempDir()
			cfg := fmt.Sprintf(`global
  log stdout format raw local0
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend f
  bind %s
  default_backend b
backend b
  server halo %s %s
`, front, halo, send)
			file := filepath.Join(dir, "h.cfg")
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(haproxy, "-db", "-f", file)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			waitFor(t, 5*time.Second, "HAProxy to listen", func() bool {
				c, err := net.Dial("tcp", front)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
			got, status, err := httpGet(client, "http://"+front+"/")
			if err != nil || status != 200 || got != "127.0.0.2" {
				t.Errorf("through HAProxy %s: X-Forwarded-For %q, status %d, %v; want 127.0.0.2", send, got, status, err)
			}
		})
	}
}
