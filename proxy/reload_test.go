package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
)

// checkRig is a backend whose server a is checked with option httpchk by a
// check server that answers each probe with the next status the test
// feeds it, and holds the probe until there is one: the test decides
// exactly how many checks pass or fail, whatever the timing. Server b has
// a TCP check against its own always-open port.
type checkRig struct {
	statuses chan int
	yaml     string
	backends []*testBackend
}

func newCheckRig(t *testing.T) *checkRig {
	r := &checkRig{statuses: make(chan int, 16)}
	check := startHTTPBackend(t, "check", func(w http.ResponseWriter, req *http.Request) {
		select {
		case code := <-r.statuses:
			w.WriteHeader(code)
		case <-req.Context().Done(): // a monitor stopped with its probe in flight
		}
	})
	_, checkPort, _ := net.SplitHostPort(check.addr)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	r.backends = []*testBackend{a, b}
	r.yaml = `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    option: {httpchk: true}
    servers:
      - {name: a, address: "{{a}}", check: true, port: ` + checkPort + `, inter: 20ms, rise: 2, fall: 3}
      - {name: b, address: "{{b}}", check: true, inter: 20ms, rise: 2, fall: 3}
`
	return r
}

// answer lets exactly one probe of a through with status code, and waits
// until its monitor has recorded it.
func (r *checkRig) answer(t *testing.T, p *Proxy, code int) health.Checked {
	t.Helper()
	before, _ := p.LastCheck("be", "a")
	r.statuses <- code
	var got health.Checked
	waitFor(t, 5*time.Second, "a's check to be recorded", func() bool {
		c, ok := p.LastCheck("be", "a")
		got = c
		return ok && c.At.After(before.At)
	})
	return got
}

func (r *checkRig) monitor(p *Proxy, server string) *health.Monitor {
	for _, srv := range p.Snapshot().backendsByName["be"].servers {
		if srv.cfg.Name == server {
			return srv.checks.monitor.Load()
		}
	}
	return nil
}

// A reload that changes nothing keeps each server's health monitor: its
// last result and its rise/fall counter. Server a (rise 2, fall 3) fails
// one check, the file is reloaded, and it takes exactly two more failures
// to mark it DOWN; before the fix the reload restarted the counter, so the
// next failure alone took it DOWN, and LastCheck had no result at all.
func TestUnchangedReloadKeepsHealthMonitors(t *testing.T) {
	r := newCheckRig(t)
	p := startProxy(t, r.yaml, r.backends...)
	st := p.Registry().Lookup("be", "a")
	if c := r.answer(t, p, 200); c.Status != health.L7OK {
		t.Fatalf("first check: %+v", c)
	}
	failed := r.answer(t, p, 503)
	if failed.Status != health.L7STS || !st.Up() {
		t.Fatalf("after one failed check: %s, up=%v; want L7STS and still UP", failed.Status, st.Up())
	}
	monitorB := r.monitor(p, "b")
	if err := p.Apply(parseConfig(t, r.yaml, r.backends...)); err != nil {
		t.Fatal(err)
	}
	if c, ok := p.LastCheck("be", "a"); !ok || !c.At.Equal(failed.At) || c.Status != failed.Status {
		t.Fatalf("right after an unchanged reload LastCheck is %+v, %v; want the failure of %v kept", c, ok, failed.At)
	}
	if r.monitor(p, "b") != monitorB {
		t.Error("an unchanged reload replaced b's monitor")
	}
	r.answer(t, p, 503)
	time.Sleep(50 * time.Millisecond) // an edge, if any, follows the record at once
	if !st.Up() {
		t.Fatal("a went DOWN after 2 failed checks with fall 3: the reload restarted its counter")
	}
	r.answer(t, p, 503)
	waitFor(t, 2*time.Second, "a DOWN after its third failed check", func() bool { return !st.Up() })
	if n := st.ChecksDown.Load(); n != 1 {
		t.Fatalf("a went DOWN %d times, want once", n)
	}
}

