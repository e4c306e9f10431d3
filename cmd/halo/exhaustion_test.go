package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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
	waitUntil(t, 5*time.Second, "halo to close the probe connections", func() bool { return socketCount(t, pid) == 1 })
	base := fdsBelow(t, pid, nofile)

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
	for i, c := range append(waiting, dialAll(t, addr, 1)...) {
		if status, body, err := exchange(c, "/", 10*time.Second); err != nil || status != 200 || body != "a" {
			t.Fatalf("client %d after descriptors freed up: %d %q %v", i+1, status, body, err)
		}
	}
	t.Logf("descriptors freed: the %d waiting clients and a new one were served %v later", backlogged, time.Since(freed).Round(time.Millisecond))
}

// socketCount is the number of sockets a process has open.
func socketCount(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
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
