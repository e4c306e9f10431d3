package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// mixedLoad is the traffic of the reload and upgrade tests: kept-alive
// and new-connection HTTP clients, TLS clients, 1 GiB uploads and
// downloads, long TCP sessions and WebSocket sessions, each checking what
// it gets. Clients are raw where a library would hide a failure (Go's
// http.Transport silently retries a request on a kept-alive connection the
// server closed). Every loop is bounded and ends at stop.
type mixedLoad struct {
	stopping chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	done     map[string]int   // completed operations by kind
	bytes    map[string]int64 // bytes moved by kind
	refused  []string         // connections refused or reset at connect
	failed   []string         // requests that got no right answer
	cut      []string         // long streams that ended early
	started  time.Time
	finished time.Duration
}

func newMixedLoad() *mixedLoad {
	return &mixedLoad{stopping: make(chan struct{}), done: map[string]int{}, bytes: map[string]int64{}, started: time.Now()}
}

func (l *mixedLoad) stopped() bool {
	select {
	case <-l.stopping:
		return true
	default:
		return false
	}
}

func (l *mixedLoad) record(kind string, n int64) {
	l.mu.Lock()
	l.done[kind]++
	l.bytes[kind] += n
	l.mu.Unlock()
}

func (l *mixedLoad) add(list *[]string, kind string, err error) {
	l.mu.Lock()
	*list = append(*list, fmt.Sprintf("%s at +%s: %v", kind, time.Since(l.started).Round(time.Millisecond), err))
	l.mu.Unlock()
}

// dial connects (with TLS when tc is set), counting a connection that
// cannot be made as refused and a failed handshake as a failed request.
func (l *mixedLoad) dial(kind, addr string, tc *tls.Config) (net.Conn, bool) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err == nil && tc != nil {
		tlc := tls.Client(c, tc)
		tlc.SetDeadline(time.Now().Add(5 * time.Second))
		if err = tlc.Handshake(); err == nil {
			tlc.SetDeadline(time.Time{})
			return tlc, true
		}
		c.Close()
		l.add(&l.failed, kind, fmt.Errorf("TLS handshake: %w", err))
		return nil, false
	}
	if err != nil {
		l.add(&l.refused, kind, err)
		return nil, false
	}
	return c, true
}

// keepAlive sends GET / after GET / on one connection, opening a new one
// only after a response that says the connection closes (or every
// perConn requests, so that new connections keep coming).
func (l *mixedLoad) keepAlive(kind, addr string, tc *tls.Config, workers, perConn int) {
	for range workers {
		l.wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			used := 0
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := 0; i < 1_000_000 && !l.stopped(); i++ {
				if c == nil || used == perConn {
					if c != nil {
						c.Close()
					}
					var ok bool
					if c, ok = l.dial(kind, addr, tc); !ok {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					br, used = bufio.NewReader(c), 0
				}
				used++
				resp, err := getOn(c, br, "/", used == perConn)
				if err != nil {
					l.add(&l.failed, kind, fmt.Errorf("request %d on its connection: %w", used, err))
					c.Close()
					c = nil
					continue
				}
				l.record(kind, 0)
				if resp.Close {
					c.Close()
					c = nil
				}
			}
		})
	}
}

