package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// exchangeOn sends paths one after the other on one keep-alive
// connection and returns each answer's status and header hdr.
func exchangeOn(t *testing.T, addr, hdr string, paths ...string) []string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var out []string
	for _, p := range paths {
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", p); err != nil {
			return append(out, "closed")
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return append(out, "closed")
		}
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%s %d %s", p, resp.StatusCode, resp.Header.Get(hdr)))
	}
	return out
}

func backend404(t *testing.T) *testBackend {
	return startHTTPBackend(t, "h", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/404") {
			w.WriteHeader(404)
		}
		fmt.Fprint(w, "h")
	})
}

// HAProxy 2.6's http-response track-sc counts a 4xx response as an HTTP
// error in the entry it starts tracking (http_act.c, action_http_track_sc),
// since the server's 4xx was counted before that rule ran, in what was
// tracked then.
func TestResponseTrackCounts4xxAsHAProxy(t *testing.T) {
	h := backend404(t)
	haproxy := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	startHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  stick-table type ip size 100k expire 30s store http_req_cnt,http_err_cnt
  http-response track-sc0 src
  http-response set-header X-E %%[sc0_http_err_cnt]/%%[sc0_http_req_cnt]
  default_backend be
backend be
  server h %s
`, haproxy, h.addr), haproxy)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_cnt,http_err_cnt
    http-response:
      - track-sc0 src
      - set-header X-E %[sc0_http_err_cnt]/%[sc0_http_req_cnt]
    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`, h)
	paths := []string{"/404", "/404", "/ok"}
	want := exchangeOn(t, haproxy, "X-E", paths...)
	got := exchangeOn(t, frontendAddr(t, p, "fe"), "X-E", paths...)
	if !slices.Equal(got, want) {
		t.Errorf("halo %q, HAProxy %q", got, want)
	}
}

// Keep-alive: what the connection, the frontend's content rules and the
// backend's content rules track each count every request once, and a
// server 4xx once, as HAProxy counts them.
func TestKeepAliveTrackingAsHAProxy(t *testing.T) {
	h := backend404(t)
	haproxy := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	startHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  stick-table type ip size 100k expire 30s store http_req_cnt,http_err_cnt
  tcp-request connection track-sc0 src if { src 127.0.0.7 }
  tcp-request content track-sc1 src table t1
  tcp-request content reject if { path_beg /rej }
  http-request deny if { path_beg /deny }
  http-response set-header X-E %%[sc0_http_req_cnt]/%%[sc0_http_err_cnt]|%%[sc1_http_req_cnt]/%%[sc1_http_err_cnt]|%%[sc2_http_req_cnt]/%%[sc2_http_err_cnt]
  default_backend be
backend t1
  stick-table type ip size 100k expire 30s store http_req_cnt,http_err_cnt
backend be
  stick-table type ip size 100k expire 30s store http_req_cnt,http_err_cnt
  tcp-request content track-sc2 src
  http-request set-header X-B 1
  server h %s
`, haproxy, h.addr), haproxy)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_cnt,http_err_cnt
    tcp-request:
      - 'connection track-sc0 src if { src 127.0.0.7 }'
      - content track-sc1 src table t1
      - 'content reject if { path_beg /rej }'
    http-request:
      - 'deny if { path_beg /deny }'
    http-response:
      - set-header X-E %[sc0_http_req_cnt]/%[sc0_http_err_cnt]|%[sc1_http_req_cnt]/%[sc1_http_err_cnt]|%[sc2_http_req_cnt]/%[sc2_http_err_cnt]
    default_backend: be
backends:
  t1:
    stick-table: type ip size 100k expire 30s store http_req_cnt,http_err_cnt
  be:
    stick-table: type ip size 100k expire 30s store http_req_cnt,http_err_cnt
    tcp-request: [content track-sc2 src]
    http-request: [set-header X-B 1]
    servers: [{name: h, address: "{{h}}"}]
`, h)
	for _, paths := range [][]string{{"/ok", "/404", "/ok", "/deny"}, {"/ok", "/404", "/ok"}, {"/ok", "/rej", "/ok"}, {"/ok"}} {
		want := exchangeOn(t, haproxy, "X-E", paths...)
		got := exchangeOn(t, frontendAddr(t, p, "fe"), "X-E", paths...)
		if !slices.Equal(got, want) {
			t.Errorf("%v: halo %q, HAProxy %q", paths, got, want)
		}
	}
}
