package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultServer is a raw TCP server on 127.0.0.1:0 that misbehaves on every
// connection in one way. Its handlers stop when the test ends: the
// listener and every connection are closed, the pauses cut short, and
// the cleanup waits for the handlers to return.
type faultServer struct {
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// startFaultServer serves misbehave on each connection, as a test
// backend named name (for parseConfig's {{name}}).
func startFaultServer(t *testing.T, name string, misbehave func(f *faultServer, c *net.TCPConn)) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &faultServer{done: make(chan struct{}), conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = true
			f.wg.Add(1)
			f.mu.Unlock()
			go func() {
				defer f.wg.Done()
				defer c.Close()
				misbehave(f, c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return &testBackend{name: name, ln: ln, addr: ln.Addr().String()}
}

// pause waits for d, or until the test ends (false).
func (f *faultServer) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
		return false
	case <-t.C:
		return true
	}
}

// hang waits until the test ends.
func (f *faultServer) hang() { <-f.done }

// readHead reads a request head, giving up after a few seconds.
func readHead(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		got = append(got, buf[:n]...)
	}
	return true
}

// reset closes c with a TCP RST (SO_LINGER 0) rather than a FIN.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// answerHead reads the request and writes head with Content-Length cl and
// the first n bytes of its body, and reports whether that went through.
func answerHead(c *net.TCPConn, cl, n int) bool {
	if !readHead(c) {
		return false
	}
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", cl, strings.Repeat("x", n))
	return err == nil
}

// faultReply is what a client got from the proxy in front of a faulty
// server.
type faultReply struct {
	status    int    // 0: no response head
	body      string // what came of the body
	truncated bool   // the body ended before its Content-Length
}

// faultRequest sends one request (GET, or POST with a one-byte body) on a
// new connection and reads the response to its end.
func faultRequest(t *testing.T, addr, method string) faultReply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " /fault HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n"
	if method == "POST" {
		req = "POST /fault HTTP/1.1\r\nHost: faults\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return faultReply{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := faultReply{status: resp.StatusCode, truncated: err != nil}
	if resp.StatusCode == 200 {
		r.body = string(body)
		if len(r.body) > 8 {
			r.body = fmt.Sprintf("%d bytes", len(body))
		}
	}
	return r
}

// tcpReply is what a mode tcp client got: the bytes, and whether the
// connection ended with a reset rather than an EOF.
type tcpReply struct {
	got   string
	reset bool
}

// tcpExchange sends a line and reads until the proxy closes the
// connection.
func tcpExchange(t *testing.T, addr string) tcpReply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil && strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the proxy did not close the connection: %v", err)
	}
	return tcpReply{got: string(got), reset: err != nil}
}

// accessLine is the part of an httplog or tcplog line (HAProxy's, or
// halo's) that a fault decides.
type accessLine struct {
	server  string // backend/server
	status  int    // httplog only
	term    string
	retries string // the last of actconn/feconn/beconn/srv_conn/retries
}

var (
	httpLogLine = regexp.MustCompile(`\] \S+ (\S+) \S+ (\d+) -?\d+ \S+ \S+ (\S{4}) \S+/(\S+) \S+`)
	tcpLogLine  = regexp.MustCompile(`\] \S+ (\S+) \S+ -?\d+ (\S{2}) \S+/(\S+) \S+`)
)

// parseAccessLine reads the fields of an httplog (http) or tcplog line.
func parseAccessLine(t *testing.T, line string, http bool) accessLine {
	t.Helper()
	if http {
		m := httpLogLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not an httplog line: %q", line)
		}
		var status int
		fmt.Sscan(m[2], &status)
		return accessLine{server: m[1], status: status, term: m[3], retries: m[4]}
	}
	m := tcpLogLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a tcplog line: %q", line)
	}
	return accessLine{server: m[1], term: m[2], retries: m[3]}
}
