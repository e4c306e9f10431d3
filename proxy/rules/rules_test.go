package rules

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config/lang"

	"github.com/valyala/fasthttp"
)

// newTxn builds a Txn over a request parsed from raw, from src to dst.
func newTxn(t testing.TB, raw, src string) *Txn {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.DisableNormalizing()
	if err := ctx.Request.Read(bufio.NewReaderSize(strings.NewReader(raw), 1<<20)); err != nil {
		t.Fatalf("request %.80q: %.200v", raw, err)
	}
	ctx.Request.URI().DisablePathNormalizing = true
	tx := &Txn{Ctx: ctx, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort("192.0.2.10:443"), Frontend: -1, Backend: -1}
	tx.Reset(8)
	return tx
}

type fakeEnv struct{}

func (fakeEnv) NbSrv(int) int         { return 2 }
func (fakeEnv) SrvIsUp(_, s int) bool { return s == 0 }
func (fakeEnv) SrvConn(int, int) int  { return 3 }
func (fakeEnv) BeConn(int) int        { return 4 }
func (fakeEnv) FeConn(int) int        { return 5 }

func testNames() Names {
	return Names{
		Frontends: map[string]int{"public": 0},
		Backends:  map[string]int{"keystone": 0, "horizon": 1},
		Servers:   map[string]map[string]int{"keystone": {"a": 0, "b": 1}},
		Maps: map[string][]MapEntry{
			"hosts.map": {{"identity.example.org", "keystone"}, {"example.org", "horizon"}},
			"nets.map":  {{"10.0.0.0/8", "internal"}, {"10.1.0.0/16", "lab"}, {"::1", "local6"}},
			"beg.map":   {{"/v3", "keystone-v3"}, {"/v3/auth", "auth"}},
		},
	}
}

const openstackRequest = "GET /v3/auth/tokens?nocatalog=1&x=2 HTTP/1.1\r\nHost: Identity.Example.org:5000\r\n" +
	"User-Agent: python-keystoneclient\r\nAccept: application/json\r\nX-Auth-Token: gAAAAABk\r\n" +
	"X-Multi: a, b\r\nX-Multi: c\r\nCookie: SERVERID=s1; lang=en\r\nContent-Length: 0\r\n\r\n"

func evalACL(t *testing.T, c *Compiler, tx *Txn, acl string) bool {
	t.Helper()
	m, err := lang.ParseACL(acl, lang.AtRequest)
	if err != nil {
		t.Fatalf("%q: %v", acl, err)
	}
	cm, err := c.compileMatch(m)
	if err != nil {
		t.Fatalf("%q: %v", acl, err)
	}
	return cm.eval(tx)
}

