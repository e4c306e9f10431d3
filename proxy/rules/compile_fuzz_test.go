package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
	"github.com/halo-lb/halo/sticktable"
)

// The kinds of line FuzzCompileRules reads, by its kind byte: each is
// parsed as config/rules.go parses that key, so what the fuzzer compiles
// is what a configuration could hand the compiler.
const (
	fuzzHTTPRequest = iota
	fuzzHTTPResponse
	fuzzTCPRequestHTTP // tcp-request in a mode http frontend: the request is there
	fuzzTCPRequestTCP  // tcp-request in a mode tcp one: the stream's first bytes only
	fuzzUseBackendHTTP
	fuzzUseBackendTCP
	fuzzStick
	fuzzKinds
)

// fuzzTables is a stick table for track-sc, sc_* and stick lines, the
// section's own ("public"); one for the process, since a table outlives
// the snapshots that use it.
var fuzzTables = func() map[string]*sticktable.Table {
	st, err := config.ParseStickTable("type ip size 1k expire 30s store gpc0,gpc1,conn_cnt,conn_cur,conn_rate(10s)," +
		"http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),bytes_in_cnt,bytes_out_rate(10s),server_id")
	if err != nil {
		panic(err)
	}
	return map[string]*sticktable.Table{"public": sticktable.NewRegistry().Table("public", *st)}
}()

// FuzzCompileRules compiles any rule the parser accepts and runs it
// against a request: the parser and the compiler must agree (the
// compiler may refuse what the parser could not check, such as an ACL
// or a table that does not exist, but never panic), and a compiled
// program must neither panic nor run on past its deadline. acl is
// "NAME DEFINITION", an ACL the line may name; it is compiled and
// evaluated even when the line does not use it.
func FuzzCompileRules(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add(s.kind, s.acl, s.line)
	}
	f.Fuzz(func(t *testing.T, kind uint8, acl, line string) {
		names := testNames()
		names.Tables = fuzzTables
		c := NewCompiler(names)
		c.Section = "public"
		acls := ACLs{}
		var aclMatch *matcher
		if name, def, ok := strings.Cut(acl, " "); ok && lang.ValidACLName(name) {
			// As config/rules.go reads a named ACL: where it may be used
			// is checked where it is.
			if m, err := lang.ParseACL(def, 0); err == nil && m != nil {
				acls[name] = []*lang.Match{m}
				aclMatch, _ = c.compileMatch(m)
			}
		}
		k := kind % fuzzKinds
		http := k != fuzzTCPRequestTCP && k != fuzzUseBackendTCP
		run := compileFuzzLine(c, k, http, line, acls)
		if run == nil && aclMatch == nil {
			return
		}
		tx := fuzzTxn(t, http, k == fuzzHTTPResponse)
		tx.Reset(c.Vars())
		tx.SetDeadline(time.Now().Add(time.Second))
		start := time.Now()
		if aclMatch != nil {
			aclMatch.eval(tx)
		}
		if run != nil {
			run(tx)
		}
		// A request of a few hundred bytes is done in microseconds; past
		// the deadline the matchers stop within a chunk of work.
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("acl %q, line %q ran %v, past its 1s deadline", acl, line, d)
		}
		tx.Untrack(0, 0)
	})
}

