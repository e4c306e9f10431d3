package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// rulesConfig is a public frontend as OpenStack deployments write it, in
// halo's YAML with HAProxy's rule lines.
const rulesConfig = `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    acl:
      is_identity: path_beg /identity /v3
      dashboard: hdr(host) -i -m dom dashboard.example.org
      blocked: [src 127.0.0.5, hdr(x-forwarded-for) -m ip 192.0.2.0/24]
    http-request:
      - deny deny_status 403 if blocked
      - set-header X-Forwarded-Proto https if { ssl_fc }
      - set-header X-Forwarded-Proto http unless { ssl_fc }
      - "set-header X-Forwarded-Port %[dst_port]"
      - return status 200 content-type text/plain string pong if { path /ping }
    redirect:
      - scheme https code 301 if { hdr(host) -i secure.example.org }
    http-response:
      - del-header Server
      - "set-header X-Served-By %[be_conn,add(0)]"
    use_backend:
      - keystone if is_identity
    default_backend: horizon
backends:
  keystone:
    http-request: ["set-header X-Backend keystone"]
    servers: [{name: k, address: "{{k}}"}]
  horizon:
    servers: [{name: h, address: "{{h}}"}]
`

func TestRulesRouteRewriteAndAnswer(t *testing.T) {
	echo := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "nginx")
			w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
			w.Header().Set("X-Seen-Port", r.Header.Get("X-Forwarded-Port"))
			w.Header().Set("X-Seen-Backend", r.Header.Get("X-Backend"))
			w.Write([]byte(name))
		}
	}
	k := startHTTPBackend(t, "k", echo("k"))
	h := startHTTPBackend(t, "h", echo("h"))
	p := startProxy(t, rulesConfig, k, h)
	addr := frontendAddr(t, p, "fe")
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, host, xff string
		status          int
		body            string
		hdr             map[string]string
	}{
		{"/v3/auth/tokens", "keystone.example.org", "", 200, "k", map[string]string{"X-Seen-Proto": "http", "X-Seen-Port": port, "X-Seen-Backend": "keystone", "Server": ""}},
		{"/identity", "", "", 200, "k", nil},
		{"/dashboard/", "dashboard.example.org", "", 200, "h", map[string]string{"X-Seen-Backend": "", "X-Served-By": "1"}},
		{"/ping", "", "", 200, "pong", map[string]string{"Content-Type": "text/plain"}},
		{"/x?a=1", "Secure.Example.org", "", 301, "", map[string]string{"Location": "https://Secure.Example.org/x?a=1"}},
		{"/", "", "192.0.2.7", 403, "", nil},
		{"/", "", "198.51.100.7", 200, "h", nil},
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		var b strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.body != "" && b.String() != tc.body) {
			t.Errorf("%s (Host %s): %d %q, want %d %q", tc.path, tc.host, resp.StatusCode, b.String(), tc.status, tc.body)
		}
		for name, want := range tc.hdr {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %s %q, want %q", tc.path, name, got, want)
			}
		}
	}
	fc := p.FrontendCounters("fe")
	if fc.DeniedReq.Load() != 1 {
		t.Errorf("denied requests counted %d, want 1", fc.DeniedReq.Load())
	}
}

// A reload that changes the rules takes effect on the next request of a
// kept-alive connection.
func TestRulesFollowReload(t *testing.T) {
	h := startHTTPBackend(t, "h", nil)
	k := startHTTPBackend(t, "k", nil)
	p := startProxy(t, rulesConfig, k, h)
	client := httpClient()
	url := "http://" + frontendAddr(t, p, "fe") + "/v3/x"
	if body, code, err := httpGet(client, url); err != nil || code != 200 || body != "k" {
		t.Fatalf("before: %d %q %v", code, body, err)
	}
	changed := strings.Replace(rulesConfig, "is_identity: path_beg /identity /v3", "is_identity: path_beg /identity", 1)
	if err := p.Apply(parseConfig(t, changed, k, h)); err != nil {
		t.Fatal(err)
	}
	if body, code, err := httpGet(client, url); err != nil || code != 200 || body != "h" {
		t.Fatalf("after: %d %q %v", code, body, err)
	}
}

// The example's rule set on the forward path allocates nothing.
func TestForwardWithRulesAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	r := newForwardRigConfig(t, forwardRulesConfig)
	for range 10 {
		r.forward(t)
	}
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("forward with rules allocates %.1f times per request, want 0", n)
	}
}

