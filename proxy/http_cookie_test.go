package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// startCookieBackend serves its name, echoes the Cookie field it got in
// X-Seen-Cookie, and sets the Set-Cookie of the query's set parameter.
func startCookieBackend(t *testing.T, name string) *testBackend {
	return startHTTPBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Cookie", strings.Join(r.Header.Values("Cookie"), " | "))
		if v := r.URL.Query().Get("set"); v != "" {
			w.Header().Add("Set-Cookie", v)
		}
		if r.URL.Query().Get("lm") != "" {
			w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		}
		if v := r.URL.Query().Get("cc"); v != "" {
			w.Header().Set("Cache-Control", v)
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})
}

// cookieConfig is frontend fe before backend be with servers s1 to s3 of
// cookie values c1 to c3, with the given backend keys.
func cookieConfig(keys string) string {
	return `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
` + keys + `
    servers:
      - {name: s1, address: "{{s1}}", cookie: c1}
      - {name: s2, address: "{{s2}}", cookie: c2}
      - {name: s3, address: "{{s3}}", cookie: c3}
`
}

type cookieRig struct {
	p    *Proxy
	base string
	jar  *http.Client
}

func newCookieRig(t *testing.T, keys string) *cookieRig {
	t.Helper()
	bs := []*testBackend{startCookieBackend(t, "s1"), startCookieBackend(t, "s2"), startCookieBackend(t, "s3")}
	p := startProxy(t, cookieConfig(keys), bs...)
	jar, _ := cookiejar.New(nil)
	return &cookieRig{p: p, base: "http://" + frontendAddr(t, p, "fe"), jar: &http.Client{Timeout: 5 * time.Second, Jar: jar}}
}

// get makes a request with the jar and returns the server's name and the
// response.
func (r *cookieRig) get(t *testing.T, method, path string) (string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, r.base+path, nil)
	resp, err := r.jar.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp
}

func (r *cookieRig) state(name string) *balancer.Server { return r.p.Registry().Lookup("be", name) }

// A client with a cookie jar stays on the server it first reached for 100
// requests, is told once, and moves (and stays) when that server goes
// DOWN. indirect keeps the cookie from the servers.
func TestCookieInsertKeepsClientOnServer(t *testing.T) {
	r := newCookieRig(t, "    cookie: SRV insert indirect nocache")
	// A validator makes the response cacheable, and nocache then makes
	// it private (HAProxy leaves a response no cache would keep alone).
	first, resp := r.get(t, "GET", "/?lm=1")
	if got := resp.Header.Get("Set-Cookie"); got != "SRV=c"+first[1:]+"; path=/" {
		t.Fatalf("first response's Set-Cookie = %q, want SRV=c%s; path=/", got, first[1:])
	}
	if got := resp.Header.Get("Cache-Control"); got != "private" {
		t.Fatalf("nocache: Cache-Control = %q, want private", got)
	}
	for i := range 100 {
		srv, resp := r.get(t, "GET", "/")
		if srv != first {
			t.Fatalf("request %d went to %s, want %s", i, srv, first)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Fatalf("request %d with the right cookie got Set-Cookie %q", i, sc)
		}
		if seen := resp.Header.Get("X-Seen-Cookie"); strings.Contains(seen, "SRV=") {
			t.Fatalf("indirect: the server saw %q", seen)
		}
	}
	r.state(first).SetHealthy(false)
	moved, resp := r.get(t, "GET", "/")
	if moved == first {
		t.Fatalf("still sent to %s, which is DOWN", first)
	}
	if got := resp.Header.Get("Set-Cookie"); got != "SRV=c"+moved[1:]+"; path=/" {
		t.Fatalf("moved client's Set-Cookie = %q", got)
	}
	for i := range 20 {
		if srv, _ := r.get(t, "GET", "/"); srv != moved {
			t.Fatalf("after the move, request %d went to %s, want %s", i, srv, moved)
		}
	}
}

