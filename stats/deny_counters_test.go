package stats

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestDenyAndErrorCountsMatchHAProxy sends the same requests through halo
// and through the real HAProxy, configured alike, and compares where each
// way of refusing a request is counted: show stat's dreq of the frontends
// and backends (a backend's http-request deny counts in its frontend too;
// a tcp-request content reject, in mode http or tcp and in a frontend or
// a backend, counts in the frontend alone; an http-response deny counts
// in the frontend, the backend and the server whichever section's rule
// it is), and the http_req_cnt and
// http_err_cnt a track-sc0 counts (deny, tarpit and auth are errors
// whatever their status; return and redirect never; a server's 4xx is,
// by the status it sent, before http-response set-status changes it;
// halo's own 503 is not). The response rules read the request's path
// from a variable: HAProxy's path in http-response sees the request only
// while its buffer is still there, which a test cannot rely on.
func TestDenyAndErrorCountsMatchHAProxy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/s404") {
			w.WriteHeader(404)
		}
		io.WriteString(w, "x")
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	dead := testnet.FreeAddr(t)
	hh, ht, ht2, ht3 := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	haproxyCmd := startHAProxy(t, fmt.Sprintf(`global
  stats socket {{SOCK}} mode 600 level admin
defaults
  timeout connect 200ms
  timeout client 5s
  timeout server 5s
  retries 0
frontend fh
  mode http
  bind %s
  stick-table type ip size 10 store http_req_cnt,http_err_cnt
  http-request track-sc0 src
  http-request set-var(txn.path) path
  http-request deny if { path /deny }
  http-request deny deny_status 503 if { path /deny503 }
  http-request tarpit if { path /tarpit }
  http-request return status 404 if { path /return404 }
  http-request redirect location /x code 302 if { path /redirect }
  http-request auth if { path /auth }
  http-response deny if { var(txn.path) -m str /rdeny }
  use_backend bdeny if { path_beg /b }
  use_backend breject if { path_beg /c }
  use_backend bdead if { path_beg /dead }
  default_backend bs
frontend ft
  mode tcp
  bind %s
  tcp-request content reject
  default_backend bpass
frontend ft2
  mode tcp
  bind %s
  default_backend btcp
frontend ft3
  mode tcp
  bind %s
  default_backend bpass
backend bs
  mode http
  http-response set-status 404 if { var(txn.path) -m str /set404 }
  http-response set-status 200 if { var(txn.path) -m str /s404/set200 }
  http-response deny if { var(txn.path) -m str /rdeny2 }
  server a %s
backend bdeny
  mode http
  http-request deny if { path_beg /b }
  server a %s
backend breject
  mode http
  tcp-request content reject
  server a %s
backend bdead
  mode http
  server a %s
backend btcp
  mode tcp
  tcp-request content reject
  server a %s
backend bpass
  mode tcp
  server a %s
`, hh, ht, ht2, ht3, addr, addr, addr, dead, addr, addr))
	r := newRig(t, `
global:
  stats:
    socket: [{path: "{{DIR}}/admin.sock", mode: "0600", level: admin}]
defaults: {timeout: {connect: 200ms, client: 5s, server: 5s}, retries: 0}
frontends:
  fh:
    mode: http
    bind: ["127.0.0.1:0"]
    stick-table: type ip size 10 store http_req_cnt,http_err_cnt
    http-request:
      - track-sc0 src
      - set-var(txn.path) path
      - deny if { path /deny }
      - deny deny_status 503 if { path /deny503 }
      - tarpit if { path /tarpit }
      - return status 404 if { path /return404 }
      - redirect location /x code 302 if { path /redirect }
      - auth if { path /auth }
    http-response: ["deny if { var(txn.path) -m str /rdeny }"]
    use_backend: ["bdeny if { path_beg /b }", "breject if { path_beg /c }", "bdead if { path_beg /dead }"]
    default_backend: bs
  ft:
    mode: tcp
    bind: ["127.0.0.1:0"]
    tcp-request: ["content reject"]
    default_backend: bpass
  ft2: {mode: tcp, bind: ["127.0.0.1:0"], default_backend: btcp}
  ft3: {mode: tcp, bind: ["127.0.0.1:0"], default_backend: bpass}
backends:
  bs:
    mode: http
    http-response: ["set-status 404 if { var(txn.path) -m str /set404 }", "set-status 200 if { var(txn.path) -m str /s404/set200 }", "deny if { var(txn.path) -m str /rdeny2 }"]
    servers: [{name: a, address: "{{A}}"}]
  bdeny:
    mode: http
    http-request: ["deny if { path_beg /b }"]
    servers: [{name: a, address: "{{A}}"}]
  breject:
    mode: http
    tcp-request: ["content reject"]
    servers: [{name: a, address: "{{A}}"}]
  bdead:
    mode: http
    servers: [{name: a, address: "{{DEAD}}"}]
  btcp:
    mode: tcp
    tcp-request: ["content reject"]
    servers: [{name: a, address: "{{A}}"}]
  bpass:
    mode: tcp
    servers: [{name: a, address: "{{A}}"}]
`, map[string]string{"A": addr, "DEAD": dead})

	paths := []string{"/ok", "/deny", "/deny503", "/tarpit", "/return404", "/redirect", "/auth",
		"/s404", "/set404", "/s404/set200", "/rdeny", "/rdeny2", "/b", "/c", "/dead", "/ok"}
	// exchange sends req on a connection of its own and reads whatever
	// comes back until the proxy closes it.
	exchange := func(addr, req string) string {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	statuses := func(fe string) string {
		var out []string
		for _, p := range paths {
			status, _, _ := strings.Cut(exchange(fe, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "\r\n")
			out = append(out, p+" "+status)
		}
		return strings.Join(out, "\n")
	}
	tcpSend := func(addrs ...string) {
		for _, addr := range addrs {
			exchange(addr, "GET / HTTP/1.0\r\n\r\n")
		}
	}
	want := statuses(hh)
	got := statuses(r.frontend("fh"))
	if want != got {
		t.Errorf("statuses differ:\nhaproxy\n%s\nhalo\n%s", want, got)
	}
	tcpSend(ht, ht2, ht3)
	tcpSend(r.frontend("ft"), r.frontend("ft2"), r.frontend("ft3"))

	_, hrows, _ := csvRows(t, haproxyCmd("show stat"))
	_, grows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
	for _, row := range []string{"fh/FRONTEND", "ft/FRONTEND", "ft2/FRONTEND", "ft3/FRONTEND", "bs/BACKEND", "bdeny/BACKEND", "breject/BACKEND", "bdead/BACKEND", "btcp/BACKEND", "bpass/BACKEND", "bs/a"} {
		for _, col := range []string{"dreq", "dresp", "dcon", "dses", "hrsp_4xx", "hrsp_5xx", "req_tot", "stot"} {
			if hrows[row][col] != grows[row][col] {
				t.Errorf("%s %s: halo %q, HAProxy %q", row, col, grows[row][col], hrows[row][col])
			}
		}
		t.Logf("%s dreq: halo %s, HAProxy %s", row, grows[row]["dreq"], hrows[row]["dreq"])
	}
	counts := regexp.MustCompile(`http_req_cnt=\d+ http_err_cnt=\d+`)
	h, g := counts.FindString(haproxyCmd("show table fh")), counts.FindString(r.cmd("admin.sock", "show table fh"))
	t.Logf("show table fh: halo %q, HAProxy %q", g, h)
	if h == "" || h != g {
		t.Errorf("show table fh: halo %q, HAProxy %q", g, h)
	}
}
