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
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Beyond a frontend's maxconn, new connections wait (in the kernel backlog,
// not refused) and are served as soon as a slot frees.
func TestFrontendMaxConnQueuesConnections(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", maxconn: 2, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection refused at maxconn: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	ask := func(c net.Conn, r *bufio.Reader, wait time.Duration) (string, error) {
		c.SetDeadline(time.Now().Add(wait))
		io.WriteString(c, "hi\n")
		return r.ReadString('\n')
	}
	c1, r1 := open()
	c2, r2 := open()
	for _, x := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		if _, err := ask(x.c, x.r, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c3, r3 := open() // accepted by the kernel, not yet by halo
	if line, err := ask(c3, r3, 300*time.Millisecond); err == nil {
		t.Fatalf("third connection served (%q) while maxconn 2 were busy", line)
	}
	if got := p.FrontendCounters("fe").CurConns.Load(); got != 2 {
		t.Fatalf("frontend current connections = %d, want 2", got)
	}
	c1.Close()
	c3.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := r3.ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
		t.Fatalf("waiting connection after a slot freed: %q, %v", line, err)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2)
	never := func() bool { return false }
	for i := range 2 {
		if !l.acquire(never) {
			t.Fatalf("could not take slot %d of 2", i+1)
		}
	}
	got := make(chan bool)
	go func() { got <- l.acquire(never) }()
	select {
	case <-got:
		t.Fatal("third acquire did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	l.release()
	if !<-got {
		t.Fatal("waiter did not get the freed slot")
	}
	l.setMax(3)
	if !l.acquire(never) {
		t.Fatal("raising the limit did not free a slot")
	}
	aborted := false
	go func() { got <- l.acquire(func() bool { return aborted }) }()
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	aborted = true
	l.mu.Unlock()
	l.wake()
	if <-got {
		t.Fatal("aborted acquire took a slot")
	}
	if l.current() != 3 {
		t.Fatalf("slots in use = %d, want 3", l.current())
	}

	// An accept loop backing off at the descriptor limit is woken by a
	// connection's release, never by another loop giving back the slot of
	// an accept that failed: two such loops would wake each other without
	// end.
	var freed endSignal
	l.freed = &freed
	woken := func(give func()) bool {
		done := make(chan struct{})
		go func() { freed.wait(2 * time.Second); close(done) }()
		waitFor(t, time.Second, "the accept loop to wait", freed.waiting.Load)
		start := time.Now()
		give()
		<-done
		return time.Since(start) < time.Second
	}
	if !woken(l.release) {
		t.Error("a released slot did not wake the waiting accept loop")
	}
	l.acquire(never)
	if woken(l.cancel) {
		t.Error("a cancelled slot woke the waiting accept loop")
	}
}

// Health checks go to the server's check port when one is set: the
// service port stays open, but the check port closing takes it DOWN.
func TestCheckPort(t *testing.T) {
	svc := startTCPBackend(t, "svc")
	chk, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := chk.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := chk.Addr().(*net.TCPAddr).Port
	p := startProxy(t, fmt.Sprintf(`
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: svc, address: "{{svc}}", check: true, port: %d, inter: 50ms, rise: 1, fall: 2}
`, port), svc)
	st := p.Registry().Lookup("be", "svc")
	time.Sleep(200 * time.Millisecond)
	if !st.Up() {
		t.Fatal("server DOWN while its check port is open")
	}
	chk.Close()
	waitFor(t, 3*time.Second, "DOWN once the check port closed", func() bool { return !st.Up() })
	if _, err := tcpAsk(frontendAddr(t, p, "fe")); err == nil {
		t.Fatal("traffic still reached the server marked DOWN")
	}
}

// timeout http-request bounds the wait for a request head (slowloris), and
// timeout http-keep-alive the idle time between requests.
func TestHTTPRequestAndKeepAliveTimeouts(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, oneServerConfig(`{mode: http, timeout: {connect: 1s, client: 10s, server: 10s, http-request: 300ms, http-keep-alive: 200ms}}`), a)
	addr := frontendAddr(t, p, "fe")
	closedAfter := func(c net.Conn) time.Duration {
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		return time.Since(start)
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n") // and never the end of the head
	if took := closedAfter(slow); took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("incomplete request head closed after %v, want about 300ms", took)
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(idle)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("first request: %q %v", status, err)
	}
	// Read the rest of the response (headers and the 1-byte body).
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	r.ReadByte()
	start := time.Now()
	_, err = r.ReadByte()
	if took := time.Since(start); err == nil || took < 150*time.Millisecond || took > 3*time.Second {
		t.Errorf("idle kept-alive connection closed after %v (%v), want about 200ms", took, err)
	}
}

