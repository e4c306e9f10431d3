package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// At the file-descriptor limit, accept fails with EMFILE while clients keep
// arriving in the kernel's backlog. halo must not spin on the error (its
// CPU time over seconds at the limit stays under 5% of a core, and it logs
// the failure with the delay before the next try); it must accept a
// waiting client as soon as a connection ends and frees a descriptor, not
// when its back-off runs out; it must answer, not hang, the request of a
// client accepted with its last descriptor, whose server connection cannot
// be opened (503 and SC--, as HAProxy 2.6 answers and logs it, measured);
// and once descriptors free up, every client that waited is served.
func TestAcceptAtDescriptorLimit(t *testing.T) {
	// Low enough that the test's own connections reach it quickly; global
	// maxconn is far above it, so the descriptor limit is what bites.
	const nofile = 128
	const trials = 2              // descriptors freed one at a time
	const backlogged = trials + 1 // clients waiting in the backlog at the limit
	const resumeBound = 500 * time.Millisecond
	be := startBackends(t, "a")
	port := testnet.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
global: {maxconn: 10000}
defaults:
  mode: http
  timeout: {connect: 1s, client: 30s, server: 30s, http-request: 30s}
  option: {httplog: true}
frontends:
  web: {bind: "127.0.0.1:%d", default_backend: app}
backends:
  app: {servers: [{name: a, address: %q}]}
`, port, be["a"]))
	h := startHaloLimited(t, nofile, "run", "-c", cfg)
	pid := h.cmd.Process.Pid
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitUntil(t, 10*time.Second, "halo to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// The probes may still be accepted and closed after they answered:
	// wait for halo's descriptors to settle with only the listener.
	var base int
	waitUntil(t, 5*time.Second, "halo to close the probe connections", func() bool {
		n, sockets := fdSnapshot(t, pid, nofile)
		time.Sleep(200 * time.Millisecond)
		again, socketsAgain := fdSnapshot(t, pid, nofile)
		base = again
		return sockets == 1 && socketsAgain == 1 && n == again
	})

	// Each accepted client that has sent nothing holds one descriptor of
	// halo's (it waits for its request head under timeout http-request).
	idle := dialAll(t, addr, nofile-base)
	waitUntil(t, 10*time.Second, "halo to reach its descriptor limit", func() bool { return fdsBelow(t, pid, nofile) == nofile })
	waiting := dialAll(t, addr, backlogged)
	logCount := func(s string) int { return strings.Count(h.stderr.String(), s) }
	const atLongest, afterAccept = `"retry_in": 1}`, `"retry_in": 0.005}`
	waitUntil(t, 10*time.Second, "the accept back-off to reach its longest delay", func() bool { return logCount(atLongest) > 0 })
	logs := h.stderr.String()
	if !strings.Contains(logs, "accept failed") || !strings.Contains(logs, "too many open files") {
		t.Fatalf("the accept failure is not logged with its cause:\n%s", logs)
	}

	// No busy loop.
	const window = 3 * time.Second
	cpu0, tries0 := procCPU(t, pid), logCount("accept failed")
	time.Sleep(window)
	cpu, tries := procCPU(t, pid)-cpu0, logCount("accept failed")-tries0
	share := float64(cpu) / float64(window)
	t.Logf("at the limit (%d descriptors, %d clients in the backlog): halo used %v of CPU in %v (%.1f%% of a core); %d accept attempts failed",
		nofile, backlogged, cpu, window, 100*share, tries)
	if share >= 0.05 {
		t.Errorf("halo used %.1f%% of a core at the descriptor limit, want under 5%%: the accept loop spins", 100*share)
	}
	if n := fdsBelow(t, pid, nofile); n != nofile {
		t.Fatalf("halo has %d descriptors under the limit open, want all %d", n, nofile)
	}

	// One descriptor frees while the loop sleeps its longest back-off:
	// the oldest client of the backlog is accepted at once (the next
	// accept fails again, with the back-off started over).
	for i := range trials {
		longest, resets := logCount(atLongest), logCount(afterAccept)
		waitUntil(t, 10*time.Second, "the back-off to reach its longest delay again", func() bool { return logCount(atLongest) > longest })
		idle[0].Close()
		idle = idle[1:]
		freed := time.Now()
		waitUntil(t, 10*time.Second, "a waiting client to be accepted with the freed descriptor", func() bool { return logCount(afterAccept) > resets })
		took := time.Since(freed)
		t.Logf("descriptor %d freed while the accept loop slept 1s: a waiting client was accepted %v later", i+1, took.Round(time.Millisecond))
		if took > resumeBound {
			t.Errorf("a client waiting in the backlog was accepted %v after a descriptor freed, want within %v", took, resumeBound)
		}
	}

	// The first client accepted holds halo's last descriptor: there is
	// none for the server connection.
	start := time.Now()
	status, _, err := exchange(waiting[0], "/", 10*time.Second)
	t.Logf("request of a client accepted with the last descriptor: %d %v after %v", status, err, time.Since(start).Round(time.Millisecond))
	if err != nil || status != 503 {
		t.Fatalf("request needing a server connection at the descriptor limit: status %d, %v; want 503", status, err)
	}
	waitUntil(t, 5*time.Second, "the access line of the 503", func() bool { return strings.Contains(h.stderr.String(), " 503 ") })
	if line := lineWith(h.stderr.String(), " 503 "); !strings.Contains(line, " SC-- ") {
		t.Errorf("the 503 at the descriptor limit is logged %q, want termination state SC-- as HAProxy's", line)
	}

	// Descriptors free up: every client that waited, accepted or still
	// in the backlog, is served, and so is a new one.
	freed := time.Now()
	for _, c := range idle {
		c.Close()
	}
	// halo frees a descriptor when it reads the client's close, not when
	// the test closes its end: until then a server connection still
	// fails with EMFILE (503, as the request above). Ask once halo holds
	// fewer than half its limit.
	waitUntil(t, 10*time.Second, "halo to close the connections the clients ended", func() bool { return fdsBelow(t, pid, nofile) < nofile/2 })
	for i, c := range append(waiting, dialAll(t, addr, 1)...) {
		if status, body, err := exchange(c, "/", 10*time.Second); err != nil || status != 200 || body != "a" {
			t.Fatalf("client %d after descriptors freed up: %d %q %v", i+1, status, body, err)
		}
	}
	t.Logf("descriptors freed: the %d waiting clients and a new one were served %v later", backlogged, time.Since(freed).Round(time.Millisecond))
}

// fdSnapshot reads a process's descriptors once: how many are under
// limit (see fdsBelow) and how many are sockets.
func fdSnapshot(t *testing.T, pid, limit int) (below, sockets int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd < limit {
			below++
		}
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return below, sockets
}

// lineWith returns the first line of s that contains sub.
func lineWith(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// At maxconn, new connections wait in the kernel's backlog, neither
// refused nor reset, and are served in turn as slots free: the binary
// under both limits, counted. (The proxy package's
// TestFrontendMaxConnQueuesConnections shows one connection waiting for a
// frontend's slot.) Two frontends of maxconn 3 under a global maxconn of 4
// get 40 clients each, all at once, each on a new connection whose request
// the server holds 100 ms: every client is served, and the servers never
// hold more than 3 requests of one frontend, or 4 in all, at once.
func TestMaxConnConnectionsWait(t *testing.T) {
	const global, perFrontend, clients = 4, 3, 40
	const hold = 100 * time.Millisecond
	var all, atA, atB concurrency
	pa, pb := testnet.FreePort(t), testnet.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
global: {maxconn: %d}
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  fa: {bind: "127.0.0.1:%d", maxconn: %d, default_backend: a}
  fb: {bind: "127.0.0.1:%d", maxconn: %d, default_backend: b}
backends:
  a: {servers: [{name: a, address: %q}]}
  b: {servers: [{name: b, address: %q}]}
`, global, pa, perFrontend, pb, perFrontend,
		startHoldingBackend(t, "a", hold, &all, &atA), startHoldingBackend(t, "b", hold, &all, &atB)))
	startHalo(t, "run", "-c", cfg)
	addrs := map[string]string{"a": fmt.Sprintf("127.0.0.1:%d", pa), "b": fmt.Sprintf("127.0.0.1:%d", pb)}
	for _, addr := range addrs {
		waitUntil(t, 10*time.Second, "halo to listen", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}

	var served, refused, failed atomic.Int64
	var mu sync.Mutex
	var longest time.Duration
	var firstFailure string
	var wg sync.WaitGroup
	start := time.Now()
	for name, addr := range addrs {
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				began := time.Now()
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					refused.Add(1)
					return
				}
				defer c.Close()
				status, body, err := exchange(c, "/", 30*time.Second)
				took := time.Since(began)
				mu.Lock()
				defer mu.Unlock()
				longest = max(longest, took)
				if err != nil || status != 200 || body != name {
					failed.Add(1)
					if firstFailure == "" {
						firstFailure = fmt.Sprintf("%d %q %v", status, body, err)
					}
					return
				}
				served.Add(1)
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d clients in %v (longest %v): %d served, %d refused, %d failed (%s); at once: %d in all, %d of fa, %d of fb",
		2*clients, elapsed.Round(time.Millisecond), longest.Round(time.Millisecond), served.Load(), refused.Load(), failed.Load(), firstFailure,
		all.max.Load(), atA.max.Load(), atB.max.Load())
	if served.Load() != 2*clients {
		t.Errorf("%d of %d clients served (%d refused, %d failed or reset: %s)", served.Load(), 2*clients, refused.Load(), failed.Load(), firstFailure)
	}
	if atA.max.Load() > perFrontend || atB.max.Load() > perFrontend {
		t.Errorf("a frontend had %d and %d requests at its server at once, over its maxconn %d", atA.max.Load(), atB.max.Load(), perFrontend)
	}
	if all.max.Load() != global {
		t.Errorf("the servers held at most %d requests at once, want the global maxconn %d: over it, or slots left unused", all.max.Load(), global)
	}

	// A frontend at its maxconn holds no global slot it cannot use: with
	// fa's 3 slots busy for seconds, global maxconn has room for one more
	// connection, and fb's clients, one after the other, get it at once.
	// (Each connection that ends hands its global slot to the accept loop
	// that waited longest, fa's the second time.)
	const long = 3 * time.Second
	busy := dialAll(t, addrs["a"], perFrontend)
	for _, c := range busy {
		fmt.Fprintf(c, "GET /?hold=%v HTTP/1.1\r\nHost: halo.test\r\n\r\n", long)
	}
	waitUntil(t, 5*time.Second, "fa's slots to be busy", func() bool { return atA.cur.Load() == perFrontend })
	for i := range 3 {
		began := time.Now()
		c := dialAll(t, addrs["b"], 1)[0]
		status, body, err := exchange(c, "/", 10*time.Second)
		took := time.Since(began)
		c.Close() // and its slots free
		t.Logf("with fa at its maxconn, client %d of fb was served in %v", i+1, took.Round(time.Millisecond))
		if err != nil || status != 200 || body != "b" {
			t.Fatalf("fb's client %d while fa is at its maxconn: %d %q %v", i+1, status, body, err)
		}
		if took > long/2 {
			t.Errorf("fb's client %d waited %v while fa was at its maxconn and the global one had room: it waited for fa's connections to end", i+1, took)
		}
	}
}
