package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/panics"
	"github.com/halo-lb/halo/sticktable"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// panickingIP is the source address of the clients whose requests and
// connections the tests make panic; everyone else comes from 127.0.0.1.
var panickingIP = net.IPv4(127, 0, 0, 9)

// panicValue is what the hook panics with, found again in the log lines.
const panicValue = "test panic: the hook at"

// panicAt makes the data path panic at point for the requests and
// connections of panickingIP, until the test ends.
func panicAt(t *testing.T, point hookPoint) {
	hook := func(p hookPoint, subject any) {
		var client net.Addr
		switch s := subject.(type) {
		case *bodyStream:
			// Once a good part of the body is on its way, so that the
			// client sees the response start.
			if s.ex.bytes < smallBody {
				return
			}
			client = s.ctx.RemoteAddr()
		case *fasthttp.RequestCtx:
			client = s.RemoteAddr()
		case net.Conn:
			client = s.RemoteAddr()
		}
		if a, ok := client.(*net.TCPAddr); p == point && ok && a.IP.Equal(panickingIP) {
			panic(fmt.Sprintf("%s %d", panicValue, p))
		}
	}
	panicHook.Store(&hook)
	t.Cleanup(func() { panicHook.Store(nil) })
}

// noLeaks fails the test if it leaves goroutines behind. Called first, its
// check runs after every other cleanup: the proxy's shutdown, the
// backends'. Two of fasthttp's goroutines are let be: each sleeps 10 s
// between rounds and ends at the first after its server or client has
// stopped (the idle-worker cleaner of the parked Serve of each HTTP
// generation, the idle-connection cleaner of each server's pool); they
// are one per server or generation, never per connection.
func noLeaks(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		// fasthttp's clock for Date headers: one per process, started
		// by the first server.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1")}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// expectSlotsFree: the maxconn slots in use are the one the accept loop
// holds while it waits for the next connection, nothing more.
func expectSlotsFree(t *testing.T, p *Proxy, fe *frontend) {
	t.Helper()
	if a, b := fe.state.limit.current(), p.global.current(); a != 1 || b != 1 {
		t.Errorf("maxconn slots held: frontend %d, global %d; want the accept loop's 1", a, b)
	}
}

func dialFrom(ip net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 2 * time.Second}
	return d.Dial("tcp", addr)
}

// goodLoad is the traffic of clients that do not panic, checked once it
// has run its course.
type goodLoad struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	failed []string
	done   int
}

func (l *goodLoad) wait(t *testing.T) {
	t.Helper()
	l.wg.Wait()
	if len(l.failed) > 0 || l.done == 0 {
		t.Errorf("%d of %d requests of the other clients failed: %v", len(l.failed), l.done, l.failed)
	}
}

// expectUntracked: the stick table's entries of the addresses have no
// tracked connection left, nor a reference.
func expectUntracked(t *testing.T, p *Proxy, table string, addrs ...string) {
	t.Helper()
	tbl := p.StickTable(table)
	now := sticktable.Now()
	for _, a := range addrs {
		e := tbl.Get(tbl.AddrKey(netip.MustParseAddr(a)), now)
		if e == nil {
			t.Errorf("no entry for %s in table %s", a, table)
			continue
		}
		if cur, refs := e.Value(sticktable.ConnCur, now), e.Refs(); cur != 0 || refs != 0 {
			t.Errorf("table %s, %s: conn_cur %d, %d references, want none", table, a, cur, refs)
		}
	}
}

// expectPanicLines: n error lines report a panic, each with the frontend,
// the panicking client, the hook's value and a stack through the hook;
// withBackend: and the backend and server.
func expectPanicLines(t *testing.T, logs *observer.ObservedLogs, n int, withBackend bool) {
	t.Helper()
	lines := logs.FilterLevelExact(zap.ErrorLevel).FilterMessageSnippet("panic")
	if lines.Len() != n {
		t.Errorf("%d error lines report a panic, want %d: %v", lines.Len(), n, lines.All())
		return
	}
	for _, e := range lines.All() {
		f := e.ContextMap()
		client, _ := f["client"].(string)
		stack, _ := f["stack"].(string)
		ok := f["frontend"] == "fe" && strings.HasPrefix(client, "127.0.0.9:") &&
			strings.HasPrefix(fmt.Sprint(f["panic"]), panicValue) && strings.Contains(stack, "recover_test.go")
		if withBackend {
			ok = ok && f["backend"] == "be" && f["server"] == "a"
		}
		if !ok {
			t.Errorf("panic line %q lacks what it should say: %v", e.Message, f)
		}
	}
}

