package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// parkedYAML is one frontend with the keep-alive timeout given, long
// enough for a connection to park (over twice parkGrace).
func parkedYAML(keepAlive string) string {
	return oneServerConfig(`{mode: http, timeout: {connect: 1s, client: 10s, server: 5s, http-request: 5s, http-keep-alive: ` + keepAlive + `}}`)
}

// getOn sends GET / on c and reads the response: its status, body and
// whether it says the connection closes.
func getOn(t *testing.T, c net.Conn, br *bufio.Reader) (int, string, bool) {
	t.Helper()
	if err := sendGet(c, "/"); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, br)
}

// openParked sends a request to frontend fe of p on a new connection,
// reads its response and waits for the connection to park.
func openParked(t *testing.T, p *Proxy, fe string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := openGet(t, frontendAddr(t, p, fe))
	readResponse(t, br)
	waitFor(t, 2*time.Second, "the idle connection to park", func() bool { return p.parking.count() == 1 })
	return c, br
}

func readResponse(t *testing.T, br *bufio.Reader) (int, string, bool) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), resp.Close
}

// A kept-alive connection that stays idle parks: no goroutine of halo's
// waits on it, it still counts as a connection of halo's and is listed by
// "show sess", and its next request is served as if it had never left.
func TestIdleConnectionParksAndServesItsNextRequest(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, parkedYAML("10s"), a)
	c, br := openGet(t, frontendAddr(t, p, "fe"))
	if status, body, _ := readResponse(t, br); status != 200 || body != "a" {
		t.Fatalf("first request: %d %q", status, body)
	}
	for round := 1; round <= 3; round++ {
		took := waitFor(t, 2*time.Second, "the idle connection to park", func() bool { return p.parking.count() == 1 })
		if took < parkGrace/2 {
			t.Fatalf("round %d: parked after %v, before the grace of %v", round, took, parkGrace)
		}
		if n := p.active.Load(); n != 1 {
			t.Fatalf("round %d: %d connections counted while one is parked, want 1", round, n)
		}
		listed := 0
		p.EachSession(func(_, _, mode string, src, _ net.Addr, _ time.Duration) {
			if mode == "http" && src.String() == c.LocalAddr().String() {
				listed++
			}
		})
		if listed != 1 {
			t.Fatalf("round %d: show sess lists the parked connection %d times, want once", round, listed)
		}
		status, body, closes := getOn(t, c, br)
		if status != 200 || body != "a" || closes {
			t.Fatalf("round %d: request on the parked connection: %d %q, closes %v", round, status, body, closes)
		}
	}
	// A client closing a parked connection ends it: halo counts it no more.
	waitFor(t, 2*time.Second, "the idle connection to park", func() bool { return p.parking.count() == 1 })
	c.Close()
	waitFor(t, 2*time.Second, "the closed parked connection to end", func() bool { return p.active.Load() == 0 && p.parking.count() == 0 })
}

// A parked connection closes at its keep-alive timeout, counted from the
// end of its last response as fasthttp counts it, without a word.
func TestParkedConnectionClosesAtKeepAliveTimeout(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, parkedYAML("1s"), a)
	c, br := openGet(t, frontendAddr(t, p, "fe"))
	readResponse(t, br)
	answered := time.Now()
	waitFor(t, time.Second, "the idle connection to park", func() bool { return p.parking.count() == 1 })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := br.Read(make([]byte, 1))
	closed := time.Since(answered)
	if n != 0 || err != io.EOF {
		t.Fatalf("parked connection at its keep-alive timeout: read %d bytes, %v; want EOF", n, err)
	}
	if closed < 900*time.Millisecond || closed > 1500*time.Millisecond {
		t.Fatalf("parked connection closed %v after its response, want its keep-alive timeout of 1s", closed)
	}
	waitFor(t, time.Second, "the expired connection to end", func() bool { return p.active.Load() == 0 && p.parking.count() == 0 })
}

// A parked connection holds its maxconn slot, as an idle kept-alive
// connection does in HAProxy; the slot frees when it ends.
func TestParkedConnectionHoldsItsMaxconnSlot(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 5s, http-request: 5s, http-keep-alive: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", maxconn: 1, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	c1, br1 := openGet(t, addr)
	readResponse(t, br1)
	waitFor(t, 2*time.Second, "the idle connection to park", func() bool { return p.parking.count() == 1 })
	c2, br2 := openGet(t, addr)
	c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br2.Peek(1); err == nil {
		t.Fatal("a second client was served while the parked one held the frontend's only slot")
	}
	c1.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if status, body, _ := readResponse(t, br2); status != 200 || body != "a" {
		t.Fatalf("second client once the parked one closed: %d %q", status, body)
	}
}

// Shutdown closes parked connections at once, as it closes idle ones, and
// a reload that removes their frontend closes them too.
func TestParkedConnectionsCloseAtShutdownAndFrontendRemoval(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, parkedYAML("10s"), a)
	c, br := openParked(t, p, "fe")
	if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 5s}}
