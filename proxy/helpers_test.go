package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// backend is a real server on 127.0.0.1:0 used as a proxied server.
type testBackend struct {
	name string
	ln   net.Listener
	addr string
	srv  *http.Server
}

// startHTTPBackend serves HTTP; every response body is the server's name,
// and response headers echo what the proxy sent.
func startHTTPBackend(t *testing.T, name string, handler http.HandlerFunc) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Seen-Host", r.Host)
			w.Header().Set("X-Seen-XFF", strings.Join(r.Header.Values("X-Forwarded-For"), ","))
			w.Header().Set("X-Seen-Proxy-Authorization", r.Header.Get("Proxy-Authorization"))
			w.Header().Set("X-Seen-Connection", strings.Join(r.Header.Values("Connection"), ","))
			w.Header().Set("X-Seen-Keep-Alive", r.Header.Get("Keep-Alive"))
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, name)
		}
	}
	b := &testBackend{name: name, ln: ln, addr: ln.Addr().String(), srv: &http.Server{Handler: handler}}
	go b.srv.Serve(ln)
	t.Cleanup(b.kill)
	return b
}

// kill stops the backend at once, closing its connections.
func (b *testBackend) kill() {
	if b.srv != nil {
		b.srv.Close()
	}
	b.ln.Close()
}

// restart listens again on the same address.
func (b *testBackend) restartHTTP(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.ln = ln
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, b.name) })}
	go b.srv.Serve(ln)
}

// startTCPBackend serves a line protocol: for each line received it answers
// with its name and a newline; on EOF it writes "bye from NAME" and closes.
func startTCPBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{name: name, ln: ln, addr: ln.Addr().String()}
	go serveTCPLines(ln, name)
	t.Cleanup(b.kill)
	return b
}

func (b *testBackend) restartTCP(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.ln = ln
	go serveTCPLines(ln, b.name)
}

func serveTCPLines(ln net.Listener, name string) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					fmt.Fprintf(c, "bye from %s\n", name)
					return
				}
				fmt.Fprintf(c, "%s\n", name)
			}
		}()
	}
}

// startProxy applies the YAML configuration (with {{name}} replaced by the
// address of each backend) and returns the running proxy.
func startProxy(t *testing.T, yaml string, backends ...*testBackend) *Proxy {
	t.Helper()
	p := New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err := p.Apply(parseConfig(t, yaml, backends...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// startLoggedProxy is startProxy whose log lines the test reads: the
// access lines among them.
func startLoggedProxy(t *testing.T, yaml string, backends ...*testBackend) (*Proxy, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	if err := p.Apply(parseConfig(t, yaml, backends...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p, logs
}

func parseConfig(t testing.TB, yaml string, backends ...*testBackend) *config.Config {
	t.Helper()
	for _, b := range backends {
		yaml = strings.ReplaceAll(yaml, "{{"+b.name+"}}", b.addr)
	}
	cfg, err := config.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

func frontendAddr(t *testing.T, p *Proxy, name string) string {
	t.Helper()
	addrs := p.Addrs(name)
	if len(addrs) == 0 {
		t.Fatalf("frontend %s has no listener", name)
	}
	return addrs[0].String()
}

// tcpAsk opens a connection, sends one line and returns the answer line.
func tcpAsk(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func httpGet(client *http.Client, url string) (string, int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode, err
}

// waitFor polls cond every 10ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func httpClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// oneServerConfig is frontend fe on a free port in front of backend be with
// the single server a (a test backend named "a"), under the given defaults.
func oneServerConfig(defaults string) string {
	return `
defaults: ` + defaults + `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
}