// A request cut at timeout http-request is logged as HAProxy 2.6 logs it
// (measured): 408, cR--, dated when the request began and with the time
// since then as its total, the connection's start for a first request,
// its first byte for a later one on a kept-alive connection.
func TestRequestTimeoutLogLine(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p, logs := startLoggedProxy(t, oneServerConfig(`{mode: http, timeout: {connect: 1s, client: 10s, server: 10s, http-request: 400ms, http-keep-alive: 5s}, option: {httplog: true}}`), a)
	addr := frontendAddr(t, p, "fe")
	line := regexp.MustCompile(`^127\.0\.0\.1:\d+ \[([^]]+)\] fe fe/<NOSRV> -1/-1/-1/-1/(\d+) 408 \d+ - - cR-- `)
	cut := func(c net.Conn, r *bufio.Reader, began time.Time) {
		t.Helper()
		io.WriteString(c, "GET / HT") // and never the rest of the head
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if status, err := r.ReadString('\n'); err != nil || !strings.Contains(status, " 408 ") {
			t.Fatalf("slow head: %q %v, want a 408", status, err)
		}
		var m []string
		waitFor(t, 2*time.Second, "the 408's access line", func() bool {
			for _, e := range logs.FilterLoggerName("access").All() {
				if m = line.FindStringSubmatch(e.Message); m != nil && e.Time.After(began) {
					return true
				}
			}
			return false
		})
		date, err := time.ParseInLocation(logTime, m[1], time.Local)
		total, _ := strconv.Atoi(m[2])
		if err != nil || date.Before(began.Add(-time.Second)) || date.After(began.Add(200*time.Millisecond)) || total < 380 || total > 3000 {
			t.Errorf("408 logged [%s] with total %sms; want dated when the request began (%s) and about 400ms", m[1], m[2], began.Format(logTime))
		}
	}

	began := time.Now()
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cut(first, bufio.NewReader(first), began)

	kept, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	r := bufio.NewReader(kept)
	kept.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(kept, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(600 * time.Millisecond) // idle, longer than timeout http-request
	cut(kept, r, time.Now())
}

// timeout tunnel replaces client and server timeouts in mode tcp.
func TestTCPTunnelTimeout(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, oneServerConfig(`{timeout: {connect: 1s, client: 100ms, server: 100ms, tunnel: 1s}}`), a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(500 * time.Millisecond) // idle for 5x client/server, half the tunnel timeout
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "still there?\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
		t.Fatalf("session cut before the tunnel timeout: %q %v", line, err)
	}
}

