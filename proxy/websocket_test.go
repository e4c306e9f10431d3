package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// wsBackend is a real WebSocket server (gorilla/websocket): /echo echoes
// every message; /stream?n=N sends N bytes of a known pattern in binary
// messages of 64 KiB, as a noVNC console's framebuffer stream would come.
func wsBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-Served-By": {name}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(kind, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		p := &pattern{}
		for sent := int64(0); sent < n; {
			chunk := buf[:min(int64(len(buf)), n-sent)]
			p.Read(chunk)
			if err := c.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
				return
			}
			sent += int64(len(chunk))
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
		c.ReadMessage() // the client's close
	})
	return startHTTPBackend(t, name, mux.ServeHTTP)
}

func wsConfig(tunnel string) string {
	return `
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s` + tunnel + `}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {httplog: true}}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
}

func wsDial(t testing.TB, addr, path string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 64 << 10}
	c, resp, err := d.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("WebSocket handshake through halo: %v", err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Served-By") == "" && path == "/echo" {
		t.Fatalf("handshake answered %d %v", resp.StatusCode, resp.Header)
	}
	return c
}

// TestWebSocketEcho opens a WebSocket through halo, exchanges text and
// binary messages, and checks the tunnel's access line: status 101, its
// bytes, a clean termination.
func TestWebSocketEcho(t *testing.T) {
	a := wsBackend(t, "a")
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	if err := p.Apply(parseConfig(t, wsConfig(""), a)); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	c := wsDial(t, frontendAddr(t, p, "fe"), "/echo")
	for i := range 10 {
		kind, msg := websocket.TextMessage, []byte(fmt.Sprintf("hello %d", i))
		if i%2 == 1 {
			kind, msg = websocket.BinaryMessage, bytes.Repeat([]byte{byte(i)}, 1000*i)
		}
		if err := c.WriteMessage(kind, msg); err != nil {
			t.Fatal(err)
		}
		gotKind, got, err := c.ReadMessage()
		if err != nil || gotKind != kind || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: kind %d, %d bytes, %v", i, gotKind, len(got), err)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.ReadMessage()
	c.Close()
	var line string
	waitFor(t, 5*time.Second, "the tunnel's access line", func() bool {
		for _, e := range logs.FilterLoggerName("access").All() {
			line = e.Message
		}
		return line != ""
	})
	for _, want := range []string{" fe be/a ", " 101 ", "\"GET /echo HTTP/1.1\""} {
		if !strings.Contains(line, want) {
			t.Errorf("access line %q lacks %q", line, want)
		}
	}
	st := p.current.Load().frontendsByName["fe"].state
	if st.HTTPStatus[1].Load() != 1 || st.BytesOut.Load() < 25000 {
		t.Errorf("counted %d 1xx responses and %d bytes out, want 1 and the messages' bytes", st.HTTPStatus[1].Load(), st.BytesOut.Load())
	}
}

// TestTimeoutTunnelClosesIdleWebSocket: an idle tunnel closes at the
// backend's timeout tunnel, not at timeout client or server.
func TestTimeoutTunnelClosesIdleWebSocket(t *testing.T) {
	a := wsBackend(t, "a")
	p := startProxy(t, wsConfig(", tunnel: 600ms"), a)
	c := wsDial(t, frontendAddr(t, p, "fe"), "/echo")
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ReadMessage()
	idle := time.Since(start)
	t.Logf("idle tunnel closed after %v (timeout tunnel 600ms)", idle.Round(time.Millisecond))
	if err == nil || idle < 550*time.Millisecond || idle > 1200*time.Millisecond {
		t.Errorf("idle tunnel ended after %v with %v, want about 600ms", idle, err)
	}
}

// TestWebSocketBinaryStream passes a noVNC-style binary stream through the
// tunnel and compares its SHA-256 with the pattern's: 1 GiB without the
// race detector, 64 MiB with it.
func TestWebSocketBinaryStream(t *testing.T) {
	size := int64(1 << 30)
	if raceEnabled || testing.Short() {
		size = 64 << 20
	}
	a := wsBackend(t, "a")
	p := startProxy(t, wsConfig(""), a)
	c := wsDial(t, frontendAddr(t, p, "fe"), fmt.Sprintf("/stream?n=%d", size))
	defer c.Close()
	got := sha256.New()
	var n int64
	start := time.Now()
	for {
		kind, r, err := c.NextReader()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				break
			}
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if kind != websocket.BinaryMessage {
			t.Fatalf("message kind %d", kind)
		}
		m, _ := io.Copy(got, r)
		n += m
	}
	want := sha256.New()
	io.CopyN(want, &pattern{}, size)
	t.Logf("%d MiB through the tunnel in %v", n>>20, time.Since(start).Round(time.Millisecond))
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("received %d bytes (sha256 %x), want %d (%x)", n, got.Sum(nil), size, want.Sum(nil))
	}
}

// TestWebSocketsSurviveReload keeps many WebSocket connections exchanging
// messages while the configuration is reloaded: none fails. 1,000
// connections for 30 s without the race detector, 100 for 3 s with it.
func TestWebSocketsSurviveReload(t *testing.T) {
	conns, length := 1000, 30*time.Second
	if raceEnabled || testing.Short() {
		conns, length = 100, 3*time.Second
	}
	a, b := wsBackend(t, "a"), wsBackend(t, "b")
	cfg := func(weight int) string {
		return fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  fe: {bind: "127.0.0.1:%%d", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}", weight: %d}, {name: b, address: "{{b}}"}]}
`, weight)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := startProxy(t, fmt.Sprintf(cfg(1), port), a, b)
	addr := frontendAddr(t, p, "fe")
	var sent, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ws := make([]*websocket.Conn, conns)
	for i := range ws {
		ws[i] = wsDial(t, addr, "/echo")
	}
	for i, c := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			msg := make([]byte, 64)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				binary.BigEndian.PutUint64(msg, uint64(i)<<32|uint64(k))
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				err := c.WriteMessage(websocket.BinaryMessage, msg)
				var got []byte
				if err == nil {
					_, got, err = c.ReadMessage()
				}
				if err == nil && !bytes.Equal(got, msg) {
					err = fmt.Errorf("echo %x, sent %x", got, msg)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				sent.Add(1)
			}
		}()
	}
	time.Sleep(length / 2)
	if err := p.Apply(parseConfig(t, fmt.Sprintf(cfg(3), port), a, b)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(length / 2)
	close(stop)
	wg.Wait()
	t.Logf("%d WebSocket connections, %d messages echoed over %v with a reload half-way, %d failed", conns, sent.Load(), length, failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d connections failed; first: %v", failed.Load(), *firstErr.Load())
	}
}

// TestUpgradeHeadersForwarded: an upgrade request reaches the server with
// Connection: upgrade and its Upgrade; h2c and a plain request's Upgrade
// do not.
func TestUpgradeHeadersForwarded(t *testing.T) {
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "connection=%s upgrade=%s", r.Header.Get("Connection"), r.Header.Get("Upgrade"))
	})
	p := startProxy(t, wsConfig(""), a)
	for _, tc := range []struct{ head, want string }{
		{"Connection: Upgrade\r\nUpgrade: foo/2", "connection=upgrade upgrade=foo/2"},
		{"Connection: keep-alive, upgrade\r\nUpgrade: websocket", "connection=upgrade upgrade=websocket"},
		{"Upgrade: websocket", "connection= upgrade="},
		{"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA", "connection= upgrade="},
	} {
		c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n", tc.head)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if string(body) != tc.want {
			t.Errorf("%q: the server saw %q, want %q", tc.head, body, tc.want)
		}
	}
}