// forwardRulesConfig is the forward rig's configuration with the rule set
// of examples/openstack-public.yaml's public frontend.
const forwardRulesConfig = `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    acl:
      is_identity: path_beg /identity /v3
      dashboard: hdr(host) -i -m dom dashboard.example.org
      blocked: src 192.0.2.0/24 198.51.100.7
    http-request:
      - deny deny_status 403 if blocked
      - set-header X-Forwarded-Proto https if { ssl_fc }
      - set-header X-Forwarded-Proto http unless { ssl_fc }
      - "set-header X-Forwarded-Port %[dst_port]"
      - del-header X-Internal-Secret
    redirect:
      - scheme https code 301 if { hdr(host) -i secure.example.org }
    http-response:
      - del-header Server
    use_backend:
      - keystone if is_identity
      - horizon if dashboard
    default_backend: horizon
backends:
  keystone:
    servers: [{name: a, address: "{{a}}"}]
  horizon:
    servers: [{name: a, address: "{{a}}"}]
`

func BenchmarkForwardWithRules(b *testing.B) {
	r := newForwardRigConfig(b, forwardRulesConfig)
	b.ReportAllocs()
	for b.Loop() {
		r.forward(b)
	}
}

// The rules example serves: loaded as a user loads it, on loopback binds,
// its routing, redirect and answers work against real servers.
func TestOpenStackPublicExample(t *testing.T) {
	cfg, err := config.Load("../examples/openstack-public.yaml")
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]*testBackend{}
	for _, be := range cfg.Backends {
		b := startHTTPBackend(t, be.Name, nil)
		servers[be.Name] = b
		for i := range be.Servers {
			be.Servers[i].Address, be.Servers[i].Check = b.addr, false
		}
	}
	for _, fe := range cfg.Frontends {
		for i := range fe.Binds {
			fe.Binds[i].Address = "127.0.0.1:0"
		}
	}
	p := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	fe := p.Snapshot().frontendsByName["public"]
	tlsAddr, plainAddr := fe.listeners[0].ln.Addr().String(), fe.listeners[1].ln.Addr().String()
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, tc := range []struct {
		url, host string
		status    int
		body      string
	}{
		{"https://" + tlsAddr + "/v3/auth/tokens", "identity.overcloud.example.org", 200, "keystone"},
		{"https://" + tlsAddr + "/v2.1/servers", "compute.overcloud.example.org", 200, "nova"},
		{"https://" + tlsAddr + "/v2/images", "Image.Overcloud.Example.org:443", 200, "glance"},
		{"https://" + tlsAddr + "/dashboard/", "dashboard.overcloud.example.org", 200, "horizon"},
		{"https://" + tlsAddr + "/", "dashboard.overcloud.example.org", 302, ""},
		{"http://" + plainAddr + "/v3", "identity.overcloud.example.org", 301, ""},
		{"http://" + plainAddr + "/healthcheck", "", 200, "OK"},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
			t.Errorf("%s (Host %s): %d %q, want %d %q", tc.url, tc.host, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// use_backend %[...] routes by a computed name; a name that is no backend
// falls through to the next line, then default_backend.
func TestUseBackendByFormat(t *testing.T) {
	k := startHTTPBackend(t, "k", nil)
	h := startHTTPBackend(t, "h", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    use_backend:
      - "%[req.hdr(x-be),lower] if { req.hdr(x-be) -m found }"
    default_backend: horizon
backends:
  keystone: {servers: [{name: k, address: "{{k}}"}]}
  horizon: {servers: [{name: h, address: "{{h}}"}]}
`
	p := startProxy(t, yaml, k, h)
	for be, want := range map[string]string{"KEYSTONE": "k", "horizon": "h", "nothere": "h", "": "h"} {
		req, _ := http.NewRequest("GET", "http://"+frontendAddr(t, p, "fe")+"/", nil)
		if be != "" {
			req.Header.Set("X-Be", be)
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("X-Be %q: served by %q, want %q", be, body, want)
		}
	}
}

// set-log-level silent drops a request's access line (a monitoring probe),
// and a rule's answer is logged with the request line and PR-- or LR--.
func TestRulesLogLevels(t *testing.T) {
	h := startHTTPBackend(t, "h", nil)
	core, logs := observer.New(zap.DebugLevel)
	p := New(zap.New(core))
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    option: {httplog: true}
    http-request:
      - set-log-level silent if { path /health }
      - set-log-level err if { path /error }
      - deny if { path /deny }
    default_backend: horizon
backends:
  horizon: {servers: [{name: h, address: "{{h}}"}]}
`
	if err := p.Apply(parseConfig(t, yaml, h)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	for _, path := range []string{"/health", "/error", "/deny", "/ok"} {
		httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+path)
	}
	waitFor(t, 5*time.Second, "three access lines", func() bool { return logs.FilterLoggerName("access").Len() >= 3 })
	var got []string
	for _, e := range logs.FilterLoggerName("access").All() {
		got = append(got, e.Level.String()+" "+e.Message[strings.Index(e.Message, "] ")+2:])
	}
	if len(got) != 3 || !strings.HasPrefix(got[0], "error fe horizon/h ") || !strings.Contains(got[0], `"GET /error HTTP/1.1"`) ||
		!strings.HasPrefix(got[1], "info fe fe/<NOSRV> ") || !strings.Contains(got[1], " 0/-1/-1/-1/0 403 79 - - PR-- ") || !strings.Contains(got[1], `"GET /deny HTTP/1.1"`) ||
		!strings.Contains(got[2], `"GET /ok HTTP/1.1"`) {
		t.Errorf("access lines:\n%s", strings.Join(got, "\n"))
	}
}

// An http-response deny of a response whose body streams (larger than
// what halo reads whole) replaces it with a 502 and frees the server
// slot and connection: the next requests are served and nothing stays
// counted.
func TestResponseDenyOfStreamedBody(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	h := startHTTPBackend(t, "h", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/secret" {
			w.Header().Set("X-Secret", "1")
		}
		io.WriteString(w, big)
	})
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    http-response: ["deny if { res.hdr(x-secret) -m found }"]
    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}", maxconn: 1}]}
`
	p := startProxy(t, yaml, h)
	url := "http://" + frontendAddr(t, p, "fe")
	for range 3 {
		if _, code, err := httpGet(httpClient(), url+"/secret"); err != nil || code != 502 {
			t.Fatalf("/secret: %d %v, want 502", code, err)
		}
		if body, code, err := httpGet(httpClient(), url+"/open"); err != nil || code != 200 || len(body) != len(big) {
			t.Fatalf("/open: %d %d bytes %v", code, len(body), err)
		}
	}
	bc := p.BackendCounters("be")
	waitFor(t, 5*time.Second, "no session left on the backend", func() bool { return bc.CurConns.Load() == 0 })
	if fc := p.FrontendCounters("fe"); fc.DeniedResp.Load() != 3 {
		t.Errorf("denied responses %d on the frontend (whose rule denied them), want 3", fc.DeniedResp.Load())
	}
}

// A proc. variable is the process's: a request on one connection sets it,
// requests on other connections and other frontends read it, from many
// goroutines at once (the race detector watches), and a reload keeps it.
func TestProcVariablesAreProcessWide(t *testing.T) {
	h := startHTTPBackend(t, "h", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h") })
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  a:
    bind: "127.0.0.1:0"
    http-request: ["set-var(proc.seen) url_param(v) if { url_param(v) -m found }"]
    default_backend: horizon
  b:
    bind: "127.0.0.1:0"
    http-request: ['return status 200 content-type text/plain lf-string "seen=%[var(proc.seen)]"']
    default_backend: horizon
backends:
  horizon: {servers: [{name: h, address: "{{h}}"}]}
`
	p := startProxy(t, yaml, h)
	a, b := "http://"+frontendAddr(t, p, "a"), "http://"+frontendAddr(t, p, "b")
	if _, code, err := httpGet(httpClient(), a+"/?v=first"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	if body, _, _ := httpGet(httpClient(), b+"/"); body != "seen=first" {
		t.Fatalf("frontend b reads %q, want seen=first", body)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				httpGet(httpClient(), fmt.Sprintf("%s/?v=%d-%d", a, i, j))
				if body, _, _ := httpGet(httpClient(), b+"/"); !strings.HasPrefix(body, "seen=") {
					t.Errorf("read %q", body)
				}
			}
		}()
	}
	wg.Wait()
	httpGet(httpClient(), a+"/?v=last")
	if err := p.Apply(parseConfig(t, strings.Replace(yaml, "seen=%[", "still=%[", 1), h)); err != nil {
		t.Fatal(err)
	}
	b = "http://" + frontendAddr(t, p, "b")
	if body, _, _ := httpGet(httpClient(), b+"/"); body != "still=last" {
		t.Fatalf("after a reload: %q, want still=last", body)
	}
}

// An empty map file, or one of comments and blank lines, is a map that
// finds nothing, as in HAProxy: the load takes it and the converter gives
// its default (the load refused it as "not read" before).
func TestEmptyMapFileFindsNothing(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"empty.map": "", "comments.map": "# none yet\n\n  \n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    http-request:
      - return status 200 content-type text/plain lf-string "%[req.hdr(host),map_str(`+dir+`/empty.map,none)] %[req.hdr(host),map_dom(`+dir+`/comments.map,nodom)]"
`)
	body, status, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil || status != http.StatusOK || body != "none nodom" {
		t.Fatalf("got %d %q %v, want 200 \"none nodom\"", status, body, err)
	}
}