func TestACLs(t *testing.T) {
	c := NewCompiler(testNames())
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	tx.Env = fakeEnv{}
	for _, tc := range []struct {
		acl  string
		want bool
	}{
		{"path_beg /identity /v3", true},
		{"path_beg /identity", false},
		{"path /v3/auth/tokens", true},
		{"path_end tokens", true},
		{"path_dir auth", true},
		{"path_dir aut", false},
		{"path_sub th/to", true},
		{"path_reg ^/v[0-9]+/auth", true},
		{"path_len 15", true},
		{"path_len gt 20", false},
		{"hdr(host) -i identity.example.org:5000", true},
		{"hdr(host) identity.example.org:5000", false},
		{"hdr_dom(host) -i example.org", true},
		{"hdr_dom(host) -i ample.org", false},
		{"hdr_beg(host) -i identity.", true},
		{"hdr_end(host) :5000", true},
		{"hdr(x-multi) b", true}, // every comma-separated value is an occurrence
		{`hdr(x-multi) "a, b"`, false},
		{"req.fhdr(x-multi) -m sub a, b", true},
		{"hdr_cnt(x-multi) eq 3", true},
		{"hdr_cnt(x-missing) eq 0", true},
		{"hdr(x-multi,-1) c", true},
		{"hdr(x-multi,1) a", true},
		{"hdr(x-missing) -m found", false},
		{"hdr(user-agent) -m found", true},
		{"req.cook(SERVERID) s1", true},
		{"req.cook(lang) -m str en", true},
		{"req.cook_cnt(SERVERID) eq 1", true},
		{"url_param(nocatalog) 1", true},
		{"url_param(x) -m int ge 2", true},
		{"query -m sub nocatalog", true},
		{"base -i -m beg identity.example.org:5000/v3", true},
		{"url_beg /v3/auth", true},
		{"method GET", true},
		{"src 10.0.0.0/8", true},
		{"src 10.0.0.0/255.255.0.0", false},
		{"src 192.168.0.0/16 10.1.2.3", true},
		{"src_port gt 1024", true},
		{"dst_port 443", true},
		{"dst 192.0.2.10", true},
		{"ssl_fc", false},
		{"nbsrv(keystone) ge 2", true},
		{"srv_is_up(keystone/a)", true},
		{"srv_is_up(keystone/b)", false},
		{"be_conn(horizon) eq 4", true},
		{"fe_conn(public) eq 5", true},
		{"req.hdr(host),lower,field(1,:),map_str(hosts.map) keystone", true},
		{"req.hdr(host),lower,field(1,:),map_dom(hosts.map) keystone", true},
		{"src,map_ip(nets.map) lab", true},
		{"path,map_beg(beg.map) auth", true},
		{"path,map_beg(beg.map,none) auth", true},
		{"req.hdr(host),map_str(hosts.map,nothing) nothing", true},
		{"req.hdr(host),lower,regsub(:[0-9]+$,) identity.example.org", true},
		{`req.hdr(host),lower,regsub(\.,_,g) identity_example_org:5000`, true},
		{"req.hdr(x-auth-token),length eq 8", true},
		{"req.hdr(x-auth-token),base64 Z0FBQUFBQms=", true},
		{"req.hdr(x-auth-token),hex 674141414141426B", true},
		{"req.hdr(x-auth-token),upper GAAAAABK", true},
		{"path,word(2,/) auth", true},
		{"path,field(3,/) auth", true},
		{"path,field(-1,/) tokens", true},
		{"path,field(2,/,2) v3/auth", true},
		{"src,ipmask(16) 10.1.0.0", true},
		{`str(a\\b),json a\\\\b`, true},
		{"int(7),add(3) eq 10", true},
		{"env(HALO_RULES_TEST_UNSET) -m found", false},
	} {
		if got := evalACL(t, c, tx, tc.acl); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.acl, got, tc.want)
		}
	}
}