// A reload that changes one server's inter restarts that server's monitor
// only, and carries its health counter and last result into the new one.
func TestChangedInterRestartsOnlyThatServer(t *testing.T) {
	r := newCheckRig(t)
	p := startProxy(t, r.yaml, r.backends...)
	st := p.Registry().Lookup("be", "a")
	r.answer(t, p, 200)
	failed := r.answer(t, p, 503)
	monitorA, monitorB := r.monitor(p, "a"), r.monitor(p, "b")
	changed := strings.Replace(r.yaml, "inter: 20ms, rise: 2, fall: 3}\n      - {name: b", "inter: 30ms, rise: 2, fall: 3}\n      - {name: b", 1)
	if changed == r.yaml {
		t.Fatal("the test's edit of a's inter did not apply")
	}
	if err := p.Apply(parseConfig(t, changed, r.backends...)); err != nil {
		t.Fatal(err)
	}
	if r.monitor(p, "a") == monitorA {
		t.Error("a's inter changed but its monitor was kept")
	}
	if r.monitor(p, "b") != monitorB {
		t.Error("b's settings did not change but its monitor was replaced")
	}
	if c, ok := p.LastCheck("be", "a"); !ok || !c.At.Equal(failed.At) {
		t.Errorf("a's last result after the change: %+v, %v; want the failure carried over", c, ok)
	}
	r.answer(t, p, 503)
	time.Sleep(50 * time.Millisecond)
	if !st.Up() {
		t.Fatal("a went DOWN after 2 failed checks with fall 3: its counter was not carried over")
	}
	r.answer(t, p, 503)
	waitFor(t, 2*time.Second, "a DOWN after its third failed check", func() bool { return !st.Up() })
}

// sendGet writes one keep-alive GET on a raw client connection.
func sendGet(c net.Conn, path string) error {
	_, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n")
	return err
}

// openGet opens a raw client connection to addr, closed when the test
// ends, with a 5-second deadline, and sends one keep-alive GET / on it.
func openGet(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := sendGet(c, "/"); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// A frontend removed by a reload serves no further request on its
// kept-alive connections: they close, and its state is released. Before
// the fix such a connection went on through the retired snapshot, whose
// pool no longer followed server state (a server put in MAINT still got
// every other request).
func TestRemovedFrontendClosesKeptAliveConnections(t *testing.T) {
	a, b := startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
  gone: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]}
`
	p := startProxy(t, yaml, a, b)
	c, br := openGet(t, frontendAddr(t, p, "gone"))
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	without := strings.Replace(yaml, "  gone: {bind: \"127.0.0.1:0\", default_backend: be}\n", "", 1)
	if err := p.Apply(parseConfig(t, without, a, b)); err != nil {
		t.Fatal(err)
	}
	p.Registry().Lookup("be", "a").SetAdmin(balancer.AdminMaint)
	var served []string
	closed := false
	for range 6 {
		if err := sendGet(c, "/"); err != nil {
			closed = true
			break
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			closed = true
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served = append(served, string(body))
	}
	for _, s := range served {
		if s == "a" {
			t.Errorf("a request on the removed frontend's connection reached a, which is in MAINT: %v", served)
			break
		}
	}
	if !closed {
		t.Errorf("the removed frontend's kept-alive connection still serves requests: %v", served)
	}
	if fc := p.FrontendCounters("gone"); fc != nil {
		t.Error("the removed frontend's state is still kept")
	}
	// The live frontend follows server state.
	for range 4 {
		if body, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/"); err != nil || code != 200 || body != "b" {
			t.Fatalf("live frontend with a in MAINT: %d %q %v", code, body, err)
		}
	}
}

// A request in flight on a removed frontend finishes with its response,
// which tells the client the connection closes; then it closes.
func TestRemovedFrontendFinishesRequestInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "a")
	})
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
  gone: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
	p := startProxy(t, yaml, a)
	_, br := openGet(t, frontendAddr(t, p, "gone"))
	<-arrived
	without := strings.Replace(yaml, "  gone: {bind: \"127.0.0.1:0\", default_backend: be}\n", "", 1)
	if err := p.Apply(parseConfig(t, without, a)); err != nil {
		t.Fatal(err)
	}
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight got no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "a" || !resp.Close {
		t.Fatalf("in-flight response: %d %q, Connection: close=%v; want 200 \"a\" closing", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last response the connection gave %v, want EOF", err)
	}
}

// Connections of a removed frontend that are still open when
// hard-stop-after runs out are closed, in both modes: an L4 session that
// goes on, an HTTP request whose server never answers. Before that they
// are left alone.
func TestRemovedFrontendClosedAtHardStopAfter(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := startHTTPBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) { <-release })
	lines := startTCPBackend(t, "lines")
	yaml := `
