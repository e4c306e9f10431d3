package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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
	core, logs := observer.New(zap.InfoLevel)
	prx := New(zap.New(core))
	if err := prx.Apply(parseConfig(t, `
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
`, srv)); err != nil {
		t.Fatal(err)
	}
	defer prx.Shutdown(t.Context())
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