func compileRules(t testing.TB, c *Compiler, acls map[string]string, lines ...string) *Program {
	t.Helper()
	defs := ACLs{}
	for name, def := range acls {
		m, err := lang.ParseACL(def, lang.AtRequest)
		if err != nil {
			t.Fatalf("acl %s: %v", name, err)
		}
		defs[name] = append(defs[name], m)
	}
	var rs []*lang.Rule
	for _, l := range lines {
		set := lang.HTTPRequest
		if strings.HasPrefix(l, "response ") {
			set, l = lang.HTTPResponse, strings.TrimPrefix(l, "response ")
		}
		r, err := lang.ParseRule(l, set)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rs = append(rs, r)
	}
	p, err := c.CompileRules(rs, defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRequestActions(t *testing.T) {
	c := NewCompiler(testNames())
	p := compileRules(t, c, map[string]string{"v3": "path_beg /v3"},
		"set-header X-Forwarded-Proto https if !{ ssl_fc }",
		"set-header X-Forwarded-Port %[dst_port]",
		"add-header X-Multi d",
		"del-header user-agent",
		"set-var(txn.host) req.hdr(host),lower,field(1,:)",
		"set-header X-Host %[var(txn.host)]-%[src]",
		"replace-header X-Auth-Token ^g(.*)$ G\\1",
		"replace-value X-Multi ^b$ B",
		"replace-path ^/v3(/.*)$ /identity/v3\\1 if v3",
		"set-query a=1",
		"set-method POST",
	)
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	if v, _ := p.Run(tx); v != Continue {
		t.Fatalf("verdict %v", v)
	}
	h := &tx.Ctx.Request.Header
	for name, want := range map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", "X-Host": "identity.example.org-10.1.2.3",
		"X-Auth-Token": "GAAAAABk", "User-Agent": "",
	} {
		if got := string(h.Peek(name)); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var multi []string
	for k, v := range h.All() {
		if string(k) == "X-Multi" {
			multi = append(multi, string(v))
		}
	}
	if strings.Join(multi, "|") != "a,B|c|d" { // a replaced value loses its leading blank, as in HAProxy
		t.Errorf("X-Multi: %q", multi)
	}
	if got := string(tx.Ctx.Request.URI().RequestURI()); got != "/identity/v3/auth/tokens?a=1" {
		t.Errorf("target %q", got)
	}
	if got := string(h.Method()); got != "POST" {
		t.Errorf("method %q", got)
	}
}

func TestFinalActions(t *testing.T) {
	c := NewCompiler(testNames())
	for _, tc := range []struct {
		rule     string
		verdict  Verdict
		status   int
		location string
		body     string
	}{
		{"deny if { src 10.0.0.0/8 }", Deny, 403, "", ""},
		{"deny deny_status 429", Deny, 429, "", ""},
		{"redirect scheme https code 301 if !{ ssl_fc }", Redirect, 301, "https://Identity.Example.org:5000/v3/auth/tokens?nocatalog=1&x=2", ""},
		{"redirect prefix https://new.example drop-query", Redirect, 302, "https://new.example/v3/auth/tokens", ""},
		{"redirect prefix / drop-query append-slash", Redirect, 302, "/v3/auth/tokens/", ""},
		{"redirect location /login code 303", Redirect, 303, "/login", ""},
		{"return status 200 content-type text/plain string ok", Return, 200, "", "ok"},
		{"return status 503 content-type text/plain lf-string %[path]", Return, 503, "", "/v3/auth/tokens"},
		{"allow", Allow, 0, "", ""},
	} {
		p := compileRules(t, c, nil, tc.rule, "deny")
		tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
		v, r := p.Run(tx)
		if v != tc.verdict || (tc.status != 0 && r.Status != tc.status) {
			t.Errorf("%s: %v %d, want %v %d", tc.rule, v, r.Status, tc.verdict, tc.status)
			continue
		}
		switch v {
		case Redirect:
			r.WriteRedirect(tx)
			if got := string(tx.Ctx.Response.Header.Peek("Location")); got != tc.location || tx.Ctx.Response.StatusCode() != tc.status {
				t.Errorf("%s: %d Location %q, want %d %q", tc.rule, tx.Ctx.Response.StatusCode(), got, tc.status, tc.location)
			}
		case Return:
			r.WriteReply(tx)
			if got := string(tx.Ctx.Response.Body()); got != tc.body || tx.Ctx.Response.StatusCode() != tc.status {
				t.Errorf("%s: %d %q, want %d %q", tc.rule, tx.Ctx.Response.StatusCode(), got, tc.status, tc.body)
			}
		}
	}
}

func TestResponseRules(t *testing.T) {
	c := NewCompiler(testNames())
	p := compileRules(t, c, nil,
		"response del-header Server",
		"response set-header X-Status %[status]",
		"response set-status 503 if { res.hdr(x-fail) -m found }",
		"response add-header X-Cookie %[res.cook(sid)]",
	)
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	resp := &tx.Ctx.Response
	resp.Header.DisableNormalizing()
	resp.SetStatusCode(200)
	resp.Header.Set("Server", "nginx")
	resp.Header.Set("X-Fail", "1")
	resp.Header.Add("Set-Cookie", "sid=abc; Path=/")
	tx.Response = true
	p.Run(tx)
	if s := string(resp.Header.Peek("Server")); s != "" {
		t.Errorf("Server: %q", s)
	}
	if got := string(resp.Header.Peek("X-Status")); got != "200" || resp.StatusCode() != 503 {
		t.Errorf("X-Status %q, status %d", got, resp.StatusCode())
	}
	if got := string(resp.Header.Peek("X-Cookie")); got != "abc" {
		t.Errorf("X-Cookie %q", got)
	}
}

// openstackPrograms compiles a rule set like the public frontend of an
// OpenStack-Ansible or Kolla deployment, and a routing step over its ACLs.
func openstackPrograms(tb testing.TB, c *Compiler) (rules, route *Program) {
	acls := map[string]string{
		"is_identity": "path_beg /identity /v3", "dashboard": "hdr(host) -i -m dom dashboard.example.org",
		"blocked": "src 192.168.100.0/24 172.16.0.1", "ssl": "ssl_fc", "api": "hdr_beg(host) -i identity.",
	}
	rules = compileRules(tb, c, acls,
		"deny deny_status 403 if blocked",
		"set-header X-Forwarded-Proto https if ssl",
		"set-header X-Forwarded-Proto http if !ssl",
		"set-header X-Forwarded-Port %[dst_port]",
		"del-header X-Internal-Secret",
		"set-var(txn.host) req.hdr(host),lower",
		"set-header X-Host %[var(txn.host)]",
	)
	return rules, compileRules(tb, c, acls, "deny if is_identity api dashboard")
}

// A rule set like the public frontend of an OpenStack-Ansible or Kolla
// deployment allocates nothing per request once its buffers have grown.
func TestOpenStackRulesAllocatesNothing(t *testing.T) {
	c := NewCompiler(testNames())
	p, route := openstackPrograms(t, c)
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	saved := tx.Ctx.Request.Header.RawHeaders()
	_ = saved
	run := func() {
		tx.Reset(c.Vars())
		if v, _ := p.Run(tx); v != Continue {
			t.Fatalf("verdict %v", v)
		}
		route.Run(tx)
	}
	run()
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("the OpenStack rule set allocates %.1f times per request", n)
	}
}

func BenchmarkOpenStackRules(b *testing.B) {
	c := NewCompiler(testNames())
	p, _ := openstackPrograms(b, c)
	tx := newTxn(b, openstackRequest, "10.1.2.3:40000")
	b.ReportAllocs()
	for b.Loop() {
		tx.Reset(c.Vars())
		p.Run(tx)
	}
}

// set-status without a reason writes HAProxy 2.6.12's phrase for the code,
// not the backend's old one; codes without a phrase take their class's.
// The expected phrases were read from the installed HAProxy's responses.
func TestSetStatusReason(t *testing.T) {
	for _, tc := range []struct {
		rule, want string
		code       int
	}{
		{"response set-status 404", "Not Found", 404},
		{"response set-status 302", "Moved Temporarily", 302},
		{"response set-status 502", "Bad Gateway or Proxy Error", 502},
		{"response set-status 299", "Success", 299},
		{"response set-status 399", "Redirection", 399},
		{"response set-status 599", "Server Error", 599},
		{"response set-status 600", "Other", 600},
		{"response set-status 999", "Other", 999},
		{"response set-status 503 reason Foo", "Foo", 503},
	} {
		c := NewCompiler(testNames())
		p := compileRules(t, c, nil, tc.rule)
		tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
		resp := &tx.Ctx.Response
		resp.SetStatusCode(200)
		resp.Header.SetStatusMessage([]byte("Fine By Me"))
		tx.Response = true
		run := func() {
			resp.Header.SetStatusMessage([]byte("Fine By Me"))
			p.Run(tx)
		}
		run()
		if got := string(resp.Header.StatusMessage()); resp.StatusCode() != tc.code || got != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.rule, resp.StatusCode(), got, tc.code, tc.want)
		}
	}
}

