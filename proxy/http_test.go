package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

const httpConfig = `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {forwardfor: true}}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}"}
`

func TestHTTPHeaders(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, httpConfig, a)
	req, _ := http.NewRequest("GET", "http://"+frontendAddr(t, p, "fe")+"/path?q=1", nil)
	req.Host = "keystone.example:5000"
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("X-Forwarded-For", "10.9.9.9")
	req.Header.Set("Connection", "keep-alive")
	req.Header.Set("Keep-Alive", "timeout=5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Seen-Host"); got != "keystone.example:5000" {
		t.Errorf("server saw Host %q, want it preserved", got)
	}
	if got := resp.Header.Get("X-Seen-XFF"); got != "10.9.9.9,127.0.0.1" {
		t.Errorf("server saw X-Forwarded-For %q, want the client's value then 127.0.0.1", got)
	}
	if got := resp.Header.Get("X-Seen-Proxy-Authorization"); got != "" {
		t.Errorf("hop-by-hop Proxy-Authorization was forwarded: %q", got)
	}
	if got := resp.Header.Get("X-Seen-Connection") + resp.Header.Get("X-Seen-Keep-Alive"); got != "" {
		t.Errorf("hop-by-hop Connection/Keep-Alive were forwarded: %q", got)
	}
	if resp.Header.Get("Server") != "" {
		t.Errorf("halo added a Server header: %q", resp.Header.Get("Server"))
	}
}

func TestHTTPNoServer503(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, httpConfig, a)
	p.Registry().Lookup("be", "a").SetHealthy(false)
	body, code, err := httpGet(http.DefaultClient, "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil || code != 503 || !strings.Contains(body, "503") {
		t.Fatalf("got %d %q %v, want 503", code, body, err)
	}
}

func TestHTTPConnectFailure503(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	a.kill()
	p := startProxy(t, httpConfig, a)
	_, code, err := httpGet(http.DefaultClient, "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil || code != 503 {
		t.Fatalf("got %d %v, want 503 when the server refuses connections", code, err)
	}
	if got := p.Registry().Lookup("be", "a").ConnErrors.Load(); got != 4 {
		t.Errorf("connection errors = %d, want 4 (one try and retries: 3)", got)
	}
}

func TestHTTPServerFailure502(t *testing.T) {
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		io.WriteString(c, "this is not HTTP\r\n\r\n")
		c.Close()
	})
	p := startProxy(t, httpConfig, a)
	_, code, err := httpGet(http.DefaultClient, "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil || code != 502 {
		t.Fatalf("got %d %v, want 502 for a garbage response", code, err)
	}
}

func TestHTTPServerTimeout504(t *testing.T) {
	release := make(chan struct{})
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	defer close(release)
	p := startProxy(t, strings.Replace(httpConfig, "server: 5s", "server: 200ms", 1), a)
	start := time.Now()
	_, code, err := httpGet(http.DefaultClient, "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil || code != 504 {
		t.Fatalf("got %d %v, want 504", code, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("504 came after %v, want about the 200ms server timeout", took)
	}
}

// Bodies stream both ways, with Content-Length and chunked, byte for byte.
func TestHTTPStreamingBodies(t *testing.T) {
	const size = 48 << 20
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x %v %d", n, h.Sum(nil), err, r.ContentLength)
		case "/download":
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", fmt.Sprint(size))
			}
			io.Copy(w, io.LimitReader(&pattern{}, size))
		}
	})
	p := startProxy(t, httpConfig, a)
	base := "http://" + frontendAddr(t, p, "fe")
	want := sha256.New()
	io.Copy(want, io.LimitReader(&pattern{}, size))
	wantSum := fmt.Sprintf("%x", want.Sum(nil))

	for _, chunked := range []bool{false, true} {
		var body io.Reader = io.LimitReader(&pattern{}, size)
		if chunked {
			body = struct{ io.Reader }{body} // hides the length: Go sends it chunked
		}
		req, _ := http.NewRequest("POST", base+"/upload", body)
		if !chunked {
			req.ContentLength = size
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantLen := int64(size)
		if chunked {
			wantLen = -1
		}
		if exp := fmt.Sprintf("%d %s <nil> %d", size, wantSum, wantLen); string(got) != exp {
			t.Errorf("upload (chunked=%v): server got %q, want %q", chunked, got, exp)
		}

		url := base + "/download"
		if chunked {
			url += "?chunked=1"
		}
		resp, err = http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || fmt.Sprintf("%x", h.Sum(nil)) != wantSum {
			t.Errorf("download (chunked=%v): %d bytes, err %v, sum match %v", chunked, n, err, fmt.Sprintf("%x", h.Sum(nil)) == wantSum)
		}
	}
	// Bytes, heads included as HAProxy counts them, are counted on the
	// frontend, backend and server alike.
	for what, c := range map[string][2]uint64{
		"frontend": {p.FrontendCounters("fe").BytesIn.Load(), p.FrontendCounters("fe").BytesOut.Load()},
		"backend":  {p.BackendCounters("be").BytesIn.Load(), p.BackendCounters("be").BytesOut.Load()},
		"server":   {p.Registry().Lookup("be", "a").BytesIn.Load(), p.Registry().Lookup("be", "a").BytesOut.Load()},
	} {
		if c[0] < 2*size || c[0] > 2*size+1000 || c[1] < 2*size || c[1] > 2*size+1000 {
			t.Errorf("%s bytes in/out = %d/%d, want a little over %d both ways (the bodies and the heads)", what, c[0], c[1], 2*size)
		}
	}
	// The server connection that carried a streamed response went back to
	// the pool and serves the next request.
	if body, code, err := httpGet(http.DefaultClient, base+"/upload"); err != nil || code != 200 || !strings.HasPrefix(body, "0 ") {
		t.Fatalf("request after streaming: %d %q %v", code, body, err)
	}
}

