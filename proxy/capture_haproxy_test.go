package proxy

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestCaptureRulesLikeHAProxy sends the same requests through Debian's
// haproxy and through halo, configured alike with every way to make and
// fill a capture slot: capture header lines (taken before the rules
// rewrite the header), declare capture, http-request capture ... len and
// ... id (in the frontend and in the backend, whose id 9 names no slot),
// tcp-request content capture, http-response capture ... id in both
// sections (the backend's runs first), capture.req.hdr and
// capture.res.hdr read back into response headers. The httplog lines'
// {...} fields and those headers must be the same, request by request,
// for a proxied, a denied and a streamed response.
func TestCaptureRulesLikeHAProxy(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if strings.HasPrefix(r.URL.Path, "/p") {
			w.Header().Set("X-Srv", "server-a-of-be")
		}
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "a")
	})
	logs := newHAProxyLog(t)
	hx := testnet.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(`global
  log %s format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  capture request header Host len 10
  capture response header Content-Type len 10
  declare capture request len 20
  declare capture response len 12
  http-request capture req.hdr(User-Agent) len 8
  http-request set-log-level silent if { path /silent }
  http-request set-header Host rewritten.example
  http-request capture path id 1 if { path_beg /p }
  http-request capture src len 15
  http-request deny if { path_beg /deny }
  http-request set-var(txn.ua) capture.req.hdr(2)
  http-response capture res.hdr(X-Srv) id 1
  http-response set-header X-Cap-Req "%%[capture.req.hdr(0)]|%%[capture.req.hdr(1)]|%%[var(txn.ua)]|%%[capture.req.hdr(4)]"
  http-response set-header X-Cap-Res "%%[capture.res.hdr(0)]|%%[capture.res.hdr(1)]"
  tcp-request content capture req.hdr(X-T) len 6
  default_backend be
backend be
  http-request capture url_param(q) id 1 if { url_param(q) -m found }
  http-request capture str(nowhere) id 9
  http-response capture status id 1
  server a %s
`, logs.conn.LocalAddr(), hx, srv.addr), hx)
	prx, hlogs := startLoggedProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, option: {httplog: true}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    capture: ["request header Host len 10", "response header Content-Type len 10"]
    declare: ["capture request len 20", "capture response len 12"]
    http-request:
      - capture req.hdr(User-Agent) len 8
      - set-log-level silent if { path /silent }
      - set-header Host rewritten.example
      - capture path id 1 if { path_beg /p }
      - capture src len 15
      - deny if { path_beg /deny }
      - set-var(txn.ua) capture.req.hdr(2)
    http-response:
      - capture res.hdr(X-Srv) id 1
      - set-header X-Cap-Req "%[capture.req.hdr(0)]|%[capture.req.hdr(1)]|%[var(txn.ua)]|%[capture.req.hdr(4)]"
      - set-header X-Cap-Res "%[capture.res.hdr(0)]|%[capture.res.hdr(1)]"
    tcp-request: ["content capture req.hdr(X-T) len 6"]
    default_backend: be
backends:
  be:
    http-request:
      - capture url_param(q) id 1 if { url_param(q) -m found }
      - capture str(nowhere) id 9
    http-response: ["capture status id 1"]
    servers: [{name: a, address: "{{a}}"}]
`, srv)
	halo := frontendAddr(t, prx, "fe")

	requests := []struct{ path, req string }{
		{"/p/one?q=query-value", "GET /p/one?q=query-value HTTP/1.1\r\nHost: example.com\r\nUser-Agent: python-keystoneclient\r\nX-T: abcdefgh\r\nConnection: close\r\n\r\n"},
		{"/p/two", "GET /p/two HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: a|b{c}\"d#e\r\nConnection: close\r\n\r\n"},
		{"/x?q=1", "GET /x?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n"},
		{"/deny", "GET /deny HTTP/1.1\r\nHost: denied.example.org\r\nUser-Agent: x\r\nConnection: close\r\n\r\n"},
		{"/big", "GET /big HTTP/1.1\r\nHost: big\r\nX-T: t\r\nConnection: close\r\n\r\n"},
	}
	// The braces before the request line; the request line itself
	// names the request (halo's line for the denied one too).
	fields := regexp.MustCompile(`((?: \{[^}]*\})+) "GET (\S+) `)
	byPath := func(lines []string) map[string]string {
		m := map[string]string{}
		for _, l := range lines {
			if f := fields.FindStringSubmatch(l); f != nil {
				m[f[2]] = f[1]
			}
		}
		return m
	}
	// set-log-level silent: neither writes a line for it (sent first, so
	// that its line would be there by the time the others are).
	silent := "GET /silent HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
	pageOnWire(t, hx, silent)
	pageOnWire(t, halo, silent)
	for _, r := range requests {
		hs, hf, _ := pageOnWire(t, hx, r.req)
		gs, gf, _ := pageOnWire(t, halo, r.req)
		pick := func(fs []string) []string {
			var out []string
			for _, f := range fs {
				if strings.HasPrefix(f, "x-cap-") {
					out = append(out, f)
				}
			}
			return out
		}
		if hs != gs || fmt.Sprint(pick(hf)) != fmt.Sprint(pick(gf)) {
			t.Errorf("%s: haproxy %q %q, halo %q %q", r.path, hs, pick(hf), gs, pick(gf))
		}
	}
	waitFor(t, 3*time.Second, "haproxy's lines", func() bool {
		return len(byPath(strings.Split(logs.String(), "\n"))) == len(requests)
	})
	var haloLines []string
	waitFor(t, 3*time.Second, "halo's lines", func() bool {
		haloLines = haloLines[:0]
		for _, e := range hlogs.All() {
			haloLines = append(haloLines, e.Message)
		}
		return len(byPath(haloLines)) == len(requests)
	})
	if logs.has("GET /silent") || strings.Contains(strings.Join(haloLines, "\n"), "GET /silent") {
		t.Errorf("a line for the silenced request: haproxy %v, halo %v", logs.has("GET /silent"), strings.Contains(strings.Join(haloLines, "\n"), "GET /silent"))
	}
	want, got := byPath(strings.Split(logs.String(), "\n")), byPath(haloLines)
	for _, r := range requests {
		t.Logf("%s: haproxy %q, halo %q", r.path, want[r.path], got[r.path])
		if want[r.path] != got[r.path] {
			t.Errorf("%s: captures differ:\nhaproxy %q\nhalo    %q", r.path, want[r.path], got[r.path])
		}
	}
}
