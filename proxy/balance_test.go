package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func threeHTTP(t *testing.T) []*testBackend {
	return []*testBackend{startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil), startHTTPBackend(t, "c", nil)}
}

func httpBackendConfig(balance, extra string) string {
	return `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: ` + balance + `
` + extra + `
    servers:
      - {name: a, address: "{{a}}"}
      - {name: b, address: "{{b}}"}
      - {name: c, address: "{{c}}"}
`
}

func getWith(t *testing.T, url string, header map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// TestHashAlgorithmsKeepAKeyOnOneServer runs each HTTP hashing algorithm
// against three real servers: a key always reaches the same server, keys
// spread over several servers, and a request without the key is balanced
// round robin.
func TestHashAlgorithmsKeepAKeyOnOneServer(t *testing.T) {
	cases := []struct {
		balance string
		request func(k int) (path string, header map[string]string)
		keyless func() (string, map[string]string)
	}{
		{"uri", func(k int) (string, map[string]string) { return fmt.Sprintf("/image/%d?x=%d", k, k*7+1), nil }, nil},
		{"uri depth 2", func(k int) (string, map[string]string) {
			return fmt.Sprintf("/v2/%d/images/%d", k, time.Now().UnixNano()), nil // only /v2/K counts
		}, nil},
		{"url_param tenant", func(k int) (string, map[string]string) {
			return fmt.Sprintf("/servers?tenant=t%d&page=%d", k, time.Now().UnixNano()), nil
		}, func() (string, map[string]string) { return "/servers?page=1", nil }},
		{"hdr(X-Auth-Project) ", func(k int) (string, map[string]string) {
			return "/", map[string]string{"X-Auth-Project": fmt.Sprint("project-", k)}
		}, func() (string, map[string]string) { return "/", nil }},
		{"hdr(Host) use_domain_only", func(k int) (string, map[string]string) {
			// Only the label before the top-level domain counts.
			return "/", map[string]string{"Host": fmt.Sprintf("api%d.tenant%d.example:%d", time.Now().UnixNano()%1000, k, 8000+k)}
		}, nil},
		{"source", func(k int) (string, map[string]string) { return fmt.Sprint("/", k), nil }, nil},
	}
	for _, hashType := range []string{"map-based", "consistent"} {
		for _, tc := range cases {
			t.Run(hashType+"/"+tc.balance, func(t *testing.T) {
				bs := threeHTTP(t)
				p := startProxy(t, httpBackendConfig(tc.balance, "    hash-type: "+hashType), bs...)
				base := "http://" + frontendAddr(t, p, "fe")
				seen := map[string]bool{}
				for k := range 12 {
					path, h := tc.request(k)
					first := getWith(t, base+path, h)
					seen[first] = true
					for range 4 {
						path, h := tc.request(k)
						if got := getWith(t, base+path, h); got != first {
							t.Fatalf("key %d went to %s, then to %s", k, first, got)
						}
					}
				}
				if tc.balance == "source" {
					if len(seen) != 1 {
						t.Fatalf("one client address reached %d servers", len(seen))
					}
				} else if len(seen) < 2 {
					t.Fatalf("12 keys all went to %v", seen)
				}
				if tc.keyless != nil {
					rotation := map[string]bool{}
					for range 3 {
						path, h := tc.keyless()
						rotation[getWith(t, base+path, h)] = true
					}
					if len(rotation) != 3 {
						t.Fatalf("requests without the key reached %v, want all three in turn", rotation)
					}
				}
			})
		}
	}
}

func TestSourceHashInTCPMode(t *testing.T) {
	a, b, c := startTCPBackend(t, "a"), startTCPBackend(t, "b"), startTCPBackend(t, "c")
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: source
    hash-type: consistent
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}, {name: c, address: "{{c}}"}]
`, a, b, c)
	addr := frontendAddr(t, p, "fe")
	bySource := map[string]string{}
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		for range 4 {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(conn, "hi")
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSpace(line)
			if prev, ok := bySource[src]; ok && prev != name {
				t.Fatalf("client %s went to %s, then %s", src, prev, name)
			}
			bySource[src] = name
		}
	}
	servers := map[string]bool{}
	for _, s := range bySource {
		servers[s] = true
	}
	if len(servers) < 2 {
		t.Fatalf("six client addresses all went to %v", servers)
	}
}

// holdTCP opens a session through addr and returns the server's name and
// the open connection.
func holdTCP(t *testing.T, addr string) (string, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(conn, "hi")
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("session through %s: %v", addr, err)
	}
	return strings.TrimSpace(line), conn, r
}

func TestFirstFillsServersInOrder(t *testing.T) {
	a, b, c := startTCPBackend(t, "a"), startTCPBackend(t, "b"), startTCPBackend(t, "c")
	p := startProxy(t, `
