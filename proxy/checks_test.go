package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
)

// TestCheckAddrAndPort: with addr and port, the health check goes to
// another address than the traffic (OpenStack checks Galera on port 9200
// while traffic goes to 3306): closing the check listener takes the server
// DOWN although its traffic address still answers, and traffic moves to the
// other server.
func TestCheckAddrAndPort(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	check := startCheckListener(t, "127.0.0.2:0")
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", check: true, addr: 127.0.0.2, port: `+check.port()+`, inter: 50ms, fastinter: 20ms, fall: 2}
      - {name: b, address: "{{b}}"}
`, a, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	time.Sleep(200 * time.Millisecond)
	if !st.Up() {
		t.Fatal("a is DOWN while its check address answers")
	}
	check.ln.Close()
	waitFor(t, 2*time.Second, "a marked DOWN by its check address", func() bool { return !st.Up() })
	for range 10 {
		if name, err := tcpAsk(addr); err != nil || name != "b" {
			t.Fatalf("a DOWN: got %q, %v; want b", name, err)
		}
	}
	// a's traffic address is still up: only the check address told.
	if c, err := net.Dial("tcp", a.addr); err != nil {
		t.Fatalf("a's traffic address does not answer: %v", err)
	} else {
		c.Close()
	}
}

// checkListener is a health-check target (a clustercheck, an agent, a
// Redis) on its own port, which a test can take down and bring back.
type checkListener struct {
	ln   net.Listener
	addr string
}

// serveConns serves handle on addr.
func serveConns(t *testing.T, addr string, handle func(net.Conn)) *checkListener {
	ln := testnet.Serve(t, addr, handle)
	return &checkListener{ln: ln, addr: ln.Addr().String()}
}

// startCheckListener accepts connections and closes them at once: a TCP
// check passes while it listens.
func startCheckListener(t *testing.T, addr string) *checkListener {
	return serveConns(t, addr, func(net.Conn) {})
}

func (c *checkListener) port() string { return strconv.Itoa(c.ln.Addr().(*net.TCPAddr).Port) }

// sessionClosed reports whether the server side closed a held session
// within wait: a read returns EOF or a reset rather than timing out.
func sessionClosed(conn net.Conn, wait time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(wait))
	_, err := conn.Read(make([]byte, 64))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestOnMarkedDownShutdownSessions: a long-lived mode tcp session to a
// server whose check fails is closed the moment the server is marked DOWN
// with "on-marked-down shutdown-sessions" (the OpenStack Galera setup: the
// client must reconnect to the next node at once), and kept without it.
func TestOnMarkedDownShutdownSessions(t *testing.T) {
	for _, shutdown := range []bool{true, false} {
		t.Run(fmt.Sprint("shutdown-sessions=", shutdown), func(t *testing.T) {
			a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
			check := startCheckListener(t, "127.0.0.1:0")
			option := ""
			if shutdown {
				option = ", on-marked-down: shutdown-sessions"
			}
			p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 30s, server: 30s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", check: true, port: `+check.port()+`, inter: 50ms, fall: 2`+option+`}
      - {name: b, address: "{{b}}", backup: true}
`, a, b)
			addr := frontendAddr(t, p, "fe")
			name, held, r := holdTCP(t, addr)
			if name != "a" {
				t.Fatalf("session went to %s, want a", name)
			}
			st := p.Registry().Lookup("be", "a")
			check.ln.Close()
			waitFor(t, 2*time.Second, "a marked DOWN", func() bool { return !st.Up() })
			down := time.Now()
			if shutdown {
				if !sessionClosed(held, time.Second) {
					t.Fatal("the session to a stayed open after a was marked DOWN")
				}
				t.Logf("session closed %v after a was seen DOWN", time.Since(down).Round(time.Millisecond))
			} else {
				fmt.Fprintln(held, "still there?")
				held.SetReadDeadline(time.Now().Add(2 * time.Second))
				if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
					t.Fatalf("without the option the session to a broke: %q, %v", line, err)
				}
			}
			if name, err := tcpAsk(addr); err != nil || name != "b" {
				t.Fatalf("new session with a DOWN: %q, %v; want b", name, err)
			}
		})
	}
}

