package proxy

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestUniqueIDLikeHAProxy sends the same requests through Debian's
// haproxy and through halo, configured alike with unique-id-format and
// unique-id-header. A format of what both proxies see alike (flags, the
// client's and frontend's addresses in hex, base32, the request line as
// received, an escaped header) must give the same header at the server
// and the same %[unique-id] in a response rule; OpenStack's format, whose
// port, time, counter and pid differ between the two processes, must
// have HAProxy's shape in both. The header is added after the rules: a
// rule's %ID is still empty, as HAProxy's.
func TestUniqueIDLikeHAProxy(t *testing.T) {
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Join(r.Header.Values("X-Unique-Id"), "|")+" "+r.Header.Get("X-Rule-Id"))
	})
	hx, hy := testnet.FreeAddr(t), testnet.FreeAddr(t)
	const same = `%{+X}o\ %ci-%fi_%[base32]_%[capture.req.uri]_%{+Q}HM_%{+E}[req.hdr(x-a)]`
	const openstack = `%{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid`
	startHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fx
  bind %s
  unique-id-format %s
  unique-id-header X-Unique-ID
  http-request set-header X-Rule-Id "[%%ID]"
  http-request set-path /rewritten%%[path]
  http-response set-header X-Resp-Id %%[unique-id]
  default_backend be
frontend fy
  bind %s
  unique-id-format %s
  unique-id-header X-Unique-ID
  default_backend be
backend be
  server a %s
`, hx, same, hy, openstack, srv.addr), hx, hy)
	prx := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fx:
    bind: "127.0.0.1:0"
    unique-id-format: '%s'
    unique-id-header: X-Unique-ID
    http-request: ["set-header X-Rule-Id [%%ID]", "set-path /rewritten%%[path]"]
    http-response: ["set-header X-Resp-Id %%[unique-id]"]
    default_backend: be
  fy: {bind: "127.0.0.1:0", unique-id-format: '%s', unique-id-header: X-Unique-ID, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, same, openstack), srv)
	gx, gy := frontendAddr(t, prx, "fx"), frontendAddr(t, prx, "fy")
	get := func(addr, path string) (string, string) {
		t.Helper()
		_, fields, body := pageOnWire(t, addr, "GET "+path+" HTTP/1.1\r\nHost: Example.org\r\nX-A: a\"b]c\r\nConnection: close\r\n\r\n")
		resp := ""
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "x-resp-id:"); ok {
				resp = strings.TrimSpace(v)
			}
		}
		return body, resp
	}
	for _, path := range []string{"/v3/auth/tokens?nocatalog", "/"} {
		hb, hr := get(hx, path)
		gb, gr := get(gx, path)
		t.Logf("%s: haproxy %q %q", path, hb, hr)
		if hb != gb || hr != gr || hr == "" || !strings.HasPrefix(hb, hr+" ") {
			t.Errorf("%s: haproxy %q and X-Resp-Id %q, halo %q and %q", path, hb, hr, gb, gr)
		}
	}
	shape := regexp.MustCompile(`^7F000001:[0-9A-F]{4}_7F000001:[0-9A-F]{4}_[0-9A-F]{8}_[0-9A-F]{4,8}:[0-9A-F]{4,8} $`)
	for _, addr := range []string{hy, gy} {
		b1, _ := get(addr, "/")
		b2, _ := get(addr, "/")
		if !shape.MatchString(b1) || !shape.MatchString(b2) || b1 == b2 {
			t.Errorf("%s: unique ids %q then %q, want HAProxy's shape and two of them", addr, b1, b2)
		}
	}
}