defaults: {timeout: {connect: 2s, queue: 2s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: first
    default-server: {maxconn: 2}
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}, {name: c, address: "{{c}}"}]
`, a, b, c)
	addr := frontendAddr(t, p, "fe")
	var got []string
	var conns []net.Conn
	for range 5 {
		name, conn, _ := holdTCP(t, addr)
		got = append(got, name)
		conns = append(conns, conn)
	}
	if fmt.Sprint(got) != "[a a b b c]" {
		t.Fatalf("first filled %v, want [a a b b c]", got)
	}
	conns[0].Close()
	st := p.Registry().Lookup("be", "a")
	waitFor(t, 2*time.Second, "a's slot to free", func() bool { return st.Served() == 1 })
	if name, _, _ := holdTCP(t, addr); name != "a" {
		t.Fatalf("after a session on a ended, the next went to %s, want a", name)
	}
}

func TestAllBackupsShareTheLoad(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("allbackups=", all), func(t *testing.T) {
			p1, b1, b2 := startHTTPBackend(t, "p1", nil), startHTTPBackend(t, "b1", nil), startHTTPBackend(t, "b2", nil)
			p := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    option: {allbackups: %v}
    servers:
      - {name: p1, address: "{{p1}}"}
      - {name: b1, address: "{{b1}}", backup: true}
      - {name: b2, address: "{{b2}}", backup: true, weight: 3}
`, all), p1, b1, b2)
			url := "http://" + frontendAddr(t, p, "fe") + "/"
			ask := func() (string, error) { body, _, err := httpGet(httpClient(), url); return body, err }
			if got := tally(t, ask, 20); got["p1"] != 20 {
				t.Fatalf("primary up: %v", got)
			}
			p.Registry().Lookup("be", "p1").SetAdmin(balancer.AdminMaint)
			got := tally(t, ask, 40)
			want := map[string]int{"b1": 40}
			if all {
				want = map[string]int{"b1": 10, "b2": 30}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("primary in maintenance: %v, want %v", got, want)
			}
		})
	}
}

// TestDrainAndMaint: a draining server keeps its established session but
// gets no new one; in maintenance it gets nothing new either; ready again,
// it takes its share.
func TestDrainAndMaint(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: leastconn
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a, b)
	addr := frontendAddr(t, p, "fe")
	var held net.Conn
	var heldReader *bufio.Reader
	for held == nil {
		name, conn, r := holdTCP(t, addr)
		if name == "a" {
			held, heldReader = conn, r
		} else {
			conn.Close()
		}
	}
	sa := p.Registry().Lookup("be", "a")
	for _, state := range []balancer.Admin{balancer.AdminDrain, balancer.AdminMaint} {
		sa.SetAdmin(state)
		for range 20 {
			if name, err := tcpAsk(addr); err != nil || name != "b" {
				t.Fatalf("a in %v: new session went to %q (%v), want b", state, name, err)
			}
		}
		fmt.Fprintln(held, "still there?")
		if line, err := heldReader.ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
			t.Fatalf("a in %v: the established session answered %q, %v", state, line, err)
		}
	}
	sa.SetAdmin(balancer.AdminReady)
	got := tally(t, func() (string, error) { return tcpAsk(addr) }, 20)
	if got["a"] == 0 {
		t.Fatalf("a ready again: %v", got)
	}
}

