package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

// clustercheck answers as the clustercheck script of the OpenStack guide
// does on port 9200: 200 when the Galera node is synced, 503 otherwise.
type clustercheck struct {
	mu       sync.Mutex
	synced   bool
	lastLine string
	lastHdr  http.Header
}

func (c *clustercheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastLine = r.Method + " " + r.RequestURI + " " + r.Proto
	c.lastHdr = r.Header.Clone()
	if c.synced {
		io.WriteString(w, "Galera cluster node is synced.\r\n")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "Galera cluster node is not synced.\r\n")
}

func httpSpec(t *testing.T, expectKind, pattern string, not bool) *config.HTTPCheck {
	t.Helper()
	spec := &config.HTTPCheck{Method: "GET", URI: "/", Version: "HTTP/1.1", Headers: [][2]string{{"X-Check", "halo"}}}
	spec.Expect = config.HTTPExpect{Kind: config.ExpectKind(expectKind), Pattern: pattern, Not: not}
	switch expectKind {
	case "status":
		spec.Expect.StatusRanges = [][2]int{{200, 200}, {301, 308}}
	case "rstatus", "rstring":
		spec.Expect.Regexp = regexp.MustCompile(pattern)
	}
	return spec
}

func TestHTTPCheckerExpectations(t *testing.T) {
	cc := &clustercheck{synced: true}
	srv := httptest.NewServer(cc)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		kind, pattern string
		not           bool
		synced        bool
		want          Status
	}{
		{"", "", false, true, L7OK},
		{"", "", false, false, L7STS},
		{"status", "200,301-308", false, true, L7OK},
		{"status", "200,301-308", false, false, L7STS},
		{"status", "200,301-308", true, false, L7OK}, // ! status: a 503 passes
		{"rstatus", "^5", false, false, L7OK},
		{"rstatus", "^5", false, true, L7STS},
		{"string", "is synced", false, true, L7OK},
		{"string", "is synced", false, false, L7RSP},
		{"string", "not synced", true, true, L7OK},
		{"rstring", `node is (synced|donor)`, false, true, L7OK},
		{"rstring", `node is (synced|donor)`, false, false, L7RSP},
	}
	for _, tc := range cases {
		cc.mu.Lock()
		cc.synced = tc.synced
		cc.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := HTTPChecker{Spec: httpSpec(t, tc.kind, tc.pattern, tc.not)}.Check(ctx, addr)
		cancel()
		if r.Status != tc.want || r.OK != (tc.want == L7OK) {
			t.Errorf("expect %s %q not=%v, synced=%v: %s ok=%v (%s), want %s", tc.kind, tc.pattern, tc.not, tc.synced, r.Status, r.OK, r.Desc, tc.want)
		}
		if r.Desc == "" {
			t.Errorf("expect %s %q: no description", tc.kind, tc.pattern)
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.lastLine != "GET / HTTP/1.1" || cc.lastHdr.Get("X-Check") != "halo" {
		t.Errorf("server saw %q with X-Check %q", cc.lastLine, cc.lastHdr.Get("X-Check"))
	}
}

// rawServer reads one line of each connection and answers with reply.
func rawServer(t *testing.T, reply func(net.Conn)) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		reply(c)
	}).Addr().String()
}

func TestHTTPCheckerFailures(t *testing.T) {
	spec := &config.HTTPCheck{Method: "OPTIONS", URI: "/", Version: "HTTP/1.0"}
	check := func(addr string) Result {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		return HTTPChecker{Spec: spec}.Check(ctx, addr)
	}
	garbage := rawServer(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n") })
	if r := check(garbage); r.Status != L7RSP || r.OK {
		t.Errorf("not HTTP: %s (%s), want L7RSP", r.Status, r.Desc)
	}
	silent := rawServer(t, func(c net.Conn) { time.Sleep(time.Second) })
	if r := check(silent); r.Status != L7TOUT || r.OK {
		t.Errorf("no answer: %s (%s), want L7TOUT", r.Status, r.Desc)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	if r := check(closed); r.Status != L4CON || r.OK {
		t.Errorf("closed port: %s, want L4CON", r.Status)
	}
	ok := rawServer(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n") })
	if r := check(ok); r.Status != L7OK || !r.OK {
		t.Errorf("HTTP/1.0 200 without a body: %s (%s), want L7OK", r.Status, r.Desc)
	}
}

// FuzzHTTPCheckResponse: whatever a server answers, the check ends with one
// of the HTTP check statuses and never passes a response that is not a
// 2xx or 3xx HTTP response (the default expectation).
func FuzzHTTPCheckResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.0 503 Service Unavailable\r\n\r\nnot synced",
		"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"HTTP/1.1 99 Odd\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	spec := &config.HTTPCheck{Method: "GET", URI: "/", Version: "HTTP/1.1"}
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			server.SetDeadline(time.Now().Add(time.Second))
			bufio.NewReader(server).ReadString('\n')
			server.Write(reply)
		}()
		client.SetDeadline(time.Now().Add(time.Second))
		r := HTTPChecker{Spec: spec}.exchange(client, "127.0.0.1:9200")
		switch r.Status {
		case L7OK, L7STS, L7RSP, L7TOUT, L4CON:
		default:
			t.Fatalf("status %q for %q", r.Status, reply)
		}
		if r.OK {
			resp := string(reply)
			if !strings.HasPrefix(resp, "HTTP/") {
				t.Fatalf("passed a reply that is not HTTP: %q", reply)
			}
		}
	})
}
