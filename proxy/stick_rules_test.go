package proxy

import (
	"net"
	"net/http"
	"testing"
	"time"
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
