package proxy

import (
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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

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