global: {hard-stop-after: 400ms}
defaults: {timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  keep: {bind: "127.0.0.1:0", default_backend: l4}
  gone4: {bind: "127.0.0.1:0", default_backend: l4}
  gone7: {bind: "127.0.0.1:0", mode: http, default_backend: l7}
backends:
  l4: {servers: [{name: lines, address: "{{lines}}"}]}
  l7: {mode: http, servers: [{name: slow, address: "{{slow}}"}]}
`
	p := startProxy(t, yaml, slow, lines)
	c4, err := net.Dial("tcp", frontendAddr(t, p, "gone4"))
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	r4 := bufio.NewReader(c4)
	io.WriteString(c4, "hello\n")
	c4.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := r4.ReadString('\n'); err != nil || line != "lines\n" {
		t.Fatalf("L4 session: %q, %v", line, err)
	}
	c7, _ := openGet(t, frontendAddr(t, p, "gone7"))
	waitFor(t, 2*time.Second, "the request at the server", func() bool { return p.BackendCounters("l7").CurConns.Load() == 1 })
	only := `
global: {hard-stop-after: 400ms}
defaults: {timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  keep: {bind: "127.0.0.1:0", default_backend: l4}
backends:
  l4: {servers: [{name: lines, address: "{{lines}}"}]}
`
	if err := p.Apply(parseConfig(t, only, lines)); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	// Still served in between: the session answers.
	io.WriteString(c4, "again\n")
	if line, err := r4.ReadString('\n'); err != nil || line != "lines\n" {
		t.Fatalf("L4 session right after the reload: %q, %v", line, err)
	}
	for name, c := range map[string]net.Conn{"L4 session": c4, "HTTP connection": c7} {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var err error
		if name == "L4 session" {
			_, err = r4.ReadString('\n')
		} else {
			_, err = c.Read(make([]byte, 1))
		}
		took := time.Since(removed)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s still open %v after its frontend was removed with hard-stop-after 400ms", name, took.Round(time.Millisecond))
		} else if took < 350*time.Millisecond {
			t.Errorf("%s closed %v after the reload, before hard-stop-after (400ms): %v", name, took.Round(time.Millisecond), err)
		}
	}
}

// modeSwitchConfigs are one frontend on addr, in mode http in front of
// backend web (server h) and in mode tcp in front of backend lines
// (server l).
func modeSwitchConfigs(addr string) (asHTTP, asTCP string) {
	asHTTP = `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "` + addr + `", mode: http, default_backend: web}
backends:
  web: {mode: http, servers: [{name: h, address: "{{h}}"}]}
  lines: {servers: [{name: l, address: "{{l}}"}]}
`
	return asHTTP, strings.Replace(asHTTP, "mode: http, default_backend: web", "default_backend: lines", 1)
}

// A frontend that a reload switches between mode http and mode tcp serves
// in its new mode at once, on the same socket.
func TestReloadSwitchesFrontendMode(t *testing.T) {
	h, l := startHTTPBackend(t, "h", nil), startTCPBackend(t, "l")
	addr := testnet.FreeAddr(t)
	asHTTP, asTCP := modeSwitchConfigs(addr)
	p := startProxy(t, asHTTP, h, l)
	for range 2 {
		if body, code, err := httpGet(httpClient(), "http://"+addr+"/"); err != nil || code != 200 || body != "h" {
			t.Fatalf("mode http: %d %q %v", code, body, err)
		}
		if err := p.Apply(parseConfig(t, asTCP, h, l)); err != nil {
			t.Fatal(err)
		}
		if name, err := tcpAsk(addr); err != nil || name != "l" {
			t.Fatalf("mode tcp after the reload: %q, %v", name, err)
		}
		if err := p.Apply(parseConfig(t, asHTTP, h, l)); err != nil {
			t.Fatal(err)
		}
	}
}

// A request that is still arriving on a kept-alive connection when a
// reload switches its frontend to mode tcp is answered in mode http, with
// "Connection: close", and the connection then closes. It used to be
// handled by the new mode tcp frontend, whose servers have no HTTP client:
// a nil dereference that took the process down.
func TestRequestInFlightWhenFrontendSwitchesToTCP(t *testing.T) {
	h, l := startHTTPBackend(t, "h", nil), startTCPBackend(t, "l")
	addr := testnet.FreeAddr(t)
	asHTTP, asTCP := modeSwitchConfigs(addr)
	p := startProxy(t, asHTTP, h, l)
	c, br := openGet(t, addr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n") // the head is not complete yet
	time.Sleep(50 * time.Millisecond)
	if err := p.Apply(parseConfig(t, asTCP, h, l)); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request finished after the switch got no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "h" || !resp.Close {
		t.Fatalf("response %d %q close=%v; want 200 from h, closing", resp.StatusCode, body, resp.Close)
	}
	if name, err := tcpAsk(addr); err != nil || name != "l" {
		t.Fatalf("mode tcp on the same socket: %q, %v", name, err)
	}
}
