package proxy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/sticktable"
)

// A rate limit as HAProxy's users write it, over a one-second window:
// requests 1 to 50 of a second from one source pass, the 51st is denied
// (403, deny's default) while another source passes, and once the window
// has slid past them the first source passes again. The window slides
// (HAProxy's freq_ctr): just after the second ends, the rate still counts
// the previous second's requests weighted by what is left of the current
// one, which the test reads from the table and checks against the bounds
// HAProxy's formula gives for the times it measured.
func TestRateLimitBySource(t *testing.T) {
	h := startHTTPBackend(t, "h", nil)
	yaml := `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_rate(1s),http_req_cnt
    http-request:
      - track-sc0 src
      - deny if { sc_http_req_rate(0) gt 50 }
    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`
	p := startProxy(t, yaml, h)
	addr := frontendAddr(t, p, "fe")
	tbl := p.StickTable("fe")
	clientFrom := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	get := func(c *http.Client) int {
		t.Helper()
		_, code, err := httpGet(c, "http://"+addr+"/")
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	// The period opens at the first request's arrival, somewhere in
	// [opened, answered] on the table's clock. 51 requests take a few
	// milliseconds; on a machine so loaded that they took most of the
	// second, the period may have turned under them, and the test starts
	// again with fresh sources rather than guess.
	for attempt := range 3 {
		src, other := fmt.Sprintf("127.0.0.%d", 10+2*attempt), fmt.Sprintf("127.0.0.%d", 11+2*attempt)
		a, b := clientFrom(src), clientFrom(other)
		opened := sticktable.Now()
		codes := []int{get(a)}
		answered := sticktable.Now()
		for range 50 {
			codes = append(codes, get(a))
		}
		if sticktable.Now()-opened > 700 {
			t.Logf("attempt %d: 51 requests took %d ms, too close to the period; again", attempt, sticktable.Now()-opened)
			continue
		}
		for i, c := range codes[:50] {
			if c != 200 {
				t.Fatalf("request %d from %s: %d, want 200 (codes %v)", i+1, src, c, codes)
			}
		}
		if codes[50] != 403 {
			t.Fatalf("the 51st request from %s within a second: %d, want 403", src, codes[50])
		}
		if code := get(b); code != 200 {
			t.Fatalf("%s meanwhile: %d, want 200", other, code)
		}
		// Just past the second: 51 requests (the denied one counts: it
		// was tracked before the deny) in the previous period, none in
		// this one. A fixed window would read 0 here.
		key := tbl.AddrKey(netip.MustParseAddr(src))
		time.Sleep(time.Duration(answered+1050-sticktable.Now()) * time.Millisecond)
		now := sticktable.Now()
		v, ok := tbl.View(key, now)
		if !ok {
			t.Fatalf("no entry for %s", src)
		}
		// HAProxy's read: past*(period-elapsed)/period, elapsed = now - start
		// with the start in [opened, answered].
		lo, hi := slidingRate(51, 1000, now-opened), slidingRate(51, 1000, now-answered)
		if got := v.Value(sticktable.HTTPReqRate, now); got < lo || got > hi {
			t.Fatalf("%d ms after the window opened the rate reads %d, want %d..%d (the previous second's 51, weighted)", now-opened, got, lo, hi)
		}
		// Later in the window: the request's own count plus at most
		// 51*0.8 of the past is under the limit.
		time.Sleep(time.Duration(answered+1200-sticktable.Now()) * time.Millisecond)
		if code := get(a); code != 200 {
			t.Fatalf("%s after the window slid past its requests: %d, want 200", src, code)
		}
		if tbl.Used() != 2*(attempt+1) {
			t.Errorf("the table holds %d entries, want %d", tbl.Used(), 2*(attempt+1))
		}
		return
	}
	t.Fatal("every attempt was too slow to tell")
}

// slidingRate is HAProxy's read_freq_ctr_period (freq_ctr_total with its
// anti-flapping case) for n events counted in a period that opened
// elapsed ms ago and nothing since.
func slidingRate(n uint64, period, elapsed int64) uint64 {
	past, curr, remain := uint64(0), n, period-elapsed
	if remain < 0 { // a later period: the counted one is the past one, or gone
		remain += period
		past, curr = 0, 0
		if remain >= 0 {
			past = n
		}
	}
	if curr == 0 && past <= 1 {
		return past
	}
	return (past*uint64(remain) + curr*uint64(period)) / uint64(period)
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
