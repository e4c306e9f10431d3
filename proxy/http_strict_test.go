package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawServer answers every request on each connection with resp and
// reports on closed whether halo closed the connection afterwards.
func rawServer(t *testing.T, resp string) (addr string, closed chan bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed = make(chan bool, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line != "\r\n" {
						continue
					}
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
					// Halo must close the connection rather than send
					// another request on it.
					_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
					_, err = br.ReadByte()
					closed <- err == io.EOF
					return
				}
			}()
		}
	}()
	return ln.Addr().String(), closed
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
			p := startProxy(t, httpConfig, &testBackend{name: "a", addr: addr})
			resp, err := http.Get("http://" + frontendAddr(t, p, "fe") + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
			}
			if strings.Contains(string(body), "evil") || strings.Contains(string(body), "ok") {
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
			p := startProxy(t, httpConfig, &testBackend{name: "a", addr: addr})
			resp, err := http.Get("http://" + frontendAddr(t, p, "fe") + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != c.body {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, c.body)
			}
		})
	}
}
