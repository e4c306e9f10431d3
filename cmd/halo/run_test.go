package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// tcpConfigFile writes a one-frontend mode tcp configuration on a free port
// and returns the port and the file.
func tcpConfigFile(t *testing.T) (int, string) {
	port := testnet.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
defaults: {mode: tcp, timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {servers: [{name: s1, address: "127.0.0.1:1"}]}
`, port))
	return port, cfg
}

func TestPprofFlagServesProfiles(t *testing.T) {
	pprofPort := testnet.FreePort(t)
	_, cfg := tcpConfigFile(t)
	startHalo(t, "run", "-c", cfg, "-pprof", fmt.Sprintf("127.0.0.1:%d", pprofPort))
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", pprofPort)
	var body string
	waitUntil(t, 10*time.Second, "the pprof endpoint", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile missing from %q", body)
	}
}

// A SIGHUP sent the moment the port answers, as a supervisor's reload
// right after start would, must reload halo and not kill it. (The window in
// which an earlier halo died was only microseconds wide, so this guards the
// order of start-up rather than reproducing that race reliably.)
func TestSIGHUPAsSoonAsListeningReloads(t *testing.T) {
	port, cfg := tcpConfigFile(t)
	h := startHalo(t, "run", "-c", cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("halo never listened: %v", err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Contains(h.stderr.String(), "reloaded") })
	select {
	case err := <-h.done:
		h.done <- err
		t.Fatalf("halo exited after SIGHUP: %v", err)
	default:
	}
}

// An idle keep-alive client connection costs the stack its goroutine grew
// for its first request, kept while it idles: 4 KiB when the request path
// stays shallow, 8 KiB once a frame too many pushes it over (at 10,000
// connections that is 40 MiB; benchmark scenario 7 found it once). The
// real binary is measured through -pprof, so that no test goroutine counts.
func TestIdleConnectionsKeepSmallStacks(t *testing.T) {
	pprofPort := testnet.FreePort(t)
	_, base := startHTTPHalo(t, startBulkBackend(t), "-pprof", fmt.Sprintf("127.0.0.1:%d", pprofPort))
	addr := strings.TrimPrefix(base, "http://")
	stack := func() int64 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", pprofPort))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var inuse, sys int64
		for _, line := range strings.Split(string(body), "\n") {
			if _, err := fmt.Sscanf(line, "# Stack = %d / %d", &inuse, &sys); err == nil {
				return inuse
			}
		}
		t.Fatalf("no stack statistics in the heap profile")
		return 0
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func(n int) {
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /upload?nocatalog HTTP/1.1\r\nHost: keystone.example:5000\r\nUser-Agent: python-keystoneclient\r\nAccept: application/json\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The first connections pay for what starts once (pools, timers).
	open(100)
	before := stack()
	const n = 1000
	open(n)
	per := float64(stack()-before) / n
	t.Logf("stack held per idle client connection: %.0f bytes", per)
	if per > 5<<10 {
		t.Fatalf("each idle client connection holds %.0f bytes of stack, want 4 KiB stacks (at most 5 KiB with noise)", per)
	}
}
