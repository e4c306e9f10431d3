package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestFrontendWithoutDefaultBackendAsHAProxy compares a frontend that has
// use_backend lines and no default_backend with Debian's haproxy: a
// request no line routes is answered 503 and logged FRONTEND/<NOSRV> with
// termination state SC, in mode http and in mode tcp, and one a line
// routes is served.
func TestFrontendWithoutDefaultBackendAsHAProxy(t *testing.T) {
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	logs := newHAProxyLog(t)
	hh, ht := testnet.FreeAddr(t), testnet.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(`global
  log %s format raw local0
defaults
  log global
  timeout connect 200ms
  timeout client 5s
  timeout server 5s
frontend fn
  mode http
  option httplog
  bind %s
  use_backend b if { path_beg /b }
frontend ftn
  mode tcp
  option tcplog
  bind %s
  use_backend bt if { src 10.0.0.1 }
backend b
  mode http
  server a %s
backend bt
  mode tcp
  server a %s
`, logs.conn.LocalAddr(), hh, ht, srv.addr, srv.addr), hh, ht)
	prx, hlogs := startLoggedProxy(t, `
defaults: {timeout: {connect: 200ms, client: 5s, server: 5s}}
frontends:
  fn: {mode: http, option: {httplog: true}, bind: "127.0.0.1:0", use_backend: ["b if { path_beg /b }"]}
  ftn: {mode: tcp, option: {tcplog: true}, bind: "127.0.0.1:0", use_backend: ["bt if { src 10.0.0.1 }"]}
backends:
  b: {mode: http, servers: [{name: a, address: "{{a}}"}]}
  bt: {mode: tcp, servers: [{name: a, address: "{{a}}"}]}
`, srv)
	gh, gt := frontendAddr(t, prx, "fn"), frontendAddr(t, prx, "ftn")
	for _, path := range []string{"/b/x", "/elsewhere"} {
		hs, _, _ := pageOnWire(t, hh, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		gs, _, _ := pageOnWire(t, gh, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if hs != gs {
			t.Errorf("%s: haproxy %q, halo %q", path, hs, gs)
		}
	}
	for _, addr := range []string{ht, gt} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "hello\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("%s answered %q to an unrouted TCP connection", addr, b)
		}
		c.Close()
	}
	// "FRONTEND BACKEND/SERVER ... TERMINATION" of the unrouted ones, each
	// kind once (startHAProxy's readiness probe of the TCP frontend is
	// one more such line).
	fields := regexp.MustCompile(`\] (\S+ \S+/<NOSRV>) .* (SC(?:--)?) `)
	pick := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if m := fields.FindStringSubmatch(l + " "); m != nil && !slices.Contains(out, m[1]+" "+m[2]) {
				out = append(out, m[1]+" "+m[2])
			}
		}
		slices.Sort(out)
		return out
	}
	var want, got []string
	defer func() {
		if t.Failed() {
			t.Logf("haproxy's log:\n%s", logs)
			for _, e := range hlogs.All() {
				t.Logf("halo: %s", e.Message)
			}
		}
	}()
	waitFor(t, 3*time.Second, "both proxies' lines", func() bool {
		want = pick(strings.Split(logs.String(), "\n"))
		var lines []string
		for _, e := range hlogs.All() {
			lines = append(lines, e.Message)
		}
		got = pick(lines)
		return len(want) == 2 && len(got) == 2
	})
	t.Logf("haproxy %q, halo %q", want, got)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("unrouted lines: haproxy %q, halo %q", want, got)
	}
}
