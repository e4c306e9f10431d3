package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// modeBackend answers with whether the request asked to close, and counts
// the connections it accepted.
func modeBackend(t *testing.T, name string) (*testBackend, *atomic.Int64) {
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "close=%v", r.Close) }),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
	}
	b := &testBackend{name: name, ln: ln, addr: ln.Addr().String(), srv: srv}
	go srv.Serve(ln)
	t.Cleanup(b.kill)
	return b, &conns
}

// threeRequests sends three requests, each on the connection the previous
// one left open if it did, and returns the bodies, how many client
// connections it took, and whether the last response said close.
func threeRequests(t *testing.T, addr string) (bodies []string, clientConns int, lastClose bool) {
	t.Helper()
	var c net.Conn
	var r *bufio.Reader
	for i := range 3 {
		if c == nil {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r = bufio.NewReader(c)
			clientConns++
		}
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		bodies = append(bodies, string(b))
		lastClose = resp.Close
		if resp.Close {
			c.Close()
			c = nil
		}
	}
	if c != nil {
		c.Close()
	}
	return bodies, clientConns, lastClose
}

func TestHTTPConnectionModes(t *testing.T) {
	for _, tc := range []struct {
		name, feOpt, beOpt string
		serverSawClose     bool
		serverConns        int64
		clientConns        int
	}{
		{"keep-alive by default", "", "", false, 1, 1},
		{"http-server-close", "http-server-close: true", "", true, 3, 1},
		{"http-server-close on the backend", "", "http-server-close: true", true, 3, 1},
		{"http-pretend-keepalive", "http-server-close: true, http-pretend-keepalive: true", "", false, 3, 1},
		{"httpclose", "httpclose: true", "", true, 3, 3},
		{"httpclose on the backend wins over keep-alive", "http-keep-alive: true", "httpclose: true", true, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, conns := modeBackend(t, "a")
			p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {`+tc.feOpt+`}}
backends:
  be: {servers: [{name: a, address: "{{a}}"}], option: {`+tc.beOpt+`}}
`, a)
			bodies, clientConns, _ := threeRequests(t, frontendAddr(t, p, "fe"))
			want := fmt.Sprintf("close=%v", tc.serverSawClose)
			for i, b := range bodies {
				if b != want {
					t.Errorf("request %d: the server saw %s, want %s", i, b, want)
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for conns.Load() < tc.serverConns && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := conns.Load(); got != tc.serverConns || clientConns != tc.clientConns {
				t.Errorf("three requests took %d server and %d client connections, want %d and %d", got, clientConns, tc.serverConns, tc.clientConns)
			}
		})
	}
}

// TestServerErrorsKeepClientConnection: halo's 502, 503 and 504 leave the
// client connection open for its next request, as HAProxy 2.6's do.
func TestServerErrorsKeepClientConnection(t *testing.T) {
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Read(make([]byte, 4096))
				io.WriteString(c, "garbage\r\n\r\n")
				c.Close()
			}()
		}
	}()
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered, until the test ends
		}
	}()
	p := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeout: {connect: 1s, client: 5s, server: 300ms}}
frontends:
  dead: {bind: "127.0.0.1:0", default_backend: dead}
  none: {bind: "127.0.0.1:0", default_backend: none}
  bad: {bind: "127.0.0.1:0", default_backend: bad}
  slow: {bind: "127.0.0.1:0", default_backend: slow}
backends:
  dead: {servers: [{name: s, address: "127.0.0.1:%d"}]}
  none: {}
  bad: {servers: [{name: s, address: "%s"}]}
  slow: {servers: [{name: s, address: "%s"}]}
`, testnetFreePort(t), garbage.Addr(), stall.Addr()))
	for fe, status := range map[string]int{"dead": 503, "none": 503, "bad": 502, "slow": 504} {
		c, err := net.Dial("tcp", frontendAddr(t, p, fe))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for i := range 2 {
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("%s: request %d on one connection: %v", fe, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != status || resp.Close {
				t.Errorf("%s: request %d: %d, close %v; want %d on an open connection", fe, i, resp.StatusCode, resp.Close, status)
			}
		}
		c.Close()
	}
}

// testnetFreePort is a port nothing listens on.
func testnetFreePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
