package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpConfigFile writes a one-frontend mode tcp configuration on a free port
// and returns the port and the file.
func tcpConfigFile(t *testing.T) (int, string) {
	port := freePort(t)
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
	pprofPort := freePort(t)
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
