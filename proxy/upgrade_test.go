package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/halo-lb/halo/serverstate"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// passedFrom is what a new process finds of the old one's sockets: a copy
// of each descriptor, by name, as tableflip hands them over.
func passedFrom(t *testing.T, old *Proxy) func(string) (*net.TCPListener, error) {
	t.Helper()
	files := map[string]*os.File{}
	for _, pl := range old.PassListeners() {
		f, err := pl.Listener.File()
		if err != nil {
			t.Fatal(err)
		}
		files[pl.Name] = f
	}
	t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	return func(name string) (*net.TCPListener, error) {
		f := files[name]
		if f == nil {
			return nil, nil
		}
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, err
		}
		return ln.(*net.TCPListener), nil
	}
}

func socketInode(t *testing.T, ln *net.TCPListener) uint64 {
	t.Helper()
	raw, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// rawGet sends one request on c and reads the response head and body.
func rawGet(c net.Conn, r *bufio.Reader) (*http.Response, string, error) {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// A new proxy takes the old one's listening socket itself (the same
// kernel socket, not one bound next to it), and once the old one hands
// over, a kept-alive connection to it gets one more response, with
// "Connection: close", instead of being closed while idle; new
// connections are the new proxy's.
func TestHandoverKeepsSocketAndAnswersKeptAliveOnce(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	addr := testnet.FreeAddr(t)
	cfg := parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, http-keep-alive: 5s}}
frontends:
  fe: {bind: "`+addr+`", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	old := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err := old.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	kept, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	kr := bufio.NewReader(kept)
	if resp, body, err := rawGet(kept, kr); err != nil || body != "a" || resp.Close {
		t.Fatalf("first request: %v %q close=%v", err, body, resp != nil && resp.Close)
	}

	next := startProxyWith(t, cfg, passedFrom(t, old))
	oldLn, nextLn := old.current.Load().frontends[0].listeners[0].ln, next.current.Load().frontends[0].listeners[0].ln
	if socketInode(t, oldLn) != socketInode(t, nextLn) {
		t.Fatal("the new proxy opened a socket of its own instead of taking the one passed on")
	}
	handedOver := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		handedOver <- old.Handover(ctx)
	}()
	waitFor(t, 5*time.Second, "the old proxy to stop accepting", func() bool { return old.Listeners() == 0 })
	time.Sleep(100 * time.Millisecond) // the kept connection idles on
	resp, body, err := rawGet(kept, kr)
	if err != nil || body != "a" || resp.StatusCode != 200 {
		t.Fatalf("the kept-alive request after the handover: %v %q", err, body)
	}
	if !resp.Close {
		t.Error("the response after the handover does not say Connection: close")
	}
	select {
	case err := <-handedOver:
		if err != nil {
			t.Fatalf("handover: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old proxy did not finish once its last connection closed")
	}
	before := next.FrontendCounters("fe").TotalConns.Load()
	for range 5 {
		if body, code, err := httpGet(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}, "http://"+addr+"/"); err != nil || code != 200 || body != "a" {
			t.Fatalf("a new connection after the handover: %v %d %q", err, code, body)
		}
	}
	if n := next.FrontendCounters("fe").TotalConns.Load() - before; n != 5 {
		t.Errorf("the new proxy accepted %d of 5 new connections", n)
	}
}

func startProxyWith(t *testing.T, cfg *config.Config, inherit func(string) (*net.TCPListener, error)) *Proxy {
	t.Helper()
	p := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	p.Inherit(inherit)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// A bind a reload removes stops listening even though a copy of its
// descriptor lives on (a failed upgrade leaves one with tableflip):
// clients are refused, not left waiting in a backlog nobody serves. A
// passed socket that no longer listens is not taken by the next process.
func TestRemovedBindStopsListeningDespiteACopy(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	keep, gone := testnet.FreeAddr(t), testnet.FreeAddr(t)
	yaml := func(binds ...string) string {
		s := "defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}\nfrontends:\n"
		for i, b := range binds {
			s += fmt.Sprintf("  fe%d: {bind: %q, default_backend: be}\n", i, b)
		}
		return s + "backends:\n  be: {servers: [{name: a, address: \"{{a}}\"}]}\n"
	}
	p := startProxy(t, yaml(keep, gone), a)
	passed := passedFrom(t, p) // the copies
	if err := p.Apply(parseConfig(t, yaml(keep), a)); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", gone, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the removed bind still accepts connections")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing the removed bind: %v, want connection refused", err)
	}
	next := New(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		next.Shutdown(ctx)
	})
	next.Inherit(passed)
	if ln := next.inherited(listenerKeyOf(parseConfig(t, yaml(gone), a).Frontends[0].Binds[0])); ln != nil {
		ln.Close()
		t.Error("a shut-down socket was taken over")
	}
}