// redirect's set-cookie and clear-cookie write what HAProxy 2.6.12 writes
// (read from the installed HAProxy): the name as given, path=/, and
// Max-Age=0 to clear.
func TestRedirectCookies(t *testing.T) {
	for _, tc := range []struct{ rule, want string }{
		{"redirect location /x set-cookie A=1", "A=1; path=/;"},
		{"redirect location /x set-cookie C", "C; path=/;"},
		{"redirect location /x clear-cookie B=", "B=; path=/; Max-Age=0;"},
		{"redirect location /x clear-cookie B", "B; path=/; Max-Age=0;"},
	} {
		c := NewCompiler(testNames())
		p := compileRules(t, c, nil, tc.rule)
		tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
		v, r := p.Run(tx)
		if v != Redirect {
			t.Fatalf("%s: verdict %v", tc.rule, v)
		}
		r.WriteRedirect(tx)
		if got := string(tx.Ctx.Response.Header.Peek("Set-Cookie")); got != tc.want {
			t.Errorf("%s: Set-Cookie %q, want %q", tc.rule, got, tc.want)
		}
	}
}

// req.payload takes what HAProxy's unsigned arguments take: a negative
// offset or length, or one past the bytes that arrived, gives no value
// (and never a slice out of range).
func TestPayloadBounds(t *testing.T) {
	tx := &Txn{Payload: []byte("abcdef")}
	for _, c := range []struct {
		off, n int64
		want   string
		ok     bool
	}{
		{0, 3, "abc", true}, {2, 0, "cdef", true}, {6, 0, "", true}, {4, 2, "ef", true},
		{4, 3, "", false}, {7, 0, "", false}, {-2, 1, "", false}, {-2, 0, "", false},
		{0, -1, "", false}, {1, 1<<63 - 1, "", false},
	} {
		var v value
		ok := fetchPayload(tx, &fetch{n: c.off, length: c.n}, 0, &v)
		if ok != c.ok || ok && string(v.b) != c.want {
			t.Errorf("req.payload(%d,%d) = %q, %v; want %q, %v", c.off, c.n, v.b, ok, c.want, c.ok)
		}
	}
}