// getOn sends one GET on c and reads its whole response; a status other
// than 200 is an error.
func getOn(c net.Conn, br *bufio.Reader, path string, closing bool) (*http.Response, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: halo.test\r\n"
	if closing {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp, nil
}

// bulk runs uploads (or downloads) of size bytes one after another on a
// new connection each, checking every byte and the count the server saw.
// A transfer under way when stop comes is finished.
func (l *mixedLoad) bulk(kind, addr string, upload bool, size int64) {
	l.wg.Go(func() {
		for i := 0; i < 1000 && !l.stopped(); i++ {
			c, ok := l.dial(kind, addr, nil)
			if !ok {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			n, err := transfer(c, upload, size)
			c.Close()
			if err != nil {
				l.add(&l.cut, kind, fmt.Errorf("after %d of %d bytes: %w", n, size, err))
				continue
			}
			l.record(kind, n)
		}
	})
}

func transfer(c net.Conn, upload bool, size int64) (int64, error) {
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	bw := bufio.NewWriterSize(c, 64<<10)
	br := bufio.NewReaderSize(c, 64<<10)
	if !upload {
		fmt.Fprintf(bw, "GET /download?bytes=%d HTTP/1.1\r\nHost: halo.test\r\nConnection: close\r\n\r\n", size)
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		n, err := checkPattern(resp.Body)
		if err == nil && n != size {
			err = errors.New("short body")
		}
		return n, err
	}
	fmt.Fprintf(bw, "POST /upload HTTP/1.1\r\nHost: halo.test\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size)
	sent, err := io.Copy(bw, &patternReader{n: size})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return sent, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return sent, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return sent, err
	}
	if resp.StatusCode != 200 {
		return sent, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if got, _ := strconv.ParseInt(string(body), 10, 64); got != size {
		return got, fmt.Errorf("the server counted %s bytes", body)
	}
	return size, nil
}

// tcpSessions keeps n TCP sessions open, each sending a numbered line
// every interval and checking its echo; a session ends cleanly after
// length and a new one starts (0: one session for the whole run).
func (l *mixedLoad) tcpSessions(kind, addr string, n int, interval, length time.Duration) {
	for s := range n {
		l.wg.Go(func() {
			for k := 0; k < 100_000 && !l.stopped(); k++ {
				if !l.tcpSession(kind, addr, s, interval, length) {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}

// tcpSession is one session of tcpSessions; false if it could not start.
func (l *mixedLoad) tcpSession(kind, addr string, s int, interval, length time.Duration) bool {
	c, ok := l.dial(kind, addr, nil)
	if !ok {
		return false
	}
	defer c.Close()
	br := bufio.NewReader(c)
	end := time.Now().Add(length)
	for i := 0; i < 1_000_000 && !l.stopped() && (length == 0 || time.Now().Before(end)); i++ {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line := fmt.Sprintf("session %d line %d\n", s, i)
		if _, err := io.WriteString(c, line); err != nil {
			l.add(&l.cut, kind, fmt.Errorf("line %d: %w", i, err))
			return true
		}
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			l.add(&l.cut, kind, fmt.Errorf("line %d: got %q, %v", i, got, err))
			return true
		}
		l.record(kind, int64(len(line)))
		time.Sleep(interval)
	}
	l.record(kind+" sessions", 0)
	return true
}

// webSockets keeps n WebSocket sessions open, each sending a message
// every interval and checking its echo; a session closes cleanly after
// length and a new one starts (0: one session for the whole run).
func (l *mixedLoad) webSockets(kind, url string, n int, interval, length time.Duration) {
	for s := range n {
		l.wg.Go(func() {
			for k := 0; k < 100_000 && !l.stopped(); k++ {
				if !l.webSocket(kind, url, s, interval, length) {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}

// webSocket is one session of webSockets; false if it could not start.
func (l *mixedLoad) webSocket(kind, url string, s int, interval, length time.Duration) bool {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			l.add(&l.refused, kind, err)
		} else {
			l.add(&l.failed, kind, err)
		}
		return false
	}
	defer c.Close()
	end := time.Now().Add(length)
	for i := 0; i < 1_000_000 && !l.stopped() && (length == 0 || time.Now().Before(end)); i++ {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("session %d message %d", s, i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			l.add(&l.cut, kind, fmt.Errorf("message %d: %w", i, err))
			return true
		}
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != msg {
			l.add(&l.cut, kind, fmt.Errorf("message %d: got %q, %v", i, got, err))
			return true
		}
		l.record(kind, int64(len(msg)))
		time.Sleep(interval)
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	l.record(kind+" sessions", 0)
	return true
}

// stop ends the load (transfers under way finish) and returns its report.
func (l *mixedLoad) stop() mixedReport {
	close(l.stopping)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finished = time.Since(l.started)
	return mixedReport{done: l.done, bytes: l.bytes, refused: l.refused, failed: l.failed, cut: l.cut, took: l.finished}
}

type mixedReport struct {
	done                 map[string]int
	bytes                map[string]int64
	refused, failed, cut []string
	took                 time.Duration
}

// failOnLosses fails t on every refused connection, failed request and
// truncated stream (the first five of each, and how many in all).
func (r mixedReport) failOnLosses(t *testing.T) {
	t.Helper()
	for _, list := range []struct {
		what string
		l    []string
	}{{"refused connection", r.refused}, {"failed request", r.failed}, {"truncated stream", r.cut}} {
		for i, s := range list.l {
			if i == 5 {
				t.Errorf("... %d of them in all", len(list.l))
				break
			}
			t.Errorf("%s: %s", list.what, s)
		}
	}
}

// String is the report's summary line: each kind's count (and bytes).
func (r mixedReport) String() string {
	kinds := make([]string, 0, len(r.done))
	for k := range r.done {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s %d", k, r.done[k])
		if n := r.bytes[k]; n >= 1<<30 {
			fmt.Fprintf(&b, " (%.1f GiB)", float64(n)/(1<<30))
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "in %s: %d refused connections, %d failed requests, %d truncated streams", r.took.Round(100*time.Millisecond), len(r.refused), len(r.failed), len(r.cut))
	return b.String()
}
