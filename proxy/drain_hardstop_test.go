package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// A response streamed (body > 64 KiB, head flushed) when a reload replaces
// its generation, and still streaming at hard-stop-after, is not cut; its
// head went out without "Connection: close", so once it ends the
// connection goes idle in a generation past hard-stop-after, which must
// close it then (drainHTTP keeps shutting the generation down until its
// set is empty), be forgotten, and not hold up Proxy.Shutdown.
func TestStreamedResponseOutlivesReplacedGenerationThenCloses(t *testing.T) {
	release := make(chan struct{})
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(200<<10))
		w.Write([]byte(strings.Repeat("x", 100<<10)))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte(strings.Repeat("y", 100<<10)))
	})
	port := testnet.FreePort(t)
	cfg := func(keepAlive int) string {
		return fmt.Sprintf(`
global: {hard-stop-after: 300ms}
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s, http-keep-alive: %ds}}
frontends:
  fe: {bind: "127.0.0.1:%d", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, keepAlive, port)
	}
	p := startProxy(t, cfg(20), a)
	old := p.Snapshot().frontendsByName["fe"].state.http.Load()
	c, br := openGet(t, fmt.Sprintf("127.0.0.1:%d", port))
	c.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 50<<10)); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(parseConfig(t, cfg(21), a)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // past hard-stop-after
	close(release)
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 150<<10 {
		t.Fatalf("response cut: %d %v", n, err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the connection stays open after its response in a generation past hard-stop-after: %v", err)
	}
	// The client sees the close when fasthttp's shutdown closes the idle
	// connection; drainHTTP forgets the generation once that shutdown
	// returns, which it polls for (every 100 ms in fasthttp).
	forgotten := func() bool {
		p.httpMu.Lock()
		defer p.httpMu.Unlock()
		_, running := p.httpServers[old]
		return !running
	}
	took := waitFor(t, 2*time.Second, "the replaced generation to be forgotten", forgotten)
	t.Logf("the replaced generation was forgotten %v after its last connection closed", took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err = p.Shutdown(ctx)
	t.Logf("Shutdown: %v after %s", err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Errorf("Shutdown did not close an idle keep-alive connection of a drained generation: %v", err)
	}
}

// In a process that took its sockets from a previous one, tableflip keeps
// a descriptor of each (Fds.used) until upg.Stop, which cmd/halo calls
// only after Shutdown returned: Shutdown must stop the socket listening
// for good (shutdown(2)), or while it drains the kernel would keep
// completing handshakes into a backlog nobody accepts, and new clients
// would hang instead of being refused.
func TestShutdownAfterUpgradeStopsListening(t *testing.T) {
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
		io.WriteString(w, "a")
	})
	addr := testnet.FreeAddr(t)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "` + addr + `", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
	cfg := parseConfig(t, yaml, a)
	old := startProxy(t, yaml, a)
	passed := passedFrom(t, old) // the copies tableflip keeps
	ctx0, cancel0 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel0()
	old.Handover(ctx0)
	p := startProxyWith(t, cfg, passed)
	go httpGet(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}, "http://"+addr+"/") // busy: Shutdown drains
	time.Sleep(300 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	time.Sleep(300 * time.Millisecond)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Error("while Shutdown drains, the bind still completes connections nobody will serve; want refused")
	}
	<-done
}
