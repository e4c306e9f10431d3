package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/halo-lb/halo/internal/panics"
)

// panicBackend serves / (a small body), /big (a body that streams through
// halo) and /echo (a WebSocket echo).
func panicBackend(t *testing.T) *testBackend {
	big := strings.Repeat("b", bigBody)
	up := websocket.Upgrader{}
	return startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			io.WriteString(w, big)
		case "/echo":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				kind, msg, err := c.ReadMessage()
				if err != nil || c.WriteMessage(kind, msg) != nil {
					return
				}
			}
		default:
			io.WriteString(w, "ok")
		}
	})
}

// bigBody is larger than smallBody: it streams.
const bigBody = 200 << 10

// A panic in each phase of a mode http request or connection is
// recovered: the panicking client gets what HAProxy's internal error
// gives (a 500, or a closed connection once nothing else can be sent),
// the access line says I, clients of 127.0.0.1 meanwhile all get their
// answers, and once the connections close nothing is left held: the
// frontend's, backend's and server's sessions, the server's slots (two,
// with queued requests waiting for them), the maxconn slots, the
// generation's connection set and the stick table's tracked conn_cur.
// Every panic is counted (eint, the process's count) and logged once with
// its stack.
func TestPanicInHTTPIsRecovered(t *testing.T) {
	const yaml = `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, queue: 5s}}
global: {maxconn: 100}
frontends:
  fe:
    bind: "127.0.0.1:0"
    maxconn: 50
    option: {httplog: true}
    stick-table: type ip size 100 expire 30s store conn_cur,http_req_cnt
    tcp-request: ["connection track-sc0 src"]
    http-request: ["track-sc1 src"]
    default_backend: be
backends:
  be: {servers: [{name: a, address: "{{a}}", maxconn: 2}]}
`
	cases := []struct {
		name  string
		point hookPoint
		// panicking sends one request that panics and checks what its
		// client saw.
		panicking func(t *testing.T, addr string)
		// term is the access line's termination state and status ("":
		// no access line); inBackend: the panic struck once the
		// request had its backend and server (their eint counts it).
		term, status string
		inBackend    bool
	}{
		{"after the request's rules", hookRules, expect500("/"), "IR--", "500", false},
		{"before forwarding", hookRequest, expect500("/"), "IC--", "500", true},
		{"with the response head", hookResponse, expect500("/"), "IH--", "500", true},
		{"with a head whose body would stream", hookResponse, expect500("/big"), "IH--", "500", true},
		{"streaming the body", hookStreamRead, expectTruncated("/big"), "ID--", "200", true},
		{"closing the stream", hookStreamClose, expectWhole("/big"), "", "", true},
		{"in the tunnel's client side", hookRelay, expectTunnelCut, "ID--", "101", true},
		{"once a tunnel ended", hookResponse, expectTunnelEnd, "ID--", "101", true},
		{"in the error handler", hookClientError, expectNoAnswer("GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n"), "", "", false},
		{"after the preamble", hookPreamble, expectNoAnswer("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			p, logs := startLoggedProxy(t, yaml, panicBackend(t))
			addr := frontendAddr(t, p, "fe")
			before := panics.Count()
			panicAt(t, tc.point)
			const n = 4
			good := goodHTTPLoad(t, addr)
			for range n {
				tc.panicking(t, addr)
			}
			good.wait(t)

			s := p.Snapshot()
			fe, be := s.frontendsByName["fe"], s.backendsByName["be"]
			srv := be.servers[0]
			waitFor(t, 5*time.Second, "every connection and session to end", func() bool {
				return fe.state.CurConns.Load() == 0 && p.active.Load() == 0 && be.counters.CurConns.Load() == 0 &&
					srv.state.CurConns() == 0 && len(fe.state.http.Load().conns.snapshot()) == 0
			})
			if q, any := be.queue.lengths(srv.member); q != 0 || any != 0 {
				t.Errorf("queues hold %d and %d sessions, want none", q, any)
			}
			expectSlotsFree(t, p, fe)
			expectUntracked(t, p, "fe", "127.0.0.1", "127.0.0.9")
			wantBackend := uint64(0)
			if tc.inBackend {
				wantBackend = n
			}
			if fe, be, srv := fe.state.InternalErrors.Load(), be.counters.InternalErrors.Load(), srv.state.InternalErrors.Load(); fe != n || be != wantBackend || srv != wantBackend {
				t.Errorf("eint: frontend %d, backend %d, server %d; want %d, %d, %d", fe, be, srv, n, wantBackend, wantBackend)
			}
			if got := panics.Count() - before; got != n {
				t.Errorf("the process counted %d panics, want %d", got, n)
			}
			expectPanicLines(t, logs, n, tc.inBackend)
			if tc.term != "" {
				lines := logs.FilterLoggerName("access").FilterMessageSnippet(" " + tc.status + " ").FilterMessageSnippet(" " + tc.term + " ")
				if lines.Len() != n {
					t.Errorf("%d access lines with status %s and termination %s, want %d:\n%s", lines.Len(), tc.status, tc.term, n, accessLines(logs))
				}
			}
		})
	}
}