// Draining keeps persistent clients (as HAProxy's DRAIN); maintenance
// moves them unless option persist or force-persist says otherwise, and
// persist keeps a client on a DOWN server.
func TestCookieServerStates(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		admin      balancer.Admin
		down       bool
		header     string
		stays      bool
	}{
		{"drain", "    cookie: SRV insert", balancer.AdminDrain, false, "", true},
		{"maint", "    cookie: SRV insert", balancer.AdminMaint, false, "", false},
		{"down", "    cookie: SRV insert", balancer.AdminReady, true, "", false},
		{"down with option persist", "    cookie: SRV insert\n    option: {persist: true}", balancer.AdminReady, true, "", true},
		{"maint with option persist", "    cookie: SRV insert\n    option: {persist: true}", balancer.AdminMaint, false, "", true},
		{"force-persist matches", "    cookie: SRV insert\n    acl: {ops: [\"req.hdr(x-ops) -m found\"]}\n    force-persist: [\"if ops\"]", balancer.AdminMaint, false, "yes", true},
		{"force-persist does not match", "    cookie: SRV insert\n    acl: {ops: [\"req.hdr(x-ops) -m found\"]}\n    force-persist: [\"if ops\"]", balancer.AdminMaint, false, "", false},
		{"ignore-persist wins", "    cookie: SRV insert\n    option: {persist: true}\n    force-persist: [\"if { req.hdr(x-ops) -m found }\"]\n    ignore-persist: [\"if { req.hdr(x-ops) -m found }\"]", balancer.AdminMaint, false, "yes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCookieRig(t, tc.keys)
			first, _ := r.get(t, "GET", "/")
			st := r.state(first)
			st.SetAdmin(tc.admin)
			if tc.down {
				st.SetHealthy(false)
			}
			for i := range 10 {
				req, _ := http.NewRequest("GET", r.base+"/", nil)
				if tc.header != "" {
					req.Header.Set("X-Ops", tc.header)
				}
				resp, err := r.jar.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if stayed := string(body) == first; stayed != tc.stays {
					t.Fatalf("request %d went to %s (first %s); want staying %v", i, body, first, tc.stays)
				}
			}
		})
	}
}

// ignore-persist: the cookie is not used and none is set.
func TestCookieIgnorePersist(t *testing.T) {
	r := newCookieRig(t, "    cookie: SRV insert\n    ignore-persist: [\"if { path_beg /static }\"]")
	r.get(t, "GET", "/")
	seen := map[string]bool{}
	for range 6 {
		srv, resp := r.get(t, "GET", "/static/x")
		seen[srv] = true
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Fatalf("ignored persistence set %q", sc)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("ignore-persist: requests reached %v, want all three servers in turn", seen)
	}
}

