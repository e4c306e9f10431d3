package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileConfig denies requests whose X-H matches any of a -f list of
// regular expressions, under timeout http-request 500ms and tune.bufsize
// 1 MiB (so that a 1 MiB header is read).
const hostileConfig = `
global: {tune: {bufsize: 1048576}}
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 10s, http-request: 500ms}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    option: {httplog: true}
    acl:
      hostile: hdr(x-h) -m reg -f {{dir}}/hostile.lst
      bomb: hdr(x-bomb) -m reg ^(a|aa)+$ ^(a+)+$ ^(a|a?)+$
    http-request:
      - deny if hostile
      - deny deny_status 429 if bomb
    default_backend: be
backends:
  be:
    servers: [{name: a, address: "{{a}}"}]
`

// hostileRequest sends one request with header name: value and returns the
// status and how long the answer took; the connection gives up after 20 s,
// so that a stalled request fails the test rather than hanging it.
func hostileRequest(t *testing.T, addr, name, value string) (int, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	if _, err := fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: a\r\n%s: %s\r\n\r\n", name, value); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s of %d bytes: %v after %v", name, len(value), err, time.Since(start))
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// A hostile rule set cannot hold a request past its timeouts: 20,000
// regular expressions of a -f list against a 15 KB header took 11.5 s
// before rules had a deadline, against 1 MiB over a minute. Now the rules
// stop at timeout http-request after the head was read and the request is
// answered 500, logged PR--, counted as an internal error. Regular
// expressions that make a backtracking engine explode are answered at
// once: RE2 is linear.
func TestHostileRulesEndAtTheirDeadline(t *testing.T) {
	dir := t.TempDir()
	var lst strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&lst, "^(a|aa)+x%d$\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostile.lst"), []byte(lst.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startHTTPBackend(t, "a", nil)
	p, logs := startLoggedProxy(t, strings.ReplaceAll(hostileConfig, "{{dir}}", dir), a)
	addr := frontendAddr(t, p, "fe")
	fe := p.Snapshot().frontendsByName["fe"]

	// The bound: the deadline (500 ms after the head), one chunk of work
	// past it, and room for a loaded machine and the race detector.
	const bound = 3 * time.Second
	for i, n := range []int{15 << 10, 1000 << 10} {
		status, took := hostileRequest(t, addr, "X-H", strings.Repeat("a", n))
		if status != http.StatusInternalServerError || took > bound {
			t.Errorf("X-H of %d bytes against 20,000 patterns: %d after %v, want 500 within %v", n, status, took, bound)
		}
		if got := fe.state.InternalErrors.Load(); got != uint64(i+1) {
			t.Errorf("internal errors %d, want %d", got, i+1)
		}
		t.Logf("X-H of %d bytes: %d after %v", n, status, took.Round(time.Millisecond))
	}
	waitFor(t, 3*time.Second, "the access lines", func() bool { return logs.FilterMessageSnippet(" 500 ").Len() == 2 })
	for _, e := range logs.FilterMessageSnippet(" 500 ").All() {
		if !strings.Contains(e.Message, " PR-- ") {
			t.Errorf("access line %q, want termination state PR--", e.Message)
		}
	}

	// A short header against the same list: every pattern is tried in
	// time, none matches, the request is served.
	if status, took := hostileRequest(t, addr, "X-H", "aaax"); status != http.StatusOK || took > bound {
		t.Errorf("short X-H: %d after %v, want 200", status, took)
	}
	// Backtracking bombs against 60,000 a's and a '!': no match, served;
	// against a's alone: a match, denied 429.
	for value, want := range map[string]int{strings.Repeat("a", 60000) + "!": 200, strings.Repeat("a", 60000): 429} {
		if status, took := hostileRequest(t, addr, "X-Bomb", value); status != want || took > bound {
			t.Errorf("X-Bomb of %d bytes: %d after %v, want %d", len(value), status, took, want)
		}
	}
}

// At the default tune.bufsize (16 KiB), a 1 MiB header is refused while
// it is read, before any rule sees it.
func TestHugeHeaderRefusedAtDefaultBufsize(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	cfg := strings.Replace(strings.ReplaceAll(hostileConfig, "{{dir}}/hostile.lst", os.DevNull), "global: {tune: {bufsize: 1048576}}\n", "", 1)
	p := startProxy(t, cfg, a)
	status, took := hostileRequest(t, frontendAddr(t, p, "fe"), "X-H", strings.Repeat("a", 1<<20))
	if status != http.StatusRequestHeaderFieldsTooLarge && status != http.StatusBadRequest || took > 3*time.Second {
		t.Errorf("1 MiB header at the default bufsize: %d after %v, want 431 or 400 at once", status, took)
	}
}

// A client whose refused request is still in flight when halo answers
// finishes writing and reads the answer: halo drains what follows before
// it closes, so its kernel does not reset the connection under a client
// that is still sending (curl then reports "Send failure: Connection
// reset by peer", not the 431). The client writes 2 MiB of head (refused
// at 16 KiB, more than the sockets' buffers hold) and reads only after it
// wrote it all.
func TestRefusedRequestIsReadNotReset(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	cfg := strings.Replace(strings.ReplaceAll(hostileConfig, "{{dir}}/hostile.lst", os.DevNull), "global: {tune: {bufsize: 1048576}}\n", "", 1)
	p := startProxy(t, cfg, a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	head := "GET /x HTTP/1.1\r\nHost: a\r\nX-H: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatalf("writing a 2 MiB head: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to a refused 2 MiB head: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}