// option tcplog and httplog write one line per session or request in
// HAProxy's layouts.
func TestAccessLogs(t *testing.T) {
	a, h := startTCPBackend(t, "a"), startHTTPBackend(t, "h", nil)
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	cfg := parseConfig(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  l4: {bind: "127.0.0.1:0", default_backend: tcpbe, option: {tcplog: true}}
  l7: {bind: "127.0.0.1:0", mode: http, default_backend: httpbe, option: {httplog: true}}
backends:
  tcpbe: {servers: [{name: a, address: "{{a}}"}]}
  httpbe: {mode: http, servers: [{name: h, address: "{{h}}"}]}
`, a, h)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	// A graceful client: half-close, then read to the end.
	c, err := net.Dial("tcp", frontendAddr(t, p, "l4"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "hi\n")
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "a\nbye from a\n" {
		t.Fatalf("l4 session: %q %v", got, err)
	}
	c.Close()
	if _, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "l7")+"/some/path?x=1"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	waitFor(t, 2*time.Second, "two access lines", func() bool { return logs.FilterLoggerName("access").Len() == 2 })
	lines := logs.FilterLoggerName("access").All()
	tcp, http := lines[0].Message, lines[1].Message
	if strings.Contains(tcp, "GET") {
		tcp, http = http, tcp
	}
	tcplog := regexp.MustCompile(`^127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] l4 tcpbe/a 0/\d+/\d+ 13 -- \d+/\d+/\d+/\d+/0 0/0$`)
	if !tcplog.MatchString(tcp) {
		t.Errorf("tcplog line %q does not match %s", tcp, tcplog)
	}
	httplog := regexp.MustCompile(`^127\.0\.0\.1:\d+ \[[^]]+\] l7 httpbe/h 0/0/\d+/\d+/\d+ 200 1 - - ---- \d+/\d+/\d+/\d+/0 0/0 "GET /some/path\?x=1 HTTP/1\.1"$`)
	if !httplog.MatchString(http) {
		t.Errorf("httplog line %q does not match %s", http, httplog)
	}
}

// A streamed response is logged once its body has been sent, with the
// bytes sent; a request that found no server is logged as <NOSRV>, SC.
func TestAccessLogStreamedAndFailed(t *testing.T) {
	const size = 1 << 20
	h := startHTTPBackend(t, "h", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, io.LimitReader(&pattern{}, size)) // chunked: no length
	})
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	cfg := parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, option: {httplog: true}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`, h)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	url := "http://" + frontendAddr(t, p, "fe") + "/big"
	if body, code, err := httpGet(httpClient(), url); err != nil || code != 200 || len(body) != size {
		t.Fatal(code, len(body), err)
	}
	p.Registry().Lookup("be", "h").SetHealthy(false)
	if _, code, err := httpGet(httpClient(), url); err != nil || code != 503 {
		t.Fatal(code, err)
	}
	waitFor(t, 2*time.Second, "two access lines", func() bool { return logs.FilterLoggerName("access").Len() == 2 })
	lines := logs.FilterLoggerName("access").All()
	if want := fmt.Sprintf(" 200 %d - - ---- ", size); !strings.Contains(lines[0].Message, want) {
		t.Errorf("streamed response line %q lacks %q", lines[0].Message, want)
	}
	if want := "] fe be/<NOSRV> 0/0/-1/-1/"; !strings.Contains(lines[1].Message, want) || !strings.Contains(lines[1].Message, " 503 ") || !strings.Contains(lines[1].Message, " SC-- ") {
		t.Errorf("no-server line %q lacks %q, 503 or SC--", lines[1].Message, want)
	}
}

// A reload that renames a frontend at its maxconn keeps the socket, and the
// renamed frontend accepts at once: the accept loop no longer waits for a
// slot of the removed one, which its open sessions hold.
func TestRenamedFrontendAtMaxConnAccepts(t *testing.T) {
	l := startTCPBackend(t, "l")
	addr := testnet.FreeAddr(t)
	yaml := `
defaults: {timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  old: {bind: "` + addr + `", maxconn: 1, default_backend: lines}
backends:
  lines: {servers: [{name: l, address: "{{l}}"}]}
`
	p := startProxy(t, yaml, l)
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(held, "x\n")
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the held session", func() bool { return p.FrontendCounters("old").CurConns.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // the accept loop waits for old's only slot
	renamed := strings.Replace(yaml, "old: {bind: \""+addr+"\", maxconn: 1,", "new: {bind: \""+addr+"\",", 1)
	if err := p.Apply(parseConfig(t, renamed, l)); err != nil {
		t.Fatal(err)
	}
	if name, err := tcpAsk(addr); err != nil || name != "l" {
		t.Fatalf("the renamed frontend does not accept while the removed one's session is open: %q, %v", name, err)
	}
}
