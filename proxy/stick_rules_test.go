package proxy

import (
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/sticktable"
)

// A rate limit as HAProxy's users write it: the 51st request of a second
// from one source is denied, while another source passes; the counters
// are in show table's data (read through the table here).
func TestRateLimitBySource(t *testing.T) {
	h := startHTTPBackend(t, "h", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_rate(10s),http_req_cnt,http_err_cnt
    http-request:
      - track-sc0 src
      - deny deny_status 429 if { sc_http_req_rate(0) gt 50 }
    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`
	p := startProxy(t, yaml, h)
	addr := frontendAddr(t, p, "fe")
	clientFrom := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	a, b := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	var codes []int
	for range 51 {
		_, code, err := httpGet(a, "http://"+addr+"/")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	for i, c := range codes[:50] {
		if c != 200 {
			t.Fatalf("request %d from 127.0.0.2: %d, want 200 (codes %v)", i+1, c, codes)
		}
	}
	if codes[50] != 429 {
		t.Errorf("the 51st request from 127.0.0.2: %d, want 429", codes[50])
	}
	if _, code, err := httpGet(b, "http://"+addr+"/"); err != nil || code != 200 {
		t.Errorf("127.0.0.3 meanwhile: %d %v, want 200", code, err)
	}
	tbl := p.StickTable("fe")
	if tbl == nil || tbl.Used() != 2 {
		t.Fatalf("the table holds %v entries, want 2", tbl)
	}
}

// Galera behind a VIP as the OpenStack guides configure it: "stick-table
// type ip size 1000" and "stick on dst" send every client of the VIP to
// one node (so that writes never conflict), whatever balance says, and
// keep them there across a reload; when that node goes DOWN they move, all
// to one other node.
func TestStickOnDstKeepsClientsOnOneNode(t *testing.T) {
	a, b, c := startTCPBackend(t, "a"), startTCPBackend(t, "b"), startTCPBackend(t, "c")
	yaml := `
defaults: {mode: tcp, timeout: {connect: 1s, client: 5s, server: 5s}}
listen:
  galera:
    bind: "127.0.0.1:0"
    balance: roundrobin
    stick-table: type ip size 1000
    stick: [on dst]
    servers:
      - {name: a, address: "{{a}}"}
      - {name: b, address: "{{b}}"}
      - {name: c, address: "{{c}}"}
`
	p := startProxy(t, yaml, a, b, c)
	addr := frontendAddr(t, p, "galera")
	served := func(src string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %s to %s: %v", src, addr, err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte("who\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		return strings.Fields(string(buf[:n]))[0]
	}
	sources := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}
	first := served(sources[0])
	for _, src := range sources[1:] {
		if got := served(src); got != first {
			t.Fatalf("client %s went to %s, the first client to %s: stick on dst must keep them together", src, got, first)
		}
	}
	// One key (the VIP), naming the first client's server.
	tbl := p.StickTable("galera")
	before := tableContents(tbl)
	if len(before) != 1 || tbl.Used() != 1 {
		t.Fatalf("the table holds %v (used %d), want one entry: the VIP", before, tbl.Used())
	}
	// A reload that changes something else keeps the table, its entry and
	// the node: the very table, not a copy, so that what sessions track
	// goes on counting in it.
	if err := p.Apply(parseConfig(t, strings.Replace(yaml, "client: 5s", "client: 6s", 1), a, b, c)); err != nil {
		t.Fatal(err)
	}
	if after := p.StickTable("galera"); after != tbl || !maps.Equal(tableContents(after), before) {
		t.Fatalf("the reload with an unchanged stick-table line left %v (the same table: %v), want %v", tableContents(after), after == tbl, before)
	}
	addr = frontendAddr(t, p, "galera") // port 0: the new bind is a new listener
	for _, src := range sources {
		if got := served(src); got != first {
			t.Fatalf("after the reload %s went to %s, want %s", src, got, first)
		}
	}
	if got := tableContents(tbl); !maps.Equal(got, before) {
		t.Fatalf("after the reload's sessions the table holds %v, want %v", got, before)
	}
	// The node goes DOWN: everyone moves to one other node.
	p.Registry().Lookup("galera", first).SetAdmin(balancer.AdminMaint)
	next := served(sources[0])
	if next == first {
		t.Fatalf("with %s in MAINT a client still went there", first)
	}
	for _, src := range sources[1:] {
		if got := served(src); got != next {
			t.Errorf("after %s left, %s went to %s, the first client to %s", first, src, got, next)
		}
	}
	// A changed stick-table line starts an empty table (as HAProxy's new
	// process would), which the next client fills again for everyone.
	resized := strings.Replace(strings.Replace(yaml, "client: 5s", "client: 6s", 1), "size 1000", "size 2000", 1)
	if err := p.Apply(parseConfig(t, resized, a, b, c)); err != nil {
		t.Fatal(err)
	}
	fresh := p.StickTable("galera")
	if fresh == tbl || fresh.Used() != 0 {
		t.Fatalf("a changed stick-table line kept the table (%v, the old one: %v)", tableContents(fresh), fresh == tbl)
	}
	addr = frontendAddr(t, p, "galera")
	again := served(sources[0])
	for _, src := range sources[1:] {
		if got := served(src); got != again {
			t.Errorf("with the new table %s went to %s, the first client to %s", src, got, again)
		}
	}
	if got := tableContents(fresh); len(got) != 1 {
		t.Errorf("the new table holds %v, want the VIP only", got)
	}
}

// tableContents is a table's entries, key to stored server id.
func tableContents(tbl *sticktable.Table) map[string]int {
	m := map[string]int{}
	tbl.Each(sticktable.Now(), func(v *sticktable.EntryView) bool {
		m[v.Key], _ = v.ServerID()
		return true
	})
	return m
}

// In mode http, stick on src keeps each client on its server, request
// after request, while different clients spread over the servers.
func TestStickOnSrcHTTP(t *testing.T) {
	a, b := startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: roundrobin
    stick-table: type ip size 1000 expire 30m
    stick: [on src]
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`
	p := startProxy(t, yaml, a, b)
	addr := frontendAddr(t, p, "fe")
	seen := map[string]bool{}
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		// A new connection per request: the server is the table's choice,
		// not the connection's.
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		first := ""
		for range 5 {
			body, code, err := httpGet(client, "http://"+addr+"/")
			if err != nil || code != 200 {
				t.Fatalf("%s: %d %v", src, code, err)
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("client %s moved from %s to %s", src, first, body)
			}
		}
		seen[first] = true
	}
	if len(seen) != 2 {
		t.Errorf("four clients all went to %v: the first choice of each is balanced", seen)
	}
}