// pattern is an endless byte stream whose bytes depend on their offset, so
// a reordered, lost or repeated chunk changes the checksum.
type pattern struct{ off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		o := p.off + int64(i)
		b[i] = byte(o*7 + o>>11)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// forwardRig is halo's L7 forward path wired to a real fasthttp server,
// driven without a client connection: the handler runs on a RequestCtx.
type forwardRig struct {
	fe  *frontend
	ctx *fasthttp.RequestCtx
	// host is the request's Host, keystone.example when empty.
	host string
}

func newForwardRig(tb testing.TB, balance string) *forwardRig {
	return newForwardRigWith(tb, balance, "")
}

// statsGlobal gives a configuration a stats socket, which turns on the
// per-request timings that stats read (the socket itself is the stats
// package's to open).
var statsGlobal = "global: {stats: {socket: [{path: \"" + os.TempDir() + "/halo-rig.sock\", level: admin}]}}\n"

func newForwardRigWith(tb testing.TB, balance, prefix string) *forwardRig {
	tb.Helper()
	yaml := prefix + strings.Replace(httpConfig, "    servers:", "    balance: "+balance+"\n    servers:\n      - {name: b, address: \"{{a}}\", maxconn: 100}", 1)
	return newForwardRigConfig(tb, yaml)
}

// newForwardRigConfig is a forward rig for a configuration whose one
// frontend's servers are all at {{a}}.
func newForwardRigConfig(tb testing.TB, yaml string) *forwardRig {
	tb.Helper()
	return newForwardRigFor(tb, func(server string) *config.Config {
		cfg, err := config.Parse("rig.yaml", []byte(strings.ReplaceAll(yaml, "{{a}}", server)))
		if err != nil {
			tb.Fatal(err)
		}
		return cfg
	})
}

// newForwardRigFor is a forward rig for the configuration build makes
// with the rig's server address.
func newForwardRigFor(tb testing.TB, build func(server string) *config.Config) *forwardRig {
	tb.Helper()
	return newLoggedForwardRig(tb, build, zap.NewNop(),
		&fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }})
}

// newLoggedForwardRig is newForwardRigFor with the proxy's logger and the
// server to forward to given (its Serve runs on a loopback listener);
// forward expects the "hello" server, other servers' rigs drive fe
// themselves.
func newLoggedForwardRig(tb testing.TB, build func(server string) *config.Config, log *zap.Logger, backend *fasthttp.Server) *forwardRig {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go backend.Serve(ln)
	tb.Cleanup(func() { backend.Shutdown() })
	p := New(log)
	cfg := build(ln.Addr().String())
	if err := p.Apply(cfg); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Shutdown(context.Background()) })
	r := &forwardRig{fe: p.Snapshot().frontends[0], ctx: &fasthttp.RequestCtx{}}
	var req fasthttp.Request
	r.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return r
}

// forward sends one small POST through halo to the server.
func (r *forwardRig) forward(tb testing.TB) {
	ctx := r.ctx
	ctx.Request.Reset()
	// As fasthttp's server leaves a request it parsed: origin-form, Host.
	ctx.Request.SetRequestURI("/v3/auth/tokens?tenant=demo")
	if r.host != "" {
		ctx.Request.Header.SetHost(r.host)
	} else {
		ctx.Request.Header.SetHost("keystone.example")
	}
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("X-Auth-Project", "demo")
	ctx.Request.SetBodyString(`{"auth": {}}`)
	ctx.Request.URI() // fasthttp's server parses every request's URI before the handler
	ctx.Response.Reset()
	r.fe.handleHTTP(ctx)
	if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Body(), []byte("hello")) {
		tb.Fatalf("forward: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// rigBalances are the algorithms the forward path is measured with: each
// way of computing a key, and each kind of policy, one of its two servers
// with a maxconn so that slots are counted.
var rigBalances = []string{"roundrobin", "leastconn", "random(2)", "source", "uri depth 2", "url_param tenant", "hdr(X-Auth-Project)", "hdr(Host) use_domain_only"}

// The forward path for a small request and response allocates nothing once
// warm, whatever the balance algorithm. The server is a fasthttp one because
// AllocsPerRun counts every goroutine's allocations, and net/http's server
// allocates per request.
func TestForwardAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, balance := range rigBalances {
		t.Run(balance, func(t *testing.T) {
			r := newForwardRig(t, balance)
			for range 10 {
				r.forward(t)
			}
			if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
				t.Fatalf("forward allocates %.1f times per request, want 0", n)
			}
		})
	}
}