// TestSlowStartRampsTraffic: a server back from maintenance with slowstart
// 2s gets a small share at first and its full share after the period.
func TestSlowStartRampsTraffic(t *testing.T) {
	a, b := startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    default-server: {weight: 100, slowstart: 2s}
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a, b)
	url := "http://" + frontendAddr(t, p, "fe") + "/"
	client := httpClient()
	ask := func() (string, error) { body, _, err := httpGet(client, url); return body, err }
	if got := tally(t, ask, 100); got["a"] != 50 {
		t.Fatalf("before: %v, want 50/50 (no slow start for servers up since start)", got)
	}
	sa := p.Registry().Lookup("be", "a")
	sa.SetAdmin(balancer.AdminMaint)
	sa.SetAdmin(balancer.AdminReady)
	early := tally(t, ask, 100)
	time.Sleep(2200 * time.Millisecond)
	late := tally(t, ask, 100)
	t.Logf("share of a in the first 100 requests after its return: %d%%; after 2.2 s: %d%%", early["a"], late["a"])
	if early["a"] > 20 {
		t.Fatalf("right after its return a took %d of 100 requests, want a small share", early["a"])
	}
	if late["a"] != 50 {
		t.Fatalf("after the slow start a took %d of 100, want 50", late["a"])
	}
}

// blockingBackend answers each request once released (or at once for
// requests without X-Hold), recording the order requests arrived in.
type blockingBackend struct {
	*testBackend
	release chan struct{}
	mu      sync.Mutex
	order   []string
	active  atomic.Int32
}

func startBlockingBackend(t *testing.T, name string) *blockingBackend {
	bb := &blockingBackend{release: make(chan struct{}, 100)}
	bb.testBackend = startHTTPBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		bb.active.Add(1)
		defer bb.active.Add(-1)
		bb.mu.Lock()
		bb.order = append(bb.order, r.URL.Query().Get("seq"))
		bb.mu.Unlock()
		if r.Header.Get("X-Hold") != "" {
			select {
			case <-bb.release:
			case <-time.After(10 * time.Second):
			}
		}
		io.WriteString(w, name)
	})
	return bb
}

// seen returns the requests' seq values in arrival order.
func (bb *blockingBackend) seen() []string {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	return append([]string(nil), bb.order...)
}

func queueConfig(queueTimeout string, server string) string {
	return `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s, queue: ` + queueTimeout + `}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {httplog: true}}
backends:
  be:
    servers: [` + server + `]
`
}

func getAsync(url string, hold bool) chan int {
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		if hold {
			req.Header.Set("X-Hold", "1")
		}
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			done <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

// queueRig is server a with maxconn 1 behind a queue, busy with one held
// request, so that the next ones queue.
type queueRig struct {
	a    *blockingBackend
	p    *Proxy
	base string
	be   *backend
	held chan int // the held request's status, once released
}

func startQueueRig(t *testing.T, queueTimeout, server string) *queueRig {
	t.Helper()
	a := startBlockingBackend(t, "a")
	p := startProxy(t, queueConfig(queueTimeout, server), a.testBackend)
	r := &queueRig{a: a, p: p, base: "http://" + frontendAddr(t, p, "fe"), be: p.Snapshot().backendsByName["be"]}
	r.held = getAsync(r.base+"/?seq=held", true)
	waitFor(t, 2*time.Second, "the held request at the server", func() bool { return a.active.Load() == 1 })
	return r
}

// waitQueued waits until n requests wait in the queue.
func (r *queueRig) waitQueued(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 2*time.Second, fmt.Sprintf("%d queued requests", n), func() bool { return r.be.queue.waiting.Load() == int32(n) })
}

