package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// A client that shuts down its write side still receives the whole
// response: the server answers only after it sees EOF, with 8 MiB.
func TestTCPHalfClose(t *testing.T) {
	const size = 8 << 20
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		got, _ := io.ReadAll(c) // until the client's FIN arrives through halo
		c.Write(got)
		io.Copy(c, io.LimitReader(&pattern{}, size))
	})
	a := &testBackend{name: "a", ln: ln, addr: ln.Addr().String()}
	p := startProxy(t, oneServerConfig(`{timeout: {connect: 1s, client: 5s, server: 5s}}`), a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "request then FIN")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("request then FIN"), make([]byte, size)...)
	io.ReadFull(&pattern{}, want[16:])
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (the echo then 8 MiB), equal=%v", len(got), len(want), bytes.Equal(got, want))
	}
	fc := p.FrontendCounters("fe")
	waitFor(t, 2*time.Second, "session counted", func() bool { return fc.BytesOut.Load() == uint64(len(want)) })
	if fc.BytesIn.Load() != 16 {
		t.Errorf("frontend bytes in = %d, want 16", fc.BytesIn.Load())
	}
}

// An L4 session with no traffic either way for "timeout client" is closed;
// one that keeps talking is not, however long it lasts.
func TestTCPInactivityTimeout(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, oneServerConfig(`{timeout: {connect: 1s, client: 300ms, server: 300ms}}`), a)
	addr := frontendAddr(t, p, "fe")

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	buf := make([]byte, 64)
	for range 12 { // 1.2s of traffic, four times the timeout
		time.Sleep(100 * time.Millisecond)
		busy.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(busy, "ping\n"); err != nil {
			t.Fatalf("active session cut: %v", err)
		}
		if _, err := busy.Read(buf); err != nil {
			t.Fatalf("active session cut: %v", err)
		}
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := idle.Read(buf)
	took := time.Since(start)
	if err != io.EOF {
		t.Fatalf("idle session: read %d bytes, err %v; want EOF", n, err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("idle session closed after %v, want a little over the 300ms timeout", took)
	}
}

// Apply under steady load: the server set changes and no connection is
// refused or request lost, in both modes.
func TestReloadUnderLoad(t *testing.T) {
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			a, b, c := m.start(t, "a"), m.start(t, "b"), m.start(t, "c")
			cfg := `
defaults: {mode: ` + m.mode + `, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "` + testnet.FreeAddr(t) + `", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}"}
      - {name: SECOND, address: "{{SECOND}}"}
`
			p := startProxy(t, strings.ReplaceAll(cfg, "SECOND", "b"), a, b)
			addr := frontendAddr(t, p, "fe")
			var ok, failed atomic.Int64
			var seenC atomic.Bool
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ask := m.client(addr)
					for i := 0; i < 50000; i++ {
						select {
						case <-stop:
							return
						default:
						}
						name, err := ask()
						if err != nil {
							failed.Add(1)
							t.Errorf("request failed: %v", err)
							continue
						}
						ok.Add(1)
						if name == "c" {
							seenC.Store(true)
						}
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			for i := range 10 {
				second := "c"
				if i%2 == 1 {
					second = "b"
				}
				if err := p.Apply(parseConfig(t, strings.ReplaceAll(cfg, "SECOND", second), a, b, c)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if got := frontendAddr(t, p, "fe"); got != addr {
				t.Fatalf("listener moved from %s to %s across reloads", addr, got)
			}
			t.Logf("%d ok, %d failed across 10 reloads", ok.Load(), failed.Load())
			if failed.Load() != 0 || !seenC.Load() {
				t.Fatalf("failed=%d, saw the new server c: %v", failed.Load(), seenC.Load())
			}
		})
	}
}

// A build that fails (here: a bind that cannot be opened) changes nothing.
func TestApplyFailureKeepsServing(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, httpConfig, a)
	addr := frontendAddr(t, p, "fe")
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	bad := httpConfig + "\n  other: {servers: []}\n"
	bad = strings.ReplaceAll(bad, "frontends:\n", "frontends:\n  taken: {bind: \""+blocker.Addr().String()+"\", default_backend: be}\n")
	if err := p.Apply(parseConfig(t, bad, a)); err == nil {
		t.Fatal("Apply succeeded binding an address in use")
	}
	if body, code, err := httpGet(http.DefaultClient, "http://"+addr+"/"); err != nil || code != 200 || body != "a" {
		t.Fatalf("after a failed Apply: %d %q %v", code, body, err)
	}
}

func TestTerminationState(t *testing.T) {
	for _, tc := range []struct {
		up, down error
		want     string
	}{
		{nil, nil, "--"},
		{nil, net.ErrClosed, "--"},
		{errIdle, net.ErrClosed, "cD"},
		{net.ErrClosed, errIdle, "sD"},
		{syscall.ECONNRESET, nil, "CD"}, // reading the client failed
		{nil, syscall.ECONNRESET, "SD"}, // reading the server failed
		{nil, syscall.EPIPE, "CD"},      // writing to the client failed
		{syscall.EPIPE, nil, "SD"},      // writing to the server failed
		{nil, errWriteStalled, "cD"},    // the client stopped reading
	} {
		if got := terminationState(tc.up, tc.down); string(got[:]) != tc.want {
			t.Errorf("terminationState(%v, %v) = %s, want %s", tc.up, tc.down, got[:], tc.want)
		}
	}
}

// A long-lived L4 session's bytes show in the counters while it is open,
// not only once it closes.
func TestTCPCountersWhileOpen(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, oneServerConfig(`{timeout: {connect: 1s, client: 200ms, tunnel: 10s}}`), a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	srv := p.Registry().Lookup("be", "a")
	waitFor(t, 5*time.Second, "bytes counted on an open session", func() bool {
		return srv.BytesIn.Load() == 6 && srv.BytesOut.Load() == 2 &&
			p.FrontendCounters("fe").BytesIn.Load() == 6 && p.BackendCounters("be").BytesOut.Load() == 2
	})
	if srv.CurConns() != 1 {
		t.Fatalf("session not open any more: %d current connections", srv.CurConns())
	}
}

// A reload that fails to build leaves the running frontend's state alone:
// here a new maxconn must not apply when the new file's bind fails.
func TestFailedApplyKeepsFrontendState(t *testing.T) {
	a := startTCPBackend(t, "a")
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	bind := testnet.FreeAddr(t)
	cfg := `
frontends:
  fe: {bind: "` + bind + `", maxconn: 5, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
	p := startProxy(t, cfg, a)
	bad := strings.Replace(cfg, "maxconn: 5", "maxconn: 1", 1)
	bad = strings.Replace(bad, "frontends:\n", "frontends:\n  taken: {bind: \""+blocker.Addr().String()+"\", default_backend: be}\n", 1)
	if err := p.Apply(parseConfig(t, bad, a)); err == nil {
		t.Fatal("Apply succeeded binding an address in use")
	}
	if got := p.frontends.entries["fe"].limit.max.Load(); got != 5 {
		t.Fatalf("frontend maxconn after a failed reload = %d, want the running 5", got)
	}
}