// BenchmarkForward measures one small request through the L7 forward path,
// server round trip on loopback included.
func BenchmarkForward(b *testing.B) {
	r := newForwardRig(b, "roundrobin")
	b.ReportAllocs()
	for b.Loop() {
		r.forward(b)
	}
}

// BenchmarkForwardWithStats is BenchmarkForward with a stats socket
// configured: requests are timed for the latency histograms. Compare the
// two, alternating, for what the stats cost the data path.
func BenchmarkForwardWithStats(b *testing.B) {
	r := newForwardRigWith(b, "roundrobin", statsGlobal)
	b.ReportAllocs()
	for b.Loop() {
		r.forward(b)
	}
}

// With a stats socket configured, each request is timed into the server's
// histograms, still without allocating.
func TestForwardWithStatsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	r := newForwardRigWith(t, "roundrobin", statsGlobal)
	timed := func() (n uint64) {
		for _, srv := range r.fe.defaultBackend.servers {
			n += srv.state.Timings.Count.Load()
		}
		return n
	}
	for range 10 {
		r.forward(t)
	}
	before := timed()
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("forward with stats allocates %.1f times per request, want 0", n)
	}
	if got := timed() - before; got != 501 {
		t.Fatalf("%d requests timed, want 501 (AllocsPerRun runs once more than asked)", got)
	}
}

// Slow transfers that take much longer than timeout client and timeout
// server, but never pause for as long, complete: both timeouts bound
// inactivity, not duration, in both directions (an image upload to Glance
// may take many minutes).
func TestHTTPSlowTransfersOutlastTimeouts(t *testing.T) {
	const chunk, chunks, pause = 64 << 10, 15, 100 * time.Millisecond
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		case "/download":
			buf := make([]byte, chunk)
			for range chunks {
				w.Write(buf)
				w.(http.Flusher).Flush()
				time.Sleep(pause)
			}
		}
	})
	p := startProxy(t, strings.NewReplacer("client: 5s", "client: 400ms", "server: 5s", "server: 400ms").Replace(httpConfig), a)
	base := "http://" + frontendAddr(t, p, "fe")

	resp, err := http.Get(base + "/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != chunk*chunks {
		t.Errorf("slow download: %d bytes, %v; want %d", n, err, chunk*chunks)
	}

	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, chunk)
		for range chunks {
			pw.Write(buf)
			time.Sleep(pause)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/upload", pr)
	req.ContentLength = chunk * chunks
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d <nil>", chunk*chunks); resp.StatusCode != 200 || string(body) != want {
		t.Errorf("slow upload: %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

// A response whose body ends when the server closes (HTTP/1.0 style, no
// length, not chunked) is relayed whole, request after request.
func TestHTTPCloseDelimitedResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := strings.Repeat("x", 100<<10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"+body)
			}()
		}
	}()
	a := &testBackend{name: "a", ln: ln, addr: ln.Addr().String()}
	p := startProxy(t, httpConfig, a)
	for i := range 3 {
		got, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/")
		if err != nil || code != 200 || got != body {
			t.Fatalf("request %d: %d, %d bytes, %v", i, code, len(got), err)
		}
	}
}

func TestHTTPResponseHopHeadersRemoved(t *testing.T) {
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Upgrade", "h2c")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "a")
	})
	p := startProxy(t, httpConfig, a)
	resp, err := http.Get("http://" + frontendAddr(t, p, "fe") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if got := resp.Header.Get(h); got != "" {
			t.Errorf("hop-by-hop response header %s was forwarded: %q", h, got)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("an end-to-end header was dropped: %v", resp.Header)
	}
}

func TestRawHasHopHeader(t *testing.T) {
	for raw, want := range map[string]bool{
		"Host: a\r\nUser-Agent: x\r\nX-Auth-Token: t\r\n\r\n": false,
		"Host: a\r\nconnection: keep-alive\r\n\r\n":           true,
		"Host: a\nTE: trailers\n\n":                           true,
		"Host: a\r\nExpect : 100-continue\r\n":                true,
		"Host: a\r\nPROXY-AUTHORIZATION: x\r\n":               true,
		"Host: a\r\nX-Connection: keep-alive\r\n":             false,
		"Host: a\r\nUpgradeX: 1\r\nTrailers: 1\r\n":           false,
		"": false,
	} {
		if got := rawHasHopHeader([]byte(raw)); got != want {
			t.Errorf("rawHasHopHeader(%q) = %v, want %v", raw, got, want)
		}
	}
}
