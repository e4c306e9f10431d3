package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	"github.com/valyala/fasthttp"
)

// rawServer answers the first request on each connection with resp and
// reports on closed whether halo then closed the connection rather than
// send another request on it.
func rawServer(t *testing.T, resp string) (addr string, closed chan bool) {
	t.Helper()
	closed = make(chan bool, 4)
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := br.ReadByte()
		closed <- err == io.EOF
	})
	return ln.Addr().String(), closed
}

// getThrough starts halo in front of the server at addr and GETs "/".
func getThrough(t *testing.T, addr string) (string, int) {
	t.Helper()
	p := startProxy(t, httpConfig, &testBackend{name: "a", addr: addr})
	body, status, err := httpGet(http.DefaultClient, "http://"+frontendAddr(t, p, "fe")+"/")
	if err != nil {
		t.Fatal(err)
	}
	return body, status
}

func TestInvalidResponsesAre502AndCloseTheServerConnection(t *testing.T) {
	for _, c := range []struct{ name, resp string }{
		{"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"two content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"},
		{"invalid status line", "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok"},
		{"http/2 status line", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"},
		{"body longer than content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"},
		{"transfer-encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, closed := rawServer(t, c.resp)
			body, status := getThrough(t, addr)
			if status != http.StatusBadGateway {
				t.Fatalf("got %d %q, want 502", status, body)
			}
			if strings.Contains(body, "evil") || strings.Contains(body, "ok") {
				t.Errorf("the server's bytes reached the client: %q", body)
			}
			select {
			case ok := <-closed:
				if !ok {
					t.Error("halo sent more on the server connection instead of closing it")
				}
			case <-time.After(3 * time.Second):
				t.Error("halo kept the server connection open")
			}
		})
	}
}

func TestValidResponsesPass(t *testing.T) {
	for _, c := range []struct{ name, resp, body string }{
		{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"chunked with leading zeros", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n02\r\nok\r\n0\r\n\r\n", "ok"},
		{"obs-text in a value", "HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\nContent-Length: 2\r\n\r\nok", "ok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := rawServer(t, c.resp)
			if body, status := getThrough(t, addr); status != 200 || body != c.body {
				t.Fatalf("got %d %q, want 200 %q", status, body, c.body)
			}
		})
	}
}

// TestBadRequestsAreKeptForShowErrors checks what the runtime API's "show
// errors" will read: the last refused request, with the offending byte
// and its position, and that the response and counters say 400.
func TestBadRequestsAreKeptForShowErrors(t *testing.T) {
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, httpConfig, a)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const req = "GET / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || status != "HTTP/1.1 400 Bad request\r\n" {
		t.Fatalf("got %q, %v; want a 400", status, err)
	}
	b := p.LastBadRequest("fe")
	if b == nil {
		t.Fatal("no bad request kept")
	}
	at := int64(strings.Index(req, " Length"))
	if b.Err.Status != 400 || b.Err.Offset != at || b.Err.Byte != ' ' || b.At < 0 || b.Bytes[b.At] != ' ' ||
		!strings.HasPrefix(string(b.Bytes[b.At:]), " Length: 5") {
		t.Errorf("kept %+v, bytes %q at %d; want 400 at stream offset %d, the space", b.Err, b.Bytes, b.At, at)
	}
	if got := p.Snapshot().frontends[0].state.HTTPStatus[4].Load(); got != 1 {
		t.Errorf("frontend counted %d 4xx, want 1", got)
	}
}

// TestDroppingHopFieldsAllocatesNothing covers the path every request of
// python-requests takes ("Connection: keep-alive"), which the forward rig
// does not.
func TestDroppingHopFieldsAllocatesNothing(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.DisableNormalizing()
	raw := "GET /v3 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Trace\r\nX-Trace: 1\r\nkeep-alive: timeout=5\r\nTE: trailers\r\n\r\n"
	if err := ctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var upgrading bool
	if n := testing.AllocsPerRun(100, func() {
		if err := prepareRequest(&ctx, &upgrading); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("prepareRequest allocates %.1f times", n)
	}
	for _, name := range []string{"Connection", "X-Trace", "keep-alive", "TE"} {
		if v := ctx.Request.Header.Peek(name); v != nil {
			t.Errorf("%s: %q was kept", name, v)
		}
	}
}