// compileFuzzLine parses line as a line of kind k and compiles it; nil
// when either refuses it.
func compileFuzzLine(c *Compiler, k uint8, http bool, line string, acls ACLs) func(*Txn) {
	switch k {
	case fuzzHTTPRequest, fuzzHTTPResponse:
		rs := lang.HTTPRequest
		if k == fuzzHTTPResponse {
			rs = lang.HTTPResponse
		}
		r, err := lang.ParseRule(line, rs)
		if err != nil || r == nil {
			return nil
		}
		p, err := c.CompileRules([]*lang.Rule{r}, acls, map[string][]byte{})
		if err != nil {
			return nil
		}
		return func(tx *Txn) { p.Run(tx) }
	case fuzzTCPRequestHTTP, fuzzTCPRequestTCP:
		r, _, _, err := lang.ParseTCPRequest(line, http, config.ParseDuration)
		if err != nil || r == nil {
			return nil
		}
		p, err := c.CompileRules([]*lang.Rule{r}, acls, nil)
		if err != nil {
			return nil
		}
		return func(tx *Txn) { p.Run(tx) }
	case fuzzUseBackendHTTP, fuzzUseBackendTCP:
		where := lang.AtRequest
		if !http {
			where = lang.AtContent
		}
		ub, err := lang.ParseTarget(line, where, false)
		if err != nil || ub == nil {
			return nil
		}
		cond, err := c.CompileCond(ub.Cond, acls)
		if err != nil {
			return nil
		}
		var name *Format
		if _, ok := ub.Name.Const(); !ok {
			if name, err = c.CompileFormat(ub.Name); err != nil {
				return nil
			}
		}
		return func(tx *Txn) {
			if cond.Eval(tx) && name != nil {
				name.Eval(tx)
			}
		}
	case fuzzStick:
		ls, err := lang.ParseStick(line)
		if err != nil || ls == nil || ls.Expr == nil {
			return nil
		}
		st, err := c.CompileStick(ls, acls)
		if err != nil {
			return nil
		}
		return func(tx *Txn) {
			if st.StoresRequest() || st.Kind == "store-response" {
				st.Store(tx, 1)
			}
			st.Server(tx)
		}
	}
	return nil
}

// fuzzTxn is a request from an OpenStack client with a response to it
// (http), or the first bytes of a TCP stream (a Txn of mode tcp has no
// request).
func fuzzTxn(t *testing.T, http, response bool) *Txn {
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	tx.Env = fakeEnv{}
	tx.Frontend, tx.Backend = 0, 0
	tx.Caps = &Captures{}
	tx.Caps.Reset([]int{16, 64}, []int{16})
	tx.Payload = []byte(openstackRequest)
	if !http {
		tx.Ctx = nil
		return tx
	}
	if response {
		tx.Response = true
		res := &tx.Ctx.Response
		res.SetStatusCode(200)
		res.Header.Set("Content-Type", "application/json")
		res.Header.Set("Server", "Apache")
		res.Header.Set("Set-Cookie", "SERVERID=s1; path=/")
		res.SetBodyString(`{"token": "x"}`)
	}
	return tx
}

// compileSeeds are a few lines of each kind; testdata/fuzz holds the
// lines of the conformance configuration and the examples.
var compileSeeds = []struct {
	kind      uint8
	acl, line string
}{
	{fuzzHTTPRequest, "blocked src 10.0.0.0/8", "deny deny_status 403 if blocked"},
	{fuzzHTTPRequest, "v3 path_beg /v3", `set-header X-Host %[req.hdr(host),lower,field(1,:),map_dom(hosts.map,other)] if v3`},
	{fuzzHTTPRequest, "v3 path_beg /v3", "track-sc0 src if v3"},
	{fuzzHTTPRequest, "x method GET", `replace-path ^/v3(/.*)$ /identity/v3\1`},
	{fuzzHTTPResponse, "json res.hdr(content-type) -m sub json", "set-header X-Json 1 if json"},
	{fuzzHTTPResponse, "x status 200", "del-header Server"},
	{fuzzTCPRequestHTTP, "x src 10.1.2.3", "content track-sc1 src if x"},
	{fuzzTCPRequestTCP, "http req.proto_http", "content accept if http"},
	{fuzzTCPRequestTCP, "x req.len gt 0", "connection reject if { src 127.0.0.99 }"},
	{fuzzUseBackendHTTP, "v3 path_beg /v3", "keystone if v3"},
	{fuzzUseBackendHTTP, "x hdr(x-be) -m found", "%[req.hdr(host),lower,map(hosts.map)] if x"},
	{fuzzUseBackendTCP, "rdp req.rdp_cookie(mstshash) -m found", "keystone if rdp"},
	{fuzzStick, "x path_beg /v3", "on src table public if x"},
	{fuzzStick, "x res.hdr(x-id) -m found", "store-response res.hdr(x-id)"},
}