// Without indirect the server sees the cookie; postonly inserts only in
// a response to POST; a server without a value gets the deletion.
func TestCookieInsertOptions(t *testing.T) {
	r := newCookieRig(t, "    cookie: SRV insert postonly httponly secure domain .example.com attr SameSite=Lax")
	_, resp := r.get(t, "GET", "/")
	if sc := resp.Header.Get("Set-Cookie"); sc != "" {
		t.Fatalf("postonly: a GET got %q", sc)
	}
	srv, resp := r.get(t, "POST", "/")
	want := "SRV=c" + srv[1:] + "; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax"
	if sc := resp.Header.Get("Set-Cookie"); sc != want {
		t.Fatalf("Set-Cookie = %q, want %q", sc, want)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "" {
		t.Fatalf("without nocache: Cache-Control %q", cc)
	}
	// The jar keeps a Secure cookie off plain http; send it by hand.
	req, _ := http.NewRequest("GET", r.base+"/", nil)
	req.Header.Set("Cookie", "a=1; SRV=c"+srv[1:]+"; b=2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != srv || !strings.Contains(resp.Header.Get("X-Seen-Cookie"), "SRV=c"+srv[1:]) {
		t.Fatalf("without indirect: went to %s, server saw %q", body, resp.Header.Get("X-Seen-Cookie"))
	}
}

// prefix: the server's own cookie goes out as VALUE~original and comes
// back to it without the prefix; rewrite: its value becomes the server's.
func TestCookiePrefixAndRewrite(t *testing.T) {
	r := newCookieRig(t, "    cookie: JSESSIONID prefix")
	srv, resp := r.get(t, "GET", "/?set=JSESSIONID%3Dabc%3B%20Path%3D%2F")
	if sc := resp.Header.Get("Set-Cookie"); sc != "JSESSIONID=c"+srv[1:]+"~abc; Path=/" {
		t.Fatalf("prefix: Set-Cookie = %q", sc)
	}
	for range 5 {
		again, resp := r.get(t, "GET", "/")
		if again != srv {
			t.Fatalf("prefix: went to %s, want %s", again, srv)
		}
		if seen := resp.Header.Get("X-Seen-Cookie"); seen != "JSESSIONID=abc" {
			t.Fatalf("prefix: server saw %q, want JSESSIONID=abc", seen)
		}
	}

	r = newCookieRig(t, "    cookie: SRV rewrite")
	srv, resp = r.get(t, "GET", "/?set=SRV%3Dxyz%3B%20HttpOnly")
	if sc := resp.Header.Get("Set-Cookie"); sc != "SRV=c"+srv[1:]+"; HttpOnly" {
		t.Fatalf("rewrite: Set-Cookie = %q", sc)
	}
	for range 5 {
		if again, _ := r.get(t, "GET", "/"); again != srv {
			t.Fatalf("rewrite: went to %s, want %s", again, srv)
		}
	}
}

// maxidle: the cookie carries its last-seen date; a stale one is expired
// and the client is balanced again.
func TestCookieMaxIdle(t *testing.T) {
	r := newCookieRig(t, "    cookie: SRV insert maxidle 1h")
	srv, resp := r.get(t, "GET", "/")
	sc := resp.Header.Get("Set-Cookie")
	val, _, _ := strings.Cut(strings.TrimPrefix(sc, "SRV="), ";")
	id, date, ok := strings.Cut(val, "|")
	if !ok || id != "c"+srv[1:] || len(date) != 5 {
		t.Fatalf("maxidle: Set-Cookie = %q, want SRV=c%s|DATE", sc, srv[1:])
	}
	if d := cookieDate([]byte(date)) << 2; d < time.Now().Unix()-8 || d > time.Now().Unix()+8 {
		t.Fatalf("date %s decodes to %d, now is %d", date, d, time.Now().Unix())
	}
	stale := string(appendCookieDate(nil, (time.Now().Unix()-7200)>>2))
	req, _ := http.NewRequest("GET", r.base+"/", nil)
	req.Header.Set("Cookie", "SRV=c"+srv[1:]+"|"+stale)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(got, "SRV=c") || strings.Contains(got, stale) {
		t.Fatalf("an expired cookie got Set-Cookie %q, want a fresh one", got)
	}
}

// A server without a cookie value tells an inserted cookie's client to
// forget it, as HAProxy does.
func TestCookieServerWithoutValue(t *testing.T) {
	b := startCookieBackend(t, "s1")
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    cookie: SRV insert
    servers: [{name: s1, address: "{{s1}}"}]
`, b)
	resp, err := http.Get("http://" + frontendAddr(t, p, "fe") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Set-Cookie"); got != "SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/" {
		t.Fatalf("Set-Cookie = %q", got)
	}
}

// A request whose cookie is right goes through without allocating, its
// cookie stripped (indirect), with force-persist and ignore-persist
// conditions evaluated on the way (named ACLs and an anonymous one).
func TestCookieForwardAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if ctx.Request.Header.Cookie("SRV") != nil {
			ctx.SetStatusCode(500)
		}
		ctx.SetBodyString("hello")
	}}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Shutdown() })
	cfg, err := config.Parse("rig.yaml", []byte(`
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    cookie: SRV insert indirect nocache
    acl: {admin: "src 10.0.0.0/8", extra: "path_beg /x"}
    force-persist: ["if admin extra"]
    ignore-persist: ["if { path_end .css }"]
    servers:
      - {name: a, address: "`+ln.Addr().String()+`", cookie: a, maxconn: 100}
      - {name: b, address: "`+ln.Addr().String()+`", cookie: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := New(zap.NewNop())
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	fe := p.Snapshot().frontends[0]
	ctx := &fasthttp.RequestCtx{}
	var req fasthttp.Request
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	forward := func() {
		ctx.Request.Reset()
		ctx.Request.SetRequestURI("/v3/auth/tokens")
		ctx.Request.Header.SetHost("keystone.example")
		ctx.Request.Header.Set("Cookie", "other=1; SRV=b")
		ctx.Request.URI()
		ctx.Response.Reset()
		fe.handleHTTP(ctx)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Header.PeekCookie("SRV")) != 0 {
			t.Fatalf("forward: %d %q, Set-Cookie %q", ctx.Response.StatusCode(), ctx.Response.Body(), ctx.Response.Header.PeekCookie("SRV"))
		}
	}
	for range 10 {
		forward()
	}
	served := p.Registry().Lookup("be", "b").TotalConns.Load()
	if n := testing.AllocsPerRun(500, forward); n != 0 {
		t.Fatalf("a request with a valid cookie allocates %.1f times, want 0", n)
	}
	if got := p.Registry().Lookup("be", "b").TotalConns.Load() - served; got != 501 {
		t.Fatalf("server b took %d of 501 requests", got)
	}
}

// A persistent request for a full server waits in that server's queue
// rather than going elsewhere; when that queue is full too, option
// redispatch moves it to another server, and without it the answer is
// 503, as in HAProxy.
func TestCookieQueuesOnItsServer(t *testing.T) {
	for _, redispatch := range []bool{true, false} {
		t.Run(map[bool]string{true: "redispatch", false: "no redispatch"}[redispatch], func(t *testing.T) {
			arrived, release := make(chan struct{}, 4), make(chan struct{})
			s1 := startHTTPBackend(t, "s1", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hold" {
					arrived <- struct{}{}
					<-release
				}
				io.WriteString(w, "s1")
			})
			s2 := startCookieBackend(t, "s2")
			p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, queue: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    cookie: SRV insert indirect
    option: {redispatch: `+map[bool]string{true: "true", false: "false"}[redispatch]+`}
    servers:
      - {name: s1, address: "{{s1}}", cookie: c1, maxconn: 1, maxqueue: 1}
      - {name: s2, address: "{{s2}}", cookie: c2}
`, s1, s2)
			base := "http://" + frontendAddr(t, p, "fe")
			get := func(path string) (string, int) {
				req, _ := http.NewRequest("GET", base+path, nil)
				req.Header.Set("Cookie", "SRV=c1")
				resp, err := httpClient().Do(req)
				if err != nil {
					return err.Error(), 0
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return string(body), resp.StatusCode
			}
			held := make(chan string, 1)
			go func() { body, _ := get("/hold"); held <- body }()
			<-arrived
			queued := make(chan string, 1)
			go func() { body, _ := get("/"); queued <- body }()
			waitFor(t, 2*time.Second, "a request queued on s1", func() bool {
				n, _ := p.Snapshot().backendsByName["be"].queue.lengths(0)
				return n == 1
			})
			body, code := get("/") // s1's queue is full
			switch {
			case redispatch && (code != 200 || body != "s2"):
				t.Fatalf("with s1 and its queue full: %d %q, want s2", code, body)
			case !redispatch && code != 503:
				t.Fatalf("with s1 and its queue full and no redispatch: %d %q, want 503", code, body)
			}
			close(release)
			if got := <-held; got != "s1" {
				t.Fatalf("held request: %q", got)
			}
			if got := <-queued; got != "s1" {
				t.Fatalf("the queued persistent request went to %q, want s1", got)
			}
		})
	}
}

// The access line's last two termination letters are HAProxy's cookie
// letters.
func TestCookieLogLetters(t *testing.T) {
	s1, s2 := startCookieBackend(t, "s1"), startCookieBackend(t, "s2")
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {httplog: true}}
backends:
  be:
    cookie: SRV insert indirect
    servers:
      - {name: s1, address: "{{s1}}", cookie: c1}
      - {name: s2, address: "{{s2}}", cookie: c2}
`, s1, s2)); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	addr := frontendAddr(t, p, "fe")
	rawCookieGet(t, addr, "GET", "/", "")
	rawCookieGet(t, addr, "GET", "/", "SRV=c1")
	rawCookieGet(t, addr, "GET", "/", "SRV=zz")
	p.Registry().Lookup("be", "s1").SetHealthy(false)
	rawCookieGet(t, addr, "GET", "/", "SRV=c1")
	waitFor(t, 2*time.Second, "four access lines", func() bool { return logs.Len() >= 4 })
	var got []string
	for _, e := range logs.All() {
		if m := haloTerm.FindStringSubmatch(e.Message); m != nil {
			got = append(got, m[1]+" "+m[2])
		}
	}
	if want := "s1 --NI,s1 --VN,s2 --II,s2 --DI"; strings.Join(got, ",") != want {
		t.Fatalf("log letters %q, want %q", strings.Join(got, ","), want)
	}
}

// Whatever a client sends after the server's value, reading its dates
// neither panics nor reads a date from fewer than five digits.
func FuzzCookieDates(f *testing.F) {
	for _, s := range []string{"", "AAAAA", "BBBBB|CCCCC", "|", "abcd|efghi", "+/+/+|", "ZZZZZ|ZZZZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		last, first := cookieDates([]byte(s))
		if last < 0 || first < 0 || last%4 != 0 || first%4 != 0 {
			t.Fatalf("cookieDates(%q) = %d, %d", s, last, first)
		}
		if len(s) < 5 && last != 0 {
			t.Fatalf("cookieDates(%q) read a date from %d bytes", s, len(s))
		}
	})
}
