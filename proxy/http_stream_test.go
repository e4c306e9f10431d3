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
)

// A streamed body's bytes reach the client as they come from the server,
// as HAProxy forwards them: a server that sends 70 KiB and 1,000 bytes of
// a 100 KiB body and pauses has its client hold all of them during the
// pause. halo's writer held up to 4 KiB back until more came (3,045 bytes
// measured).
func TestStreamedBodyIsNotHeldBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const total, first = 100 << 10, 70<<10 + 1000
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", total)
		c.Write([]byte(strings.Repeat("a", first)))
		<-release
		c.Write([]byte(strings.Repeat("b", total-first)))
	}()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: s1, address: "`+ln.Addr().String()+`"}]}
`)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadFull(resp.Body, make([]byte, first))
	if err != nil {
		t.Fatalf("the client had %d of the %d bytes the server sent before its pause: %v", got, first, err)
	}
	released = true
	close(release)
	if rest, err := io.Copy(io.Discard, resp.Body); err != nil || rest != total-first {
		t.Errorf("the rest of the body: %d bytes, %v; want %d", rest, err, total-first)
	}
}