// TestOnMarkedUpShutdownBackupSessions: when the primary comes back UP with
// "on-marked-up shutdown-backup-sessions", sessions on the backup are closed
// so that clients come back to the primary.
func TestOnMarkedUpShutdownBackupSessions(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	check := startCheckListener(t, "127.0.0.1:0")
	checkAddr := check.addr
	check.ln.Close() // a starts failing its checks
	_, port, _ := net.SplitHostPort(checkAddr)
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 30s, server: 30s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", check: true, port: `+port+`, inter: 50ms, rise: 1, fall: 1, on-marked-up: shutdown-backup-sessions}
      - {name: b, address: "{{b}}", backup: true}
`, a, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	waitFor(t, 2*time.Second, "a marked DOWN", func() bool { return !st.Up() })
	name, held, _ := holdTCP(t, addr)
	if name != "b" {
		t.Fatalf("with a DOWN the session went to %s, want the backup b", name)
	}
	startCheckListener(t, checkAddr)
	waitFor(t, 2*time.Second, "a marked UP", func() bool { return st.Up() })
	if !sessionClosed(held, time.Second) {
		t.Fatal("the session on the backup stayed open after a came back UP")
	}
	if name, err := tcpAsk(addr); err != nil || name != "a" {
		t.Fatalf("new session with a UP: %q, %v; want a", name, err)
	}
}

// TestHTTPCheckMarksServerDown: with option httpchk, a server whose check
// endpoint (a clustercheck on another port, as OpenStack's Galera setup)
// starts answering 503 is marked DOWN although its traffic port is fine,
// and UP again when it answers 200.
func TestHTTPCheckMarksServerDown(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	var synced atomic.Bool
	synced.Store(true)
	check := startHTTPBackend(t, "check", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Check") != "halo" || r.Method != "GET" || r.URL.Path != "/clustercheck" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if !synced.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "Galera cluster node is not synced.")
			return
		}
		io.WriteString(w, "Galera cluster node is synced.")
	})
	_, checkPort, _ := net.SplitHostPort(check.addr)
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    option: {httpchk: true}
    http-check:
      send: {meth: GET, uri: /clustercheck, ver: HTTP/1.1, hdr: {X-Check: halo}}
      expect: {string: "is synced"}
    servers:
      - {name: a, address: "{{a}}", check: true, port: `+checkPort+`, inter: 50ms, rise: 2, fall: 2}
      - {name: b, address: "{{b}}", backup: true}
`, a, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	time.Sleep(200 * time.Millisecond)
	if !st.Up() {
		t.Fatal("a DOWN while its clustercheck says synced")
	}
	if name, err := tcpAsk(addr); err != nil || name != "a" {
		t.Fatalf("a synced: %q, %v", name, err)
	}
	if c, ok := p.LastCheck("be", "a"); !ok || c.Status != health.L7OK || c.Duration <= 0 || c.At.IsZero() {
		t.Fatalf("last check while synced: %+v, %v", c, ok)
	}
	synced.Store(false)
	waitFor(t, 2*time.Second, "a marked DOWN by its HTTP check", func() bool { return !st.Up() })
	if c, ok := p.LastCheck("be", "a"); !ok || c.Status != health.L7RSP || !strings.Contains(c.Desc, "is synced") {
		t.Fatalf("last check while not synced: %+v, %v; want L7RSP naming the expected string", c, ok)
	} else {
		t.Logf("last check: %s in %v: %s", c.Status, c.Duration, c.Desc)
	}
	if _, ok := p.LastCheck("be", "b"); ok {
		t.Fatal("a result for b, which has no check")
	}
	if name, err := tcpAsk(addr); err != nil || name != "b" {
		t.Fatalf("a not synced: %q, %v; want the backup b", name, err)
	}
	synced.Store(true)
	waitFor(t, 2*time.Second, "a marked UP again", func() bool { return st.Up() })
	if name, err := tcpAsk(addr); err != nil || name != "a" {
		t.Fatalf("a synced again: %q, %v", name, err)
	}
}

