package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Capture slots cost a forwarded request no allocation: the header
// captures, a capture rule of each kind and capture.req.hdr read back,
// once the pooled slots' buffers have grown.
func TestForwardWithCapturesAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	r := newForwardRigConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    capture: ["request header Host len 32", "request header User-Agent len 64", "response header Content-Type len 20"]
    declare: ["capture request len 40", "capture response len 8"]
    http-request:
      - capture path len 16
      - capture url_param(project) id 2
      - set-header X-Seen %[capture.req.hdr(0)]
    http-response:
      - capture status id 1
    tcp-request: ["content capture src len 15"]
    default_backend: be
backends:
  be:
    http-request: ["capture method id 2"]
    servers: [{name: a, address: "{{a}}"}]
`)
	for range 10 {
		r.forward(t)
	}
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("forward with captures allocates %.1f times per request, want 0", n)
	}
}

// A streamed response's access line is written by the stream, from its
// copy of the exchange: the level the rules set (here silent, from
// http-request and from http-response) and the response captures, which
// come after the copy is made, must reach it.
func TestStreamedResponseKeepsRulesLogState(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Srv", "a")
		if strings.HasPrefix(r.URL.Path, "/big") {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "a")
	})
	prx, logs := startLoggedProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, option: {httplog: true}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    declare: ["capture response len 4"]
    http-request: ["set-log-level silent if { path /big/req }"]
    http-response: ["capture res.hdr(X-Srv) id 0", "set-log-level silent if { path /big/res }"]
    default_backend: be
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, srv)
	url := "http://" + frontendAddr(t, prx, "fe")
	for _, p := range []string{"/big/req", "/big/res", "/big/logged", "/small"} {
		if body, code, err := httpGet(http.DefaultClient, url+p); err != nil || code != 200 || len(body) == 0 {
			t.Fatalf("%s: %d %v", p, code, err)
		}
	}
	waitFor(t, 3*time.Second, "the access lines", func() bool { return logs.FilterMessageSnippet("GET /small").Len() == 1 })
	for p, want := range map[string]int{"/big/req ": 0, "/big/res ": 0, "/big/logged ": 1} {
		if n := logs.FilterMessageSnippet("GET " + p).Len(); n != want {
			t.Errorf("%s: %d access lines, want %d", p, n, want)
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "GET /") && !strings.Contains(e.Message, " {a} ") {
			t.Errorf("no response capture in %q", e.Message)
		}
	}
}

// An http-response rule that replaces a response whose body was to stream
// (deny, return) stops the stream: the handler writes the access line,
// with the rules' status and level, and keeps the captures until it has,
// though many such requests run at once (the race detector watches the
// pooled slots a reply reads).
func TestResponseRulesReplaceAStreamedBody(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Srv", "srv-a")
		io.WriteString(w, big)
	})
	prx, logs := startLoggedProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, option: {httplog: true}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    capture: ["request header X-Id len 8"]
    declare: ["capture response len 8"]
    http-request: ["set-log-level silent if { path /quiet }"]
    http-response:
      - capture res.hdr(X-Srv) id 0
      - deny if { path_beg /quiet } || { path_beg /deny }
      - return status 200 content-type text/plain lf-string "id=%[capture.req.hdr(0)] srv=%[capture.res.hdr(0)]" if { path_beg /ret }
    default_backend: be
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, srv)
	url := "http://" + frontendAddr(t, prx, "fe")
	get := func(path, id string) (int, string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("X-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				id := fmt.Sprintf("g%di%d", g, i)
				if code, body := get("/ret", id); code != 200 || body != "id="+id+" srv=srv-a" {
					t.Errorf("/ret %s: %d %q", id, code, body)
				}
			}
		}()
	}
	wg.Wait()
	if code, _ := get("/quiet", "q"); code != 502 {
		t.Errorf("/quiet: %d, want the deny's 502", code)
	}
	if code, _ := get("/deny", "d"); code != 502 {
		t.Errorf("/deny: %d, want 502", code)
	}
	if code, _ := get("/big", "b"); code != 200 {
		t.Errorf("/big: %d", code)
	}
	waitFor(t, 3*time.Second, "the access lines", func() bool { return logs.FilterMessageSnippet("GET /big ").Len() == 1 })
	if n := logs.FilterMessageSnippet("GET /ret ").Len(); n != 160 {
		t.Errorf("%d lines for /ret, want 160", n)
	}
	for _, e := range logs.FilterMessageSnippet("GET /ret ").All() {
		if !strings.Contains(e.Message, " 200 ") || !strings.Contains(e.Message, " {srv-a} ") {
			t.Errorf("a /ret line: %q", e.Message)
			break
		}
	}
	// As HAProxy 2.6 logs a denied response: 502, termination state PH.
	if l := logs.FilterMessageSnippet("GET /deny ").All(); len(l) != 1 || !strings.Contains(l[0].Message, " 502 ") || !strings.Contains(l[0].Message, " PH-- ") {
		t.Errorf("the denied response's line: %v", l)
	}
	if n := logs.FilterMessageSnippet("GET /quiet ").Len(); n != 0 {
		t.Errorf("%d lines for the silenced /quiet, want none", n)
	}
}