func accessLines(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.FilterLoggerName("access").All() {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// A panic in a mode tcp session is recovered: its client's connection
// closes (the server's too), the tcplog line says I, the other sessions
// go on, and nothing stays held: sessions, the server's slots, maxconn
// slots, the frontend's set of sessions, tracked connections.
func TestPanicInTCPIsRecovered(t *testing.T) {
	const yaml = `
defaults: {mode: tcp, timeout: {connect: 1s, client: 5s, server: 5s, queue: 5s}}
global: {maxconn: 100}
frontends:
  fe:
    bind: "127.0.0.1:0"
    maxconn: 50
    option: {tcplog: true}
    stick-table: type ip size 100 expire 30s store conn_cur
    tcp-request: ["connection track-sc0 src"]
    default_backend: be
backends:
  be: {servers: [{name: a, address: "{{a}}", maxconn: 2}]}
`
	cases := []struct {
		name      string
		point     hookPoint
		term      string // the tcplog line's termination ("": none)
		inBackend bool
	}{
		{"before the relay", hookTCP, "ID", true},
		{"in the relay's client side", hookRelay, "ID", true},
		{"after the preamble", hookPreamble, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			p, logs := startLoggedProxy(t, yaml, startTCPBackend(t, "a"))
			addr := frontendAddr(t, p, "fe")
			before := panics.Count()
			panicAt(t, tc.point)
			const n = 4
			good := goodTCPLoad(addr)
			for range n {
				c, err := dialFrom(panickingIP, addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "hello\n")
				got, err := io.ReadAll(c)
				c.Close()
				if len(got) != 0 || isTimeout(err) {
					t.Errorf("the panicking session read %q (%v), want its connection closed", got, err)
				}
			}
			good.wait(t)

			s := p.Snapshot()
			fe, be := s.frontendsByName["fe"], s.backendsByName["be"]
			srv := be.servers[0]
			waitFor(t, 5*time.Second, "every connection and session to end", func() bool {
				return fe.state.CurConns.Load() == 0 && p.active.Load() == 0 && be.counters.CurConns.Load() == 0 &&
					srv.state.CurConns() == 0 && len(fe.state.tcp.snapshot()) == 0
			})
			expectSlotsFree(t, p, fe)
			expectUntracked(t, p, "fe", "127.0.0.1", "127.0.0.9")
			wantBackend := uint64(0)
			if tc.inBackend {
				wantBackend = n
			}
			if fe, be, srv := fe.state.InternalErrors.Load(), be.counters.InternalErrors.Load(), srv.state.InternalErrors.Load(); fe != n || be != wantBackend || srv != wantBackend {
				t.Errorf("eint: frontend %d, backend %d, server %d; want %d, %d, %d", fe, be, srv, n, wantBackend, wantBackend)
			}
			if got := panics.Count() - before; got != n {
				t.Errorf("the process counted %d panics, want %d", got, n)
			}
			expectPanicLines(t, logs, n, tc.inBackend)
			if tc.term != "" {
				lines := logs.FilterLoggerName("access").FilterMessageSnippet("127.0.0.9:").FilterMessageSnippet(" " + tc.term + " ")
				if lines.Len() != n {
					t.Errorf("%d tcplog lines of 127.0.0.9 with termination %s, want %d:\n%s", lines.Len(), tc.term, n, accessLines(logs))
				}
			}
		})
	}
}

// goodTCPLoad runs three sessions from 127.0.0.1, each asking for ten
// lines, one at a time.
func goodTCPLoad(addr string) *goodLoad {
	l := &goodLoad{}
	for range 3 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c, err := dialFrom(net.IPv4(127, 0, 0, 1), addr)
			if err != nil {
				l.mu.Lock()
				l.failed = append(l.failed, err.Error())
				l.mu.Unlock()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			for range 10 {
				io.WriteString(c, "hello\n")
				line, err := r.ReadString('\n')
				l.mu.Lock()
				if err != nil || line != "a\n" {
					l.failed = append(l.failed, fmt.Sprintf("%q %v", line, err))
				}
				l.done++
				l.mu.Unlock()
			}
		}()
	}
	return l
}
