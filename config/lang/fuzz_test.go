package lang

import (
	"testing"
	"time"
)

// The parsers take what an operator writes; they must never panic, and
// every error they report must point inside the line.
func checkErrors(t *testing.T, line string, err error) {
	if err == nil {
		return
	}
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("%q: error of type %T: %v", line, err, err)
	}
	for _, e := range es {
		if e.Off < 0 || e.Off > len(line) {
			t.Fatalf("%q: error at %d, outside the line: %s", line, e.Off, e.Msg)
		}
	}
}

var fuzzSeeds = []string{
	"deny deny_status 403 if blocked",
	"set-header X-Forwarded-Proto https if { ssl_fc }",
	"set-header X-Forwarded-Port %[dst_port]",
	"redirect scheme https code 301 if !{ ssl_fc }",
	`replace-path ^/v2(/.*)?$ /v3\1`,
	`set-header X-Host %[req.hdr(host),lower,regsub(\.,_,g),map_dom(hosts.map,other)]`,
	"return status 200 content-type text/plain string ok hdr X-A %[src]",
	"set-var(txn.be) req.hdr(x-be),lower if { req.hdr_cnt(x-be) eq 1 }",
	`del-header ^X-Internal -m reg`,
	"track-sc0 src table rl",
	"deny if { sc_http_req_rate(0) gt 50 } || !LOCALHOST METH_GET",
	"redirect prefix https://example.org code 302 drop-query append-slash",
	"capture req.hdr(user-agent) len 64",
	"set-status 503 reason \"Service Unavailable\"",
	`"unterminated`,
	`x\`,
	"{ } { {",
	"%[%[",
}

func FuzzParseRule(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, rs := range []RuleSet{HTTPRequest, HTTPResponse, TCPContent} {
			_, err := ParseRule(line, rs)
			checkErrors(t, line, err)
		}
	})
}

func FuzzParseACL(f *testing.F) {
	for _, s := range []string{
		"path_beg /identity /v3", "hdr(host) -i -m dom dashboard.example.org", "src -f blocked.lst",
		"hdr_cnt(x) ge 2 lt 10 3:5", "src 10.0.0.0/255.0.0.0 ::1", `path_reg ^/v[0-9]+(/.*)$`,
		"req.cook(SERVERID) -m found", "url_param(a,;) -m sub x", "var(txn.x) -m int gt 3",
		`req.hdr(x),field(2,\,),word(-1,/,0) -m len 3`, "srv_is_up(be/s1)", "nbsrv(be) lt 2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		_, err := ParseACL(line, AtRequest)
		checkErrors(t, line, err)
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ws, err := Split(line)
		checkErrors(t, line, err)
		for _, w := range ws {
			if w.Pos() < 0 || w.Pos() > len(line) || len(w.at) != len(w.Text)+1 {
				t.Fatalf("%q: word %q at %d with %d offsets", line, w.Text, w.Pos(), len(w.at))
			}
			for i := range w.Text {
				if o := w.Off(i); o < 0 || o >= len(line) {
					t.Fatalf("%q: byte %d of %q at %d", line, i, w.Text, o)
				}
			}
		}
	})
}

func FuzzParseTCPRequest(f *testing.F) {
	for _, s := range []string{"inspect-delay 5s", "content accept if { req.ssl_hello_type 1 }",
		"content reject unless { req.len gt 0 }", "connection reject if { src -f x.lst }", "session track-sc1 src"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		_, _, _, err := ParseTCPRequest(line, len(line)%2 == 0, func(string) (time.Duration, error) { return 0, nil })
		checkErrors(t, line, err)
	})
}

func FuzzParseLines(f *testing.F) {
	for _, s := range []string{"on dst", "match src table t if { path_beg /x }", "store-response res.hdr(x-id)",
		"keystone if is_identity", "%[req.hdr(x-be),lower] if { req.hdr(x-be) -m found }", "if { src 10.0.0.0/8 }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		_, err := ParseStick(line)
		checkErrors(t, line, err)
		_, err = ParseTarget(line, AtRequest, false)
		checkErrors(t, line, err)
		_, err = ParseTarget(line, AtRequest, true)
		checkErrors(t, line, err)
	})
}
