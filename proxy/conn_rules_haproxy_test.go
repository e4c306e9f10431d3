package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// connRulesRules are the rules of the connection-scope differential, in
// HAProxy's words: a sess variable set by a connection rule and by a
// request, one txn variable, a counter tracked by a connection rule and
// read by each request, and a content rule that rejects a request of a
// kept-alive connection.
var connRulesRules = []string{
	"tcp-request connection track-sc0 src",
	"tcp-request connection set-var(sess.a) str(conn)",
	"tcp-request content reject if { path_beg /reject }",
	"http-request set-var(sess.n) str(set) if { path /set }",
	"http-request set-var(txn.t) str(req) if { path /set }",
	`http-request return status 200 content-type text/plain lf-string "a=%[var(sess.a)] n=%[var(sess.n)] t=%[var(txn.t)] cnt=%[sc0_http_req_cnt] conn=%[sc0_conn_cnt]"`,
}

// connRulesExchange sends reqs (paths) pipelined on one connection from
// 127.0.0.7 and returns the bodies answered, in order, then "closed" once
// the proxy closed the connection before answering every request.
func connRulesExchange(t *testing.T, addr string, paths ...string) []string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var req strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", p)
	}
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var bodies []string
	for range paths {
		length := -1
		line, err := br.ReadString('\n')
		if err != nil {
			return append(bodies, "closed")
		}
		for line != "\r\n" {
			name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
			if strings.EqualFold(name, "content-length") {
				fmt.Sscan(strings.TrimSpace(value), &length)
			}
			if line, err = br.ReadString('\n'); err != nil {
				t.Fatalf("reading a response head: %v", err)
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("reading a body of %d bytes: %v", length, err)
		}
		bodies = append(bodies, string(body))
	}
	return bodies
}

// Rules whose state lives as long as the connection, against the real
// HAProxy: a sess variable is seen by every later request of the
// connection and a txn one only by its own; what a tcp-request connection
// rule tracks counts each request (sc0_http_req_cnt) and each connection
// (sc0_conn_cnt); a tcp-request content rule in mode http runs on each
// request, and its reject closes the connection without an answer.
func TestConnectionScopeRulesAsHAProxy(t *testing.T) {
	haproxy := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	startHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  stick-table type ip size 100k expire 30s store http_req_cnt,conn_cnt
  %s
`, haproxy, strings.Join(connRulesRules, "\n  ")), haproxy)
	var yaml strings.Builder
	yaml.WriteString(`
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_cnt,conn_cnt
    tcp-request:
`)
	for _, r := range connRulesRules[:3] {
		fmt.Fprintf(&yaml, "      - %s\n", strings.TrimPrefix(r, "tcp-request "))
	}
	yaml.WriteString("    http-request:\n")
	for _, r := range connRulesRules[3:] {
		fmt.Fprintf(&yaml, "      - '%s'\n", strings.TrimPrefix(r, "http-request "))
	}
	yaml.WriteString(`    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`)
	p := startProxy(t, yaml.String(), startHTTPBackend(t, "h", nil))
	halo := frontendAddr(t, p, "fe")
	conns := [][]string{{"/set", "/b"}, {"/c", "/reject", "/d"}, {"/e"}}
	for i, paths := range conns {
		want := connRulesExchange(t, haproxy, paths...)
		got := connRulesExchange(t, halo, paths...)
		if !slices.Equal(got, want) {
			t.Errorf("connection %d (%v): halo answered %q, HAProxy %q", i+1, paths, got, want)
		}
	}
	// What HAProxy 2.6 answered when this was written; the test compares
	// against the installed one, this only keeps it from passing on two
	// proxies that agree on nothing at all.
	if got := connRulesExchange(t, halo, "/set", "/b"); !slices.Equal(got, []string{
		"a=conn n=set t=req cnt=5 conn=4", "a=conn n=set t= cnt=6 conn=4"}) {
		t.Errorf("a fourth connection: %q", got)
	}
}
