package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// rawExchange sends req on a new connection and returns everything the
// proxy sends until it closes the connection (req asks it to).
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v (read %q)", req, err, b)
	}
	return dateLine.ReplaceAllString(string(b), "")
}

// dateLine is fasthttp's Date field, which changes every second.
var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r\n`)

// writePage writes a raw response file into dir.
func writePage(t *testing.T, dir, name, text string) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestErrorFilesAsHAProxyPicksThem(t *testing.T) {
	dir := t.TempDir()
	def := writePage(t, dir, "def.http", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nX-From: defaults\r\nContent-Length: 9\r\n\r\ndefaults\n")
	be := writePage(t, dir, "be.http", "HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nX-From: Backend\r\n\r\n<p>be</p>\n")
	fe403 := writePage(t, dir, "403.http", "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n")
	dead := deadAddr(t)
	p := startProxy(t, `
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
  retries: 0
  errorfile: {503: `+def+`}
frontends:
  fe:
    bind: "127.0.0.1:0"
    default_backend: plain
    errorfile: {403: `+fe403+`}
    acl: {own: ["path_beg /own"], deny: ["path_beg /deny"]}
    use_backend: ["own if own"]
    http-request: ["deny if deny"]
    http-error: ["status 400 content-type text/plain string \"bad one\" hdr X-Why halo"]
backends:
  plain: {servers: [{name: s, address: "`+dead+`"}]}
  own: {servers: [{name: s, address: "`+dead+`"}], errorfile: {503: `+be+`}}
`)
	addr := frontendAddr(t, p, "fe")
	get := func(path string) string {
		return rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	if got, want := get("/"), "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nx-from: defaults\r\nConnection: close\r\n\r\ndefaults\n"; got != want {
		t.Errorf("defaults' page through a backend that inherits it:\n%q\nwant\n%q", got, want)
	}
	// The backend's own page, a file without Content-Length: its body
	// ends with the file, and the connection closes after it as HAProxy
	// closes it.
	got := get("/own")
	for _, want := range []string{"HTTP/1.1 503 Service Unavailable\r\n", "cache-control: no-cache\r\n", "Content-Type: text/html\r\n", "x-from: Backend\r\n", "Connection: close\r\n", "\r\n\r\n<p>be</p>\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("backend's page: %q lacks %q", got, want)
		}
	}
	if got := get("/deny"); !strings.HasPrefix(got, "HTTP/1.1 403 Forbidden\r\n") || !strings.HasSuffix(got, "\r\n\r\nno\n") {
		t.Errorf("a frontend deny with the frontend's errorfile 403: %q", got)
	}
	got = rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(got, "x-why: halo\r\n") || !strings.HasSuffix(got, "\r\n\r\nbad one") {
		t.Errorf("a refused request with the frontend's http-error 400: %q", got)
	}

	// Kept-alive connections get the page too, and stay open after a
	// 503 as after halo's own page.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || string(body) != "defaults\n" {
			t.Errorf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestMonitorURI(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	prx := New(zap.New(core))
	a := startHTTPBackend(t, "a", nil)
	if err := prx.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    default_backend: be
    option: {httplog: true}
    monitor-uri: /status
    acl: {down: ["nbsrv(gone) lt 1", "hdr(x-fail) -m found"]}
  failing:
    bind: "127.0.0.1:0"
    default_backend: be
    monitor-uri: /status
    acl: {down: ["nbsrv(gone) lt 1"]}
    monitor: ["fail if down"]
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
  gone: {servers: [{name: a, address: "{{a}}", disabled: true}]}
`, a)); err != nil {
		t.Fatal(err)
	}
	defer prx.Shutdown(t.Context())
	fe, failing := frontendAddr(t, prx, "fe"), frontendAddr(t, prx, "failing")
	body, code, err := httpGet(httpClient(), "http://"+fe+"/status")
	if err != nil || code != 200 || body == "a" {
		t.Errorf("monitor-uri: %d %q %v; want halo's own 200", code, body, err)
	}
	// Only the exact URI: with a query it is a request like any other.
	if body, code, err := httpGet(httpClient(), "http://"+fe+"/status?x"); err != nil || code != 200 || body != "a" {
		t.Errorf("/status?x: %d %q %v; want it forwarded", code, body, err)
	}
	if _, code, err := httpGet(httpClient(), "http://"+failing+"/status"); err != nil || code != 503 {
		t.Errorf("monitor fail if down: %d %v; want 503", code, err)
	}
	if body, code, err := httpGet(httpClient(), "http://"+failing+"/"); err != nil || code != 200 || body != "a" {
		t.Errorf("other requests of a failing monitor's frontend: %d %q %v", code, body, err)
	}
	waitFor(t, 2*time.Second, "the access line of /status?x", func() bool { return logs.FilterLoggerName("access").Len() >= 1 })
	time.Sleep(50 * time.Millisecond)
	for _, e := range logs.FilterLoggerName("access").All() {
		if strings.Contains(e.Message, `"GET /status HTTP`) {
			t.Errorf("a monitor request was logged: %s", e.Message)
		}
	}
}

func TestForwardForAndOriginalToArguments(t *testing.T) {
	seen := make(chan http.Header, 8)
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "a")
	})
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  plain: {bind: "127.0.0.1:0", default_backend: be, option: {forwardfor: true, originalto: true}}
  except: {bind: "127.0.0.1:0", default_backend: be, option: {forwardfor: {except: 127.0.0.0/8}, originalto: {except: 127.0.0.1/32}}}
  named: {bind: "127.0.0.1:0", default_backend: be, option: {forwardfor: {header: X-Client-IP, if-none: true}, originalto: {header: X-Dst}}}
  bybackend: {bind: "127.0.0.1:0", default_backend: fwd}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
  fwd: {servers: [{name: a, address: "{{a}}"}], option: {forwardfor: {header: X-Be}}}
