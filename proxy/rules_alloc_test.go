package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
)

// Each kind of rule an HAProxy user pastes, alone on the forward path,
// allocates nothing per request once warm: a src -f list of 10,000
// networks, a map_dom lookup, a header set from a format, a rate limit
// (track-sc0 src and sc_http_req_rate(0)), stick on src.
func TestRuleKindsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	dir := t.TempDir()
	var list strings.Builder
	list.WriteString("# a blocklist, as HAProxy reads one\n")
	for i := range 10000 {
		// /32, /24 and /16 networks, none holding the rig's client.
		fmt.Fprintf(&list, "10.%d.%d.%d/%d\n", i>>16&255, i>>8&255, i&255, []int{32, 24, 16}[i%3])
	}
	blocked := filepath.Join(dir, "blocked.lst")
	hosts := filepath.Join(dir, "hosts.map")
	if err := os.WriteFile(blocked, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hosts, []byte("example keystone\nother.example glance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const head = "defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}\nfrontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n"
	const backend = "backends:\n  be:\n    servers: [{name: a, address: \"{{a}}\"}, {name: b, address: \"{{a}}\"}]\n"
	for _, tc := range []struct{ name, frontend, backend string }{
		{"src -f", `    acl: {blocked: "src -f ` + blocked + `"}
    http-request: [deny if blocked]
    default_backend: be
`, ""},
		{"map_dom", `    acl: {to_keystone: "req.hdr(host),lower,field(1,:),map_dom(` + hosts + `) keystone"}
    http-request: [deny unless to_keystone]
    default_backend: be
`, ""},
		{"set-header format", `    http-request: ["set-header X-Forwarded-Host %[req.hdr(host)]"]
    default_backend: be
`, ""},
		{"track-sc0 rate limit", `    stick-table: type ip size 100k expire 30s store http_req_rate(10s),http_req_cnt,conn_cur
    http-request:
      - track-sc0 src
      - deny if { sc_http_req_rate(0) gt 1000000 }
    default_backend: be
`, ""},
		{"stick on src", "    default_backend: be\n", "    balance: roundrobin\n    stick-table: type ip size 1000 expire 30m\n    stick: [on src]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := backend
			if tc.backend != "" {
				be = strings.Replace(backend, "    servers:", tc.backend+"    servers:", 1)
			}
			r := newForwardRigConfig(t, head+tc.frontend+be)
			for range 10 {
				r.forward(t)
			}
			if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
				t.Fatalf("forward with %s allocates %.1f times per request, want 0", tc.name, n)
			}
		})
	}
}

// The whole rule set of examples/openstack-public.yaml, loaded as a user
// loads it, on a typical request: an API call over TLS to the identity
// host, routed to keystone past the blocklist (src -f), the maps, the
// X-Forwarded-* headers and the response rules. It allocates nothing
// (option httplog's access line aside).
func TestOpenStackExampleAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	r := newForwardRigFor(t, func(server string) *config.Config {
		cfg, err := config.Load("../examples/openstack-public.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, be := range cfg.Backends {
			for i := range be.Servers {
				// No checks: their requests would count in AllocsPerRun.
				be.Servers[i].Address, be.Servers[i].Check = server, false
			}
		}
		for _, fe := range cfg.Frontends {
			// The rules are measured, not the access log: its line
			// is built and handed to zap as a string per request
			// (five allocations today; see logHTTP).
			fe.Options.HTTPLog = false
			for i := range fe.Binds {
				fe.Binds[i].Address = "127.0.0.1:0"
			}
		}
		return cfg
	})
	r.host = "identity.overcloud.example.org"
	// The request comes on a TLS connection (ssl_fc; without it the
	// example redirects to https), from a client address.
	client := &addrConn{local: &net.TCPAddr{IP: net.IPv4(192, 168, 124, 210), Port: 443}, remote: &net.TCPAddr{IP: net.IPv4(198, 51, 100, 20), Port: 40000}}
	r.ctx.Init2(&guardConn{Conn: tls.Server(client, &tls.Config{})}, nil, true)
	keystone := r.fe.backendsByName["keystone"]
	served := func() (n int64) {
		for _, s := range keystone.servers {
			n += int64(s.state.TotalConns.Load())
		}
		return n
	}
	for range 10 {
		r.forward(t)
	}
	before := served()
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("the example's rule set allocates %.1f times per request, want 0", n)
	}
	if got := served() - before; got != 501 {
		t.Fatalf("keystone served %d of the 501 requests", got)
	}
	if got := string(r.ctx.Request.Header.Peek("X-Forwarded-Host")); got != "identity.overcloud.example.org" {
		t.Errorf("X-Forwarded-Host %q", got)
	}
	if got := string(r.ctx.Response.Header.Peek("Strict-Transport-Security")); got == "" {
		t.Errorf("no Strict-Transport-Security: the request was not seen as TLS")
	}
}

// addrConn is a connection that is never read or written, with the
// addresses a request's rules see.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