// TestTCPCheckScript: with option tcp-check (a PING/+PONG script) or option
// redis-check (the same, built in), a server whose answer to PING is not
// +PONG is marked DOWN, though it accepts connections.
func TestTCPCheckScript(t *testing.T) {
	for _, variant := range []string{"tcp-check", "redis-check"} {
		t.Run(variant, func(t *testing.T) {
			a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
			var healthy atomic.Bool
			healthy.Store(true)
			redis := serveConns(t, "127.0.0.1:0", func(c net.Conn) {
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				if string(buf[:n]) == "PING\r\n" && healthy.Load() {
					io.WriteString(c, "+PONG\r\n")
				} else {
					io.WriteString(c, "-LOADING Redis is loading the dataset in memory\r\n")
				}
			})
			checkPort := redis.port()
			checks := `
    option: {tcp-check: true}
    tcp-check:
      - connect: {port: ` + checkPort + `}
      - send: "PING\r\n"
      - expect: {string: "+PONG"}`
			if variant == "redis-check" {
				checks = `
    option: {redis-check: true}
    default-server: {port: ` + checkPort + `}`
			}
			p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:`+checks+`
    servers:
      - {name: a, address: "{{a}}", check: true, inter: 50ms, rise: 1, fall: 1}
      - {name: b, address: "{{b}}", backup: true}
`, a, b)
			addr := frontendAddr(t, p, "fe")
			st := p.Registry().Lookup("be", "a")
			time.Sleep(200 * time.Millisecond)
			if !st.Up() {
				t.Fatal("a DOWN while it answers +PONG")
			}
			healthy.Store(false)
			waitFor(t, 2*time.Second, "a marked DOWN by its check", func() bool { return !st.Up() })
			if name, err := tcpAsk(addr); err != nil || name != "b" {
				t.Fatalf("a failing its check: %q, %v; want b", name, err)
			}
			if c, ok := p.LastCheck("be", "a"); !ok || c.Status != health.L7RSP {
				t.Fatalf("last check: %+v, %v; want L7RSP", c, ok)
			}
		})
	}
}

// agentServer answers every connection with its current reply line, as an
// agent on a server would.
type agentServer struct {
	reply atomic.Value // string
	port  string
}

func startAgent(t *testing.T, reply string) *agentServer {
	t.Helper()
	a := &agentServer{}
	a.reply.Store(reply)
	a.port = serveConns(t, "127.0.0.1:0", func(c net.Conn) { io.WriteString(c, a.reply.Load().(string)) }).port()
	return a
}

// TestAgentCheck: an agent-check changes the server's weight, admin state,
// availability and maxconn as its agent says.
func TestAgentCheck(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	agent := startAgent(t, "up 100%\n")
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", weight: 10, agent-check: true, agent-port: `+agent.port+`, agent-inter: 30ms}
      - {name: b, address: "{{b}}", weight: 10}
`, a, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	ask := func() (string, error) { return tcpAsk(addr) }
	settle := func(what string, cond func() bool) {
		waitFor(t, 2*time.Second, what, cond)
		time.Sleep(100 * time.Millisecond) // a few more agent rounds: the state is stable
	}
	agent.reply.Store("50%\n")
	settle("weight 5", func() bool { return st.Weight(10) == 5 })
	if got := tally(t, ask, 30); got["a"] != 10 || got["b"] != 20 {
		t.Fatalf("agent 50%%: %v, want a 10, b 20", got)
	}
	agent.reply.Store("drain\n")
	settle("drain", func() bool { return st.Admin() == balancer.AdminDrain })
	if got := tally(t, ask, 10); got["a"] != 0 {
		t.Fatalf("agent drain: %v, want nothing on a", got)
	}
	agent.reply.Store("ready 100%\n")
	settle("ready", func() bool { return st.Admin() == balancer.AdminReady && st.Weight(10) == 10 })
	if got := tally(t, ask, 20); got["a"] != 10 {
		t.Fatalf("agent ready 100%%: %v, want 10/10", got)
	}
	agent.reply.Store("down # disk full\n")
	settle("agent down", func() bool { return !st.AgentUp() })
	if got := tally(t, ask, 10); got["a"] != 0 {
		t.Fatalf("agent down: %v, want nothing on a", got)
	}
	agent.reply.Store("up\n")
	settle("agent up", func() bool { return st.AgentUp() })
	if got := tally(t, ask, 20); got["a"] != 10 {
		t.Fatalf("agent up: %v, want 10/10", got)
	}
	agent.reply.Store("maxconn:1\n")
	settle("maxconn 1", func() bool { return st.MaxConn() == 1 })
	// Hold one session on a; with maxconn 1 every new one goes to b.
	var held []net.Conn
	for len(held) == 0 {
		name, conn, _ := holdTCP(t, addr)
		if name == "a" {
			held = append(held, conn)
		} else {
			conn.Close()
		}
	}
	if got := tally(t, ask, 10); got["a"] != 0 {
		t.Fatalf("agent maxconn:1 with a busy: %v, want all on b", got)
	}
}