// goodHTTPLoad runs three kept-alive clients from 127.0.0.1 sending 30
// requests each, alternating / and /big.
func goodHTTPLoad(t *testing.T, addr string) *goodLoad {
	l := &goodLoad{}
	for c := range 3 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).DialContext}
			defer tr.CloseIdleConnections()
			client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
			for i := range 30 {
				path, want := "/", 2
				if (i+c)%2 == 1 {
					path, want = "/big", bigBody
				}
				body, code, err := httpGet(client, "http://"+addr+path)
				l.mu.Lock()
				if err != nil || code != 200 || len(body) != want {
					l.failed = append(l.failed, fmt.Sprintf("%s: %d %d bytes %v", path, code, len(body), err))
				}
				l.done++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// rawRequest sends a request from panickingIP on a connection of its own
// and reads the response; the connection is returned for what follows.
func rawRequest(t *testing.T, addr, req string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	c, err := dialFrom(panickingIP, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	return resp, br, c
}

// expect500: the request is answered 500 with halo's page, and the
// connection closes after it.
func expect500(path string) func(*testing.T, string) {
	return func(t *testing.T, addr string) {
		resp, br, _ := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 500 || !resp.Close || !strings.Contains(string(body), "500 Internal Server Error") {
			t.Errorf("GET %s: %d close=%v %q, want halo's 500 and the connection closed", path, resp.StatusCode, resp.Close, body)
		}
		if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("after the 500 the connection still reads %d bytes (%v)", n, err)
		}
	}
}

// expectTruncated: the response started (200, its length) and ends
// short, its connection closed.
func expectTruncated(path string) func(*testing.T, string) {
	return func(t *testing.T, addr string) {
		resp, _, _ := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || err == nil || len(body) >= bigBody {
			t.Errorf("GET %s: %d, %d bytes (%v), want a 200 cut short", path, resp.StatusCode, len(body), err)
		}
	}
}

// expectWhole: the body was sent whole before the panic struck.
func expectWhole(path string) func(*testing.T, string) {
	return func(t *testing.T, addr string) {
		resp, _, _ := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || err != nil || len(body) != bigBody {
			t.Errorf("GET %s: %d, %d bytes (%v), want the whole 200", path, resp.StatusCode, len(body), err)
		}
	}
}

// expectNoAnswer: the connection closes without a byte of answer.
func expectNoAnswer(req string) func(*testing.T, string) {
	return func(t *testing.T, addr string) {
		c, err := dialFrom(panickingIP, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		got, err := io.ReadAll(c)
		if len(got) != 0 || isTimeout(err) {
			t.Errorf("%q was answered %q (%v), want the connection closed", req, got, err)
		}
	}
}

func wsDialFrom(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(_, a string) (net.Conn, error) { return dialFrom(panickingIP, a) }}
	c, resp, err := d.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatalf("WebSocket handshake through halo: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake answered %d", resp.StatusCode)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

// expectTunnelCut: the switched connection closes before a message
// comes back.
func expectTunnelCut(t *testing.T, addr string) {
	c := wsDialFrom(t, addr)
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	if _, msg, err := c.ReadMessage(); err == nil || isTimeout(err) {
		t.Errorf("the tunnel answered %q (%v), want it closed", msg, err)
	}
	c.Close()
}

// expectTunnelEnd: the tunnel works to its end; what panics after it must
// not write a 500 into it.
func expectTunnelEnd(t *testing.T, addr string) {
	c := wsDialFrom(t, addr)
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hello" {
		t.Fatalf("echo through the tunnel: %q %v", msg, err)
	}
	// The closing handshake, then the client's close, end the tunnel.
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("the tunnel's end: %v, want the server's close", err)
	}
	c.Close()
}