// TestQueueTimeoutGives503: with the only server at maxconn, a request
// waits in the queue for timeout queue and then gets 503; once the server
// is free again requests pass.
func TestQueueTimeoutGives503(t *testing.T) {
	r := startQueueRig(t, "300ms", `{name: a, address: "{{a}}", maxconn: 1}`)
	start := time.Now()
	_, status, err := httpGet(httpClient(), r.base+"/?seq=queued")
	waited := time.Since(start)
	if err != nil || status != 503 {
		t.Fatalf("queued request: %d, %v; want 503", status, err)
	}
	t.Logf("queued request answered 503 after %v (timeout queue 300ms)", waited.Round(time.Millisecond))
	if waited < 300*time.Millisecond || waited > 1500*time.Millisecond {
		t.Fatalf("503 after %v, want about 300ms", waited)
	}
	if seen := r.a.seen(); r.a.active.Load() != 1 || len(seen) != 1 {
		t.Fatalf("the server saw %v; the queued request must never have reached it", seen)
	}
	r.a.release <- struct{}{}
	if s := <-r.held; s != 200 {
		t.Fatalf("held request: %d", s)
	}
	if body, status, err := httpGet(httpClient(), r.base+"/?seq=after"); err != nil || status != 200 || body != "a" {
		t.Fatalf("after the server freed: %q %d %v", body, status, err)
	}
}

// TestQueueIsFIFO: requests queued one after another reach the server in
// the order they arrived as slots free one at a time.
func TestQueueIsFIFO(t *testing.T) {
	r := startQueueRig(t, "10s", `{name: a, address: "{{a}}", maxconn: 1}`)
	done := []chan int{r.held}
	for k := 1; k <= 6; k++ {
		done = append(done, getAsync(fmt.Sprintf("%s/?seq=%d", r.base, k), true))
		r.waitQueued(t, k)
	}
	for k := range done {
		r.a.release <- struct{}{}
		if s := <-done[k]; s != 200 {
			t.Fatalf("request %d: %d", k, s)
		}
	}
	if got := strings.Join(r.a.seen(), ","); got != "held,1,2,3,4,5,6" {
		t.Fatalf("server saw requests in order %s, want held,1,2,3,4,5,6", got)
	}
}

// TestMaxQueueRefusesAtOnce: with the queue at maxqueue, a further request
// gets 503 at once instead of waiting.
func TestMaxQueueRefusesAtOnce(t *testing.T) {
	r := startQueueRig(t, "10s", `{name: a, address: "{{a}}", maxconn: 1, maxqueue: 1}`)
	queued := getAsync(r.base+"/?seq=1", true)
	r.waitQueued(t, 1)
	start := time.Now()
	if _, status, _ := httpGet(httpClient(), r.base+"/?seq=2"); status != 503 {
		t.Fatalf("third request with the queue full: %d, want 503", status)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("503 took %v, want at once", d)
	}
	r.a.release <- struct{}{}
	r.a.release <- struct{}{}
	if <-r.held != 200 || <-queued != 200 {
		t.Fatal("the held and the queued request did not both succeed")
	}
}

