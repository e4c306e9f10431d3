package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/halo-lb/halo/internal/testnet"
)

// reloadTimeoutsYAML is a frontend whose HTTP timeouts change with n: each
// value gives fasthttp server settings of its own, so every reload to the
// next n replaces the frontend's server generation.
func reloadTimeoutsYAML(port, n int) string {
	return fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 5s, http-request: %ds, http-keep-alive: %ds}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, 5+n%2, 8+n%3, port)
}

// A kept-alive connection idle when a reload changes its frontend's HTTP
// timeouts is not closed under the client: its next request is answered
// (saying the connection closes), with the new configuration's routing.
func TestReloadOfHTTPTimeoutsKeepsIdleConnections(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	port := testnet.FreePort(t)
	p := startProxy(t, reloadTimeoutsYAML(port, 0), a)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, br := openGet(t, addr)
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := p.Apply(parseConfig(t, reloadTimeoutsYAML(port, 1), a)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // what a retiring generation does, it has begun
	listed := 0
	p.EachSession(func(_, _, mode string, src, _ net.Addr, _ time.Duration) {
		if mode == "http" && src.String() == c.LocalAddr().String() {
			listed++
		}
	})
	if listed != 1 {
		t.Errorf("show sess lists the draining generation's connection %d times, want once", listed)
	}
	if err := sendGet(c, "/"); err != nil {
		t.Fatalf("the idle connection was closed by the reload: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the idle connection's next request got no response after the reload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "a" || !resp.Close {
		t.Fatalf("after the reload: %d %q, closes %v; want 200 \"a\" saying the connection closes", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection stayed open after its Connection: close response (%v)", err)
	}
}

// Clients sending request after request on kept-alive connections see no
// failure while reloads replace their frontend's server generation again
// and again: a connection ends only after a response that says so.
func TestReloadsOfHTTPTimeoutsFailNoKeptAliveRequest(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	port := testnet.FreePort(t)
	p := startProxy(t, reloadTimeoutsYAML(port, 0), a)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	var ok, reconnects atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
						mu.Lock()
						failures = append(failures, "connect: "+err.Error())
						mu.Unlock()
						return
					}
					br = bufio.NewReader(c)
					reconnects.Add(1)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				err := sendGet(c, "/")
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(br, nil)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d on a connection: %v", i, err))
					mu.Unlock()
					c.Close()
					c = nil
					continue
				}
				ok.Add(1)
				if resp.Close {
					c.Close()
					c = nil
				}
			}
		})
	}
	const reloads = 40
	for n := 1; n <= reloads; n++ {
		time.Sleep(25 * time.Millisecond)
		if err := p.Apply(parseConfig(t, reloadTimeoutsYAML(port, n), a)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d reloads: %d requests answered, %d connections opened, %d failures", reloads, ok.Load(), reconnects.Load(), len(failures))
	if ok.Load() < 100 {
		t.Errorf("only %d requests were answered", ok.Load())
	}
	for i, f := range failures {
		if i == 5 {
			t.Errorf("... %d failures in all", len(failures))
			break
		}
		t.Errorf("failure: %s", f)
	}
}

// A WebSocket tunnel is a session of its frontend, not a connection of the
// HTTP server generation that parsed its upgrade: a reload that replaces
// the generation neither waits for it nor cuts it at hard-stop-after.
func TestTunnelOutlivesReplacedHTTPGeneration(t *testing.T) {
	a := wsBackend(t, "a")
	port := testnet.FreePort(t)
	cfg := func(keepAlive int) string {
		return fmt.Sprintf(`
global: {hard-stop-after: 500ms}
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s, http-keep-alive: %ds}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, keepAlive, port)
	}
	p := startProxy(t, cfg(5), a)
	old := p.Snapshot().frontendsByName["fe"].state.http.Load()
	ws := wsDial(t, fmt.Sprintf("127.0.0.1:%d", port), "/echo")
	defer ws.Close()
	if err := p.Apply(parseConfig(t, cfg(6), a)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the replaced generation to be drained", func() bool {
		p.httpMu.Lock()
		defer p.httpMu.Unlock()
		_, running := p.httpServers[old]
		return !running
	})
	time.Sleep(time.Second) // past hard-stop-after
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatalf("the tunnel was cut: %v", err)
	}
	if _, got, err := ws.ReadMessage(); err != nil || string(got) != "still here" {
		t.Fatalf("the tunnel was cut: %q %v", got, err)
	}
	if n := len(p.Snapshot().frontendsByName["fe"].state.tcp.snapshot()); n != 1 {
		t.Errorf("the frontend tracks %d sessions, want the tunnel", n)
	}
}

// Sessions relayed to a server a reload removed end at hard-stop-after;
// those to a server that stays run on.
func TestSessionsOfRemovedServerEndAtHardStopAfter(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	port := testnet.FreePort(t)
	cfg := func(servers string) string {
		return fmt.Sprintf(`
global: {hard-stop-after: 700ms}
defaults: {mode: tcp, timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {balance: roundrobin, servers: [%s]}
`, port, servers)
	}
	p := startProxy(t, cfg(`{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}`), a, b)
	sessions := map[string]net.Conn{}
	for len(sessions) < 2 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "hello")
		name, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		sessions[name[:len(name)-1]] = c
	}
	start := time.Now()
	if err := p.Apply(parseConfig(t, cfg(`{name: a, address: "{{a}}"}`), a, b)); err != nil {
		t.Fatal(err)
	}
	ask := func(c net.Conn) (string, error) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(c, "again"); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	if got, err := ask(sessions["b"]); err != nil || got != "b\n" {
		t.Fatalf("b's session right after the reload: %q %v; it should run until hard-stop-after", got, err)
	}
	buf := make([]byte, 64)
	sessions["b"].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := sessions["b"].Read(buf); err == nil {
		t.Fatalf("b's session read %q, want its end", buf[:n])
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 3*time.Second {
		t.Errorf("b's session ended %s after the reload, want about hard-stop-after (700ms)", took)
	}
	if got, err := ask(sessions["a"]); err != nil || got != "a\n" {
		t.Fatalf("a's session after hard-stop-after: %q %v", got, err)
	}
}