frontends:
  other: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection of a removed frontend: %v, want EOF", err)
	}

	// timeout http-keep-alive falls back to timeout client (10s).
	c2, br2 := openParked(t, p, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Shutdown took %v with one parked connection, want it closed at once", took)
	}
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br2.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection at Shutdown: %v, want EOF", err)
	}
	if n := p.active.Load(); n != 0 {
		t.Fatalf("%d connections counted after Shutdown", n)
	}
}

// A connection that parked while a reload replaced its generation says
// "Connection: close" on its next response, as that generation's
// connections do, and is served by the new one.
func TestParkedConnectionClosesAfterItsRetiredGeneration(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, parkedYAML("10s"), a)
	c, br := openParked(t, p, "fe")
	port := c.RemoteAddr().(*net.TCPAddr).Port
	if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 5s, http-request: 5s, http-keep-alive: 9s}}
frontends:
  fe: {bind: "127.0.0.1:`+strconv.Itoa(port)+`", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)); err != nil {
		t.Fatal(err)
	}
	status, body, closes := getOn(t, c, br)
	if status != 200 || body != "a" || !closes {
		t.Fatalf("parked connection after its generation retired: %d %q, closes %v; want 200 \"a\" saying it closes", status, body, closes)
	}
}

// A client that resets its parked connection ends it as silently as one
// that resets a kept-alive connection fasthttp waits on: no 400 answered,
// no access line, no request or error counted. (Back from parking,
// fasthttp's loop sees a first request, whose first read it takes as the
// end of the connection whatever its error, as it does for a kept-alive
// one: nothing of halo's makes it so, this test keeps it so.)
func TestResetOfParkedConnectionIsSilent(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p, logs := startLoggedProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 5s, http-keep-alive: 10s}, option: {httplog: true}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	c, _ := openParked(t, p, "fe")
	fe := p.current.Load().frontendsByName["fe"].state
	requests, errs := fe.Requests.Load(), fe.Errors.Load()
	c.(*net.TCPConn).SetLinger(0) // close sends a reset
	c.Close()
	waitFor(t, 2*time.Second, "the reset parked connection to end", func() bool { return p.active.Load() == 0 })
	time.Sleep(100 * time.Millisecond) // an access line would be written by now
	if n := logs.FilterMessageSnippet(`"GET / HTTP/1.1"`).Len(); n != 1 {
		t.Errorf("%d access lines, want only the first request's: %v", n, logs.All())
	}
	if r, e := fe.Requests.Load(), fe.Errors.Load(); r != requests || e != errs {
		t.Errorf("the reset counted requests %d -> %d, errors %d -> %d; want no change", requests, r, errs, e)
	}
}

// With timeout http-keep-alive alone (no http-request, no client), a
// connection back from parking is served: the grace's expired read
// deadline must not stay on it, fasthttp sets none for a first request
// without those timeouts.
func TestParkedConnectionWithOnlyAKeepAliveTimeout(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, oneServerConfig(`{mode: http, timeout: {connect: 1s, server: 5s, http-keep-alive: 10s}}`), a)
	c, br := openParked(t, p, "fe")
	if status, body, _ := getOn(t, c, br); status != 200 || body != "a" {
		t.Fatalf("request on the parked connection: %d %q", status, body)
	}
}

// Empty lines a client sends between requests (RFC 9112 section 2.2) do
// not end the wait for the next request: the connection still parks, and
// serves the request that comes after.
func TestEmptyLinesBeforeTheNextRequestStillPark(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, parkedYAML("10s"), a)
	c, br := openGet(t, frontendAddr(t, p, "fe"))
	readResponse(t, br)
	time.Sleep(parkGrace / 2)
	if _, err := io.WriteString(c, "\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the connection to park after its empty line", func() bool { return p.parking.count() == 1 })
	time.Sleep(2 * parkGrace)
	if status, body, _ := getOn(t, c, br); status != 200 || body != "a" {
		t.Fatalf("request after an empty line and an idle wait: %d %q", status, body)
	}
}

// A connection parked from a generation a reload replaced closes at
// hard-stop-after if it is still idle then, as that generation's idle
// connections do.
func TestParkedConnectionOfReplacedGenerationClosesAtHardStop(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	cfg := func(port, keepAlive int) string {
		return fmt.Sprintf(`
global: {hard-stop-after: 500ms}
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 5s, http-keep-alive: %ds}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, keepAlive, port)
	}
	port := testnet.FreePort(t)
	p := startProxy(t, cfg(port, 20), a)
	c, br := openParked(t, p, "fe")
	reloaded := time.Now()
	if err := p.Apply(parseConfig(t, cfg(port, 21), a)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection of a replaced generation: %v, want EOF at hard-stop-after", err)
	}
	if took := time.Since(reloaded); took < 400*time.Millisecond || took > 2*time.Second {
		t.Fatalf("closed %v after the reload, want at hard-stop-after (500ms)", took)
	}
}