`, a)
	ask := func(fe string, hdrs ...string) http.Header {
		t.Helper()
		req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + strings.Join(hdrs, "") + "\r\n"
		if got := rawExchange(t, frontendAddr(t, p, fe), req); !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("%s: %q", fe, got)
		}
		return <-seen
	}
	h := ask("plain", "X-Forwarded-For: 10.0.0.1\r\n")
	if got := h.Values("X-Forwarded-For"); strings.Join(got, ",") != "10.0.0.1,127.0.0.1" {
		t.Errorf("plain forwardfor: %q", got)
	}
	if got := h.Get("X-Original-To"); got != "127.0.0.1" {
		t.Errorf("originalto: %q", got)
	}
	h = ask("except")
	if _, ok := h["X-Forwarded-For"]; ok {
		t.Errorf("except 127.0.0.0/8: X-Forwarded-For %q added", h.Get("X-Forwarded-For"))
	}
	if _, ok := h["X-Original-To"]; ok {
		t.Errorf("originalto except 127.0.0.1/32: %q added", h.Get("X-Original-To"))
	}
	h = ask("named")
	if h.Get("X-Client-Ip") != "127.0.0.1" || h.Get("X-Dst") != "127.0.0.1" || h.Get("X-Forwarded-For") != "" {
		t.Errorf("renamed headers: %v", h)
	}
	h = ask("named", "x-client-ip: 10.1.1.1\r\n")
	if got := h.Values("X-Client-Ip"); len(got) != 1 || got[0] != "10.1.1.1" {
		t.Errorf("if-none with the header sent (in another case): %q", got)
	}
	if h = ask("bybackend"); h.Get("X-Be") != "127.0.0.1" {
		t.Errorf("a backend's option forwardfor: %v", h)
	}
}

func TestCapturesInTheHTTPLog(t *testing.T) {
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Set-Cookie", "SRV=s1234567890; path=/")
		io.WriteString(w, "a")
	})
	core, logs := observer.New(zap.InfoLevel)
	prx := New(zap.New(core))
	if err := prx.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    default_backend: be
    option: {httplog: true}
    capture: ["request header Host len 5", "request header User-Agent len 64", "response header Content-Type len 10", "cookie SRV len 8"]
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)); err != nil {
		t.Fatal(err)
	}
	defer prx.Shutdown(t.Context())
	rawExchange(t, frontendAddr(t, prx, "fe"), "GET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: a|b{c}\"d#\r\nCookie: a=b; SRV=abcdefghijk\r\nConnection: close\r\n\r\n")
	waitFor(t, 2*time.Second, "the access line", func() bool { return logs.FilterLoggerName("access").Len() == 1 })
	line := logs.FilterLoggerName("access").All()[0].Message
	for _, want := range []string{" 200 1 SRV=abcd SRV=s123 ---- ", ` 0/0 {examp|a#7Cb#7Bc#7D#22d#23} {text/plain} "GET /x HTTP/1.1"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access line %q lacks %q", line, want)
		}
	}
}

// The options of this change cost a forwarded request no allocation:
// forwardfor with its arguments, originalto, a monitor-uri that does not
// match, error pages that are not sent.
func TestForwardWithExtrasAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Shutdown() })
	page := writePage(t, t.TempDir(), "503.http", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
	p := New(zap.NewNop())
	cfg, err := config.Parse("rig.yaml", []byte(`
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, errorfile: {503: `+page+`}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    default_backend: be
    monitor-uri: /status
    monitor: ["fail if { nbsrv(be) lt 1 }"]
    option: {forwardfor: {except: 10.0.0.0/8, header: X-Client, if-none: true}, originalto: true}
backends:
  be: {servers: [{name: a, address: "`+ln.Addr().String()+`"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	r := &forwardRig{fe: p.Snapshot().frontends[0], ctx: &fasthttp.RequestCtx{}}
	var req fasthttp.Request
	r.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	for range 10 {
		r.forward(t)
	}
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("forward allocates %.1f times per request, want 0", n)
	}
}

// A reload reads the errorfile again: the page halo sends is the one on
// disk when the configuration was last applied.
func TestErrorFileReadAgainOnReload(t *testing.T) {
	dir := t.TempDir()
	page := func(body string) {
		writePage(t, dir, "503.http", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	}
	page("first")
	file := filepath.Join(dir, "halo.yaml")
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, retries: 0}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, errorfile: {503: 503.http}}
backends:
  be: {servers: [{name: a, address: "` + deadAddr(t) + `"}]}
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(zap.NewNop())
	defer p.Shutdown(t.Context())
	for _, body := range []string{"first", "second"} {
		page(body)
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		got := rawExchange(t, frontendAddr(t, p, "fe"), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasSuffix(got, "\r\n\r\n"+body) {
			t.Errorf("after applying with %q on disk: %q", body, got)
		}
	}
}

// Every status a deny or tarpit without a body may take has a page of its
// own, headed with its status, whose status line says what HAProxy's does.
func TestEveryDefaultStatusHasItsPage(t *testing.T) {
	for _, status := range lang.DefaultPageStatuses {
		p, ok := errorPages[status]
		if !ok || !strings.Contains(string(p.body), "<h1>"+strconv.Itoa(status)+" ") {
			t.Errorf("status %d: no page of its own (%q)", status, p.body)
		}
		var resp fasthttp.Response
		setErrorResponse(&resp, status, false)
		if resp.StatusCode() != status || !bytes.Equal(resp.Body(), p.body) {
			t.Errorf("status %d: sent %d %q", status, resp.StatusCode(), resp.Body())
		}
	}
}