// TestQueueTimeoutClosesTCP: in mode tcp a connection that waited its
// timeout queue is closed without reaching a server.
func TestQueueTimeoutClosesTCP(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, `
defaults: {timeout: {connect: 2s, queue: 300ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}", maxconn: 1}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	name, held, _ := holdTCP(t, addr)
	if name != "a" {
		t.Fatal(name)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintln(conn, "hi")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(make([]byte, 64))
	waited := time.Since(start)
	if n != 0 || err == nil {
		t.Fatalf("queued connection read %d bytes, %v; want a close", n, err)
	}
	t.Logf("queued connection closed after %v (timeout queue 300ms): %v", waited.Round(time.Millisecond), err)
	if waited < 300*time.Millisecond || waited > 1500*time.Millisecond {
		t.Fatalf("closed after %v, want about 300ms", waited)
	}
	held.Close()
	st := p.Registry().Lookup("be", "a")
	waitFor(t, 2*time.Second, "a's slot to free", func() bool { return st.Served() == 0 })
	if name, err := tcpAsk(addr); err != nil || name != "a" {
		t.Fatalf("after the slot freed: %q, %v", name, err)
	}
}

// TestLeastConnAvoidsTheBusyServer: while one server works on a long
// request, leastconn sends every short one to the other, where roundrobin
// would alternate.
func TestLeastConnAvoidsTheBusyServer(t *testing.T) {
	for _, alg := range []string{"leastconn", "roundrobin"} {
		t.Run(alg, func(t *testing.T) {
			a, b := startBlockingBackend(t, "a"), startBlockingBackend(t, "b")
			p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: `+alg+`
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a.testBackend, b.testBackend)
			base := "http://" + frontendAddr(t, p, "fe")
			long := getAsync(base+"/?seq=long", true)
			waitFor(t, 2*time.Second, "the long request at a server", func() bool { return a.active.Load()+b.active.Load() == 1 })
			busy, idle := "a", "b"
			if b.active.Load() == 1 {
				busy, idle = "b", "a"
			}
			got := tally(t, func() (string, error) { body, _, err := httpGet(httpClient(), base+"/?seq=short"); return body, err }, 10)
			a.release <- struct{}{}
			b.release <- struct{}{}
			<-long
			if alg == "leastconn" && got[idle] != 10 {
				t.Fatalf("leastconn with %s busy: %v, want all 10 on %s", busy, got, idle)
			}
			if alg == "roundrobin" && got[busy] == 0 {
				t.Fatalf("roundrobin skipped the busy server: %v", got)
			}
		})
	}
}

func TestRuntimeWeight(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	yaml := `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}", weight: 10}, {name: b, address: "{{b}}", weight: 10}]}
`
	p := startProxy(t, yaml, a, b)
	addr := frontendAddr(t, p, "fe")
	ask := func() (string, error) { return tcpAsk(addr) }
	if err := p.SetWeight("be", "a", 300, true); err != nil { // 300% of 10
		t.Fatal(err)
	}
	if got := tally(t, ask, 40); got["a"] != 30 || got["b"] != 10 {
		t.Fatalf("a at 30, b at 10: %v", got)
	}
	if err := p.SetWeight("be", "a", 0, false); err != nil {
		t.Fatal(err)
	}
	if got := tally(t, ask, 10); got["b"] != 10 {
		t.Fatalf("a at weight 0: %v", got)
	}
	// A reload that leaves a's weight alone keeps the runtime weight.
	if err := p.Apply(parseConfig(t, yaml, a, b)); err != nil {
		t.Fatal(err)
	}
	if got := tally(t, func() (string, error) { return tcpAsk(frontendAddr(t, p, "fe")) }, 10); got["b"] != 10 {
		t.Fatalf("after a reload, a at runtime weight 0: %v", got)
	}
	for _, bad := range []struct {
		be, srv string
		w       int
	}{{"be", "a", 257}, {"be", "nope", 1}, {"nope", "a", 1}} {
		if err := p.SetWeight(bad.be, bad.srv, bad.w, false); err == nil {
			t.Errorf("SetWeight(%s/%s, %d) accepted", bad.be, bad.srv, bad.w)
		}
	}
}

func TestURIPart(t *testing.T) {
	for _, tc := range []struct {
		balance, uri, want string
	}{
		{"uri", "/a/b/c?x=1", "/a/b/c"},
		{"uri whole", "/a/b/c?x=1", "/a/b/c?x=1"},
		{"uri depth 1", "/a/b/c?x=1", "/a"},
		{"uri depth 2", "/a/b/c?x=1", "/a/b"},
		{"uri depth 5", "/a/b?x=/y/z", "/a/b"},
		{"uri len 4", "/abcdef", "/abc"},
		{"uri len 4 whole", "/a?bcdef", "/a?b"},
		{"uri", "http://api.example:5000/v3/auth?x", "http://api.example:5000/v3/auth"},
		{"uri path-only", "http://api.example:5000/v3/auth?x", "/v3/auth"},
		{"uri path-only depth 1", "https://h/v3/auth", "/v3"},
		{"uri path-only", "http://h", ""},
		{"uri path-only", "/rel/a://b", "/rel/a://b"},
	} {
		b, err := config.ParseBalance(tc.balance)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(uriPart(&b, []byte(tc.uri))); got != tc.want {
			t.Errorf("%s of %q = %q, want %q", tc.balance, tc.uri, got, tc.want)
		}
	}
}

func TestMainDomain(t *testing.T) {
	for in, want := range map[string]string{
		"haproxy.1wt.eu":      "1wt",
		"haproxy.1wt.eu:8080": "1wt",
		"1wt.eu":              "1wt",
		"localhost:8080":      "localhost:8080",
		"a.b.c.example.org":   "example",
		"":                    "",
	} {
		if got := string(mainDomain([]byte(in))); got != want {
			t.Errorf("mainDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzURIPart: whatever a client sends, the hashed part is a piece of the
// URI and respects len.
func FuzzURIPart(f *testing.F) {
	for _, s := range []string{"/a/b?c", "http://h:1/p?q", "://", "/", "", "?", "http://", "a://b/c/d/e?f"} {
		f.Add(s, 3, 2, true, true)
	}
	f.Fuzz(func(t *testing.T, uri string, n, depth int, whole, pathOnly bool) {
		b := config.Balance{Algorithm: "uri", URILen: max(n, 0) % 64, URIDepth: max(depth, 0) % 8, URIWhole: whole, URIPathOnly: pathOnly}
		got := string(uriPart(&b, []byte(uri)))
		if !strings.Contains(uri, got) {
			t.Fatalf("%q is not part of %q", got, uri)
		}
		if b.URILen > 0 && len(got) > b.URILen {
			t.Fatalf("%q longer than len %d", got, b.URILen)
		}
		if !whole && strings.Contains(got, "?") {
			t.Fatalf("%q has a query without whole", got)
		}
		if d := mainDomain([]byte(uri)); !strings.Contains(uri, string(d)) || strings.Contains(string(d), ".") {
			t.Fatalf("mainDomain(%q) = %q", uri, d)
		}
	})
}

// TestQueuedForAServerThatLeaves: a request queued for the server its key
// maps to picks again when that server goes into maintenance, and is served
// by another one instead of waiting out its timeout.
func TestQueuedForAServerThatLeaves(t *testing.T) {
	a, b := startBlockingBackend(t, "a"), startBlockingBackend(t, "b")
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s, queue: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: url_param id
    hash-type: consistent
    default-server: {maxconn: 1}
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a.testBackend, b.testBackend)
	base := "http://" + frontendAddr(t, p, "fe")
	be := p.Snapshot().backendsByName["be"]
	held := getAsync(base+"/?id=42&seq=held", true)
	waitFor(t, 2*time.Second, "the held request at a server", func() bool { return a.active.Load()+b.active.Load() == 1 })
	target, other := "a", b
	if b.active.Load() == 1 {
		target, other = "b", a
	}
	queued := getAsync(base+"/?id=42&seq=queued", false)
	waitFor(t, 2*time.Second, "the second request queued for "+target, func() bool { return be.queue.waiting.Load() == 1 })
	start := time.Now()
	p.Registry().Lookup("be", target).SetAdmin(balancer.AdminMaint)
	if s := <-queued; s != 200 {
		t.Fatalf("queued request: %d", s)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("served %v after its server left, want at once", d)
	}
	if seen := other.seen(); len(seen) != 1 || seen[0] != "queued" {
		t.Fatalf("the other server saw %v, want the queued request", seen)
	}
	a.release <- struct{}{}
	b.release <- struct{}{}
	<-held
}

// TestQueuedWhenEveryServerLeaves: a queued request gets its 503 as soon as
// no server is left, not at its timeout.
func TestQueuedWhenEveryServerLeaves(t *testing.T) {
	r := startQueueRig(t, "10s", `{name: a, address: "{{a}}", maxconn: 1}`)
	queued := getAsync(r.base+"/?seq=queued", false)
	r.waitQueued(t, 1)
	start := time.Now()
	r.p.Registry().Lookup("be", "a").SetAdmin(balancer.AdminMaint)
	if s := <-queued; s != 503 {
		t.Fatalf("queued request with no server left: %d, want 503", s)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("503 came %v after the last server left, want at once", d)
	}
	r.a.release <- struct{}{}
	if s := <-r.held; s != 200 {
		t.Fatalf("the held request, on a server put in maintenance: %d, want 200", s)
	}
}

// TestAccessLogQueueTime: the httplog line of a request that waited for a
// slot carries the wait as Tw; one whose wait ran out has Tw -1, status 503
// and termination sQ.
func TestAccessLogQueueTime(t *testing.T) {
	a := startBlockingBackend(t, "a")
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	if err := p.Apply(parseConfig(t, queueConfig("400ms", `{name: a, address: "{{a}}", maxconn: 1}`), a.testBackend)); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	base := "http://" + frontendAddr(t, p, "fe")
	be := p.Snapshot().backendsByName["be"]

	held := getAsync(base+"/?seq=held", true)
	waitFor(t, 2*time.Second, "the held request at the server", func() bool { return a.active.Load() == 1 })
	queued := getAsync(base+"/?seq=waits", false)
	waitFor(t, 2*time.Second, "a queued request", func() bool { return be.queue.waiting.Load() == 1 })
	time.Sleep(150 * time.Millisecond)
	a.release <- struct{}{}
	if <-held != 200 || <-queued != 200 {
		t.Fatal("held or queued request failed")
	}
	held = getAsync(base+"/?seq=held2", true)
	waitFor(t, 2*time.Second, "the second held request at the server", func() bool { return a.active.Load() == 1 })
	if _, status, _ := httpGet(httpClient(), base+"/?seq=late"); status != 503 {
		t.Fatalf("request past timeout queue: %d", status)
	}
	a.release <- struct{}{}
	<-held
	waitFor(t, 2*time.Second, "four access lines", func() bool { return logs.FilterLoggerName("access").Len() == 4 })
	var waited, late string
	for _, e := range logs.FilterLoggerName("access").All() {
		switch {
		case strings.Contains(e.Message, "seq=waits"):
			waited = e.Message
		case strings.Contains(e.Message, "seq=late"):
			late = e.Message
		}
	}
	m := regexp.MustCompile(`\] fe be/a 0/(\d+)/`).FindStringSubmatch(waited)
	if m == nil {
		t.Fatalf("queued request's line %q has no Tw", waited)
	}
	if tw, _ := strconv.Atoi(m[1]); tw < 150 || tw > 1000 {
		t.Fatalf("queued request's Tw = %d ms, want about 150 (line %q)", tw, waited)
	}
	if !strings.Contains(late, "] fe be/<NOSRV> 0/-1/-1/-1/") || !strings.Contains(late, " 503 ") || !strings.Contains(late, " sQ-- ") {
		t.Fatalf("timed-out request's line %q lacks Tw -1, 503 or sQ--", late)
	}
	t.Logf("queued: %s", waited)
	t.Logf("timed out: %s", late)
}