// Server state lines apply to the first configuration: maintenance, a
// runtime weight, a server DOWN by its check (with its last check and
// counter), before any check has run; a weight the configuration changed
// follows the configuration.
func TestRestoreServerState(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	dead := testnet.FreeAddr(t)
	cfg := parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: s1, address: "{{a}}"}
      - {name: s2, address: "`+dead+`", check: true, inter: 1h, rise: 2, fall: 3}
      - {name: s3, address: "{{a}}", weight: 1}
      - {name: s4, address: "{{a}}", weight: 1}
`, a)
	state := serverstate.Header +
		"2 be 1 s1 127.0.0.1 2 1 1 1 30 1 0 2 0 0 0 0 - 1 - 0 0 - - 0\n" +
		"2 be 2 s2 127.0.0.1 0 0 1 1 60 8 2 0 6 0 0 0 - 1 - 0 0 - - 0\n" +
		"2 be 3 s3 127.0.0.1 2 8 7 1 5 1 0 2 0 0 0 0 - 1 - 0 0 - - 0\n" +
		"2 be 4 s4 127.0.0.1 2 0 9 5 5 1 0 2 0 0 0 0 - 1 - 0 0 - - 0\n"
	f, errs := serverstate.Parse(strings.NewReader(state), "state")
	if errs != nil {
		t.Fatal(errs)
	}
	p := New(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	p.Restore(&Carried{Servers: f.Global()})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	r := p.Registry()
	s1, s2, s3, s4 := r.Lookup("be", "s1"), r.Lookup("be", "s2"), r.Lookup("be", "s3"), r.Lookup("be", "s4")
	if s1.Admin() != balancer.AdminMaint {
		t.Errorf("s1 is %v, want MAINT", s1.Admin())
	}
	if s2.Up() {
		t.Error("s2 is UP, want DOWN as the file says, before any check ran")
	}
	if pr, ok := p.CheckProgress("be", "s2"); !ok || pr.Health != 0 {
		t.Errorf("s2's check counter %+v, want 0", pr)
	}
	if last, ok := p.LastCheck("be", "s2"); !ok || last.Status != health.L4CON || last.OK {
		t.Errorf("s2's last check %+v, want the failed L4CON of the file", last)
	}
	if d := time.Since(s2.LastChange()); d < 59*time.Second || d > 70*time.Second {
		t.Errorf("s2 changed %v ago, want the file's 60 s", d)
	}
	if s3.Admin() != balancer.AdminDrain || s3.Weight(1) != 7 {
		t.Errorf("s3 is %v with weight %d, want DRAIN with the runtime weight 7", s3.Admin(), s3.Weight(1))
	}
	if s4.Weight(1) != 1 {
		t.Errorf("s4 weighs %d; the file's runtime weight was set against weight 5, the configuration's 1 wins", s4.Weight(1))
	}
	// The pool follows: only s4 takes requests (s1 in maintenance, s2
	// DOWN, s3 drained).
	if n := p.Snapshot().backendsByName["be"].pool.UsableCount(); n != 1 {
		t.Errorf("%d usable servers, want 1", n)
	}
}

// The counters of one process start the next one's, and what the old one
// counts after that is added once more, exactly.
func TestTotalsCarryToTheNextProcess(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
	old := startProxy(t, yaml, a)
	get := func(p *Proxy, n int) {
		for range n {
			if _, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/"); err != nil || code != 200 {
				t.Fatal(err, code)
			}
		}
	}
	get(old, 3)
	first := old.Totals()
	next := New(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	next.Restore(&Carried{Totals: first})
	if err := next.Apply(parseConfig(t, yaml, a)); err != nil {
		t.Fatal(err)
	}
	defer next.Shutdown(context.Background())
	get(next, 2)
	get(old, 4) // while it drains
	next.AddTotals(old.Totals().Since(first))
	fe, be, srv := next.FrontendCounters("fe"), next.BackendCounters("be"), next.Registry().Lookup("be", "a")
	if fe.Requests.Load() != 9 || be.HTTPStatus[2].Load() != 9 || srv.TotalConns.Load() != 9 {
		t.Errorf("req_tot %d, backend 2xx %d, server stot %d: want 9 each", fe.Requests.Load(), be.HTTPStatus[2].Load(), srv.TotalConns.Load())
	}
}
