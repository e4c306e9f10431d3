package lang

import (
	"strconv"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		offs []int
	}{
		{`set-header X-Foo "a b"`, []string{"set-header", "X-Foo", "a b"}, []int{0, 11, 17}},
		{`deny if { src 10.0.0.1 }  # comment`, []string{"deny", "if", "{", "src", "10.0.0.1", "}"}, []int{0, 5, 8, 10, 14, 23}},
		{`a\ b 'c d' e"f g"`, []string{"a b", "c d", "ef g"}, []int{0, 5, 11}},
		{`regsub(\,,_)`, []string{`regsub(\,,_)`}, []int{0}},
		{`""`, []string{""}, []int{0}},
		{`x\x41y`, []string{"xAy"}, []int{0}},
	} {
		ws, err := Split(tc.in)
		if err != nil {
			t.Errorf("Split(%q): %v", tc.in, err)
			continue
		}
		var got []string
		var offs []int
		for _, w := range ws {
			got = append(got, w.Text)
			offs = append(offs, w.Pos())
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || !equalInts(offs, tc.offs) {
			t.Errorf("Split(%q) = %q at %v, want %q at %v", tc.in, got, offs, tc.want, tc.offs)
		}
	}
	if _, err := Split(`set-header X "open`); err == nil || err.(Errors)[0].Off != 13 {
		t.Errorf("an unclosed quote: %v, want an error at 13", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Every error names the byte offset of the word at fault.
func TestErrorOffsets(t *testing.T) {
	for _, tc := range []struct {
		kind, line string
		off        int
		msg        string
	}{
		{"acl", "path_bog /v3", 0, `unknown sample fetch "path_bog"`},
		{"acl", "hdr(host) -i -m dam x", 16, `unknown match method "dam"`},
		{"acl", "hdr(host),lowr x", 10, `unknown converter "lowr"`},
		{"acl", "src 10.0.0.300", 4, `not an IPv4 or IPv6 address`},
		{"acl", "path_reg ^(?=a)", 10, `PCRE syntax`},
		{"acl", `path_reg (a)\1`, 12, `PCRE syntax`},
		{"acl", "status 200", 0, `not available in http-request rules`},
		{"acl", "hdr_cnt(host) gt x", 17, `not an integer`},
		{"acl", "path_beg -m str /x", 12, `contradicts`},
		{"acl", "path -q /x", 5, `unknown ACL flag "-q"`},
		{"acl", "ssl_fc x", 7, `takes no pattern`},
		{"acl", "url_param(a,bb,c) x", 15, `at most 2 arguments`},
		{"acl", "srv_is_up(be) x", 10, `not BACKEND/SERVER`},
		{"acl", "var(foo) x", 4, `needs a scope`},
		{"http-request", "set-header X-A %[dst_porte]", 17, `unknown sample fetch "dst_porte"`},
		{"http-request", "set-header X-A %[dst_port", 15, `not closed`},
		{"http-request", "set-header X-A %zz", 15, `unknown format variable "%zz"`},
		{"http-request", "set-headr X-A b", 0, `unknown http-request action "set-headr"`},
		{"http-request", "deny deny_status 999", 17, `not a code from 200 to 599`},
		{"http-request", "deny if { src 1.2.3.4", 8, `not closed`},
		{"http-request", "deny if !{src 1.2.3.4 }", 9, `must be a word of its own`},
		{"http-request", "deny if a ||", 10, `ends with an OR`},
		{"http-request", "redirect scheme https code 305", 27, `not one of 301, 302, 303, 307, 308`},
		{"http-request", "redirect schema https", 9, `unknown redirect option "schema"`},
		{"http-request", "set-header X-A b c", 17, `unexpected "c"`},
		{"http-request", "set-var(foo) src", 8, `needs a scope`},
		{"http-request", "replace-path (/v2 /v3", 13, `missing closing )`},
		{"http-request", "set-header X(A b", 12, `header name "X(A" holds '('`},
		{"http-response", "set-status 20x", 11, `not a code`},
		{"http-response", "deny if { path /x } { status 500 }", 10, ``},
		{"http-request", "set-header X %[status]", 15, `not available in http-request rules`},
		{"http-request", "return status 200 string ok", 0, `needs a content-type`},
	} {
		var err error
		switch tc.kind {
		case "acl":
			_, err = ParseACL(tc.line, AtRequest)
		case "http-request":
			_, err = ParseRule(tc.line, HTTPRequest)
		case "http-response":
			_, err = ParseRule(tc.line, HTTPResponse)
		}
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%s %q: %v, want no error", tc.kind, tc.line, err)
			}
			continue
		}
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Errorf("%s %q: error %v, want one at %d containing %q", tc.kind, tc.line, err, tc.off, tc.msg)
			continue
		}
		if es[0].Off != tc.off || !strings.Contains(es[0].Msg, tc.msg) {
			t.Errorf("%s %q: %d %q, want %d containing %q", tc.kind, tc.line, es[0].Off, es[0].Msg, tc.off, tc.msg)
		}
	}
}

func TestParseACL(t *testing.T) {
	m, err := ParseACL("hdr_dom(host) -i dashboard.example.org Example.COM", AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sample.Fetch.Name != "req.hdr" || m.Method != MatchDom || !m.NoCase || len(m.Patterns) != 2 || m.Sample.Args[0].Text != "host" {
		t.Errorf("hdr_dom(host): %+v", m)
	}
	m, err = ParseACL("hdr_cnt(x-foo) ge 2 lt 10 3:5 :1 7", AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range m.Patterns {
		got = append(got, strings.Join([]string{itoa(p.Lo), itoa(p.Hi)}, ".."))
	}
	want := "2..max|min..9|3..5|min..1|7..7"
	if strings.Join(got, "|") != want {
		t.Errorf("integer patterns: %s, want %s", strings.Join(got, "|"), want)
	}
	m, err = ParseACL("src 10.0.0.0/255.0.0.0 ::1 192.168.1.7", AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Patterns[0].Net.String() != "10.0.0.0/8" || m.Patterns[1].Net.String() != "::1/128" || m.Patterns[2].Net.String() != "192.168.1.7/32" {
		t.Errorf("networks: %+v", m.Patterns)
	}
	m, err = ParseACL("path -- -weird", AtRequest)
	if err != nil || m.Patterns[0].Text != "-weird" {
		t.Errorf("--: %+v %v", m, err)
	}
	m, err = ParseACL(`req.hdr(x-path),regsub(^/v[0-9]+(/.*)$,\1,g),lower -m beg /a`, AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sample.Convs) != 2 || m.Sample.Convs[0].Args[0].Text != `^/v[0-9]+(/.*)$` || m.Sample.Convs[0].Args[1].Text != `1` {
		// The argument parser unescapes \1 to 1 only inside quotes;
		// a bare \1 keeps its backslash for regsub.
		if m.Sample.Convs[0].Args[1].Text != `\1` {
			t.Errorf("regsub arguments: %+v", m.Sample.Convs[0].Args)
		}
	}
}

func itoa(n int64) string {
	switch n {
	case 1<<63 - 1:
		return "max"
	case -1 << 63:
		return "min"
	}
	return strconv.FormatInt(n, 10)
}

func TestParseCond(t *testing.T) {
	r, err := ParseRule("deny if a !b || { src 127.0.0.1 } or !{ ssl_fc } c", HTTPRequest)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Cond
	if c.Unless || len(c.Or) != 3 || len(c.Or[0]) != 2 || !c.Or[0][1].Not || c.Or[1][0].Anon == nil || !c.Or[2][0].Not || c.Or[2][0].Anon == nil || c.Or[2][1].Name != "c" {
		t.Errorf("condition: %+v", c)
	}
	r, err = ParseRule("redirect scheme https code 301 unless { ssl_fc }", HTTPRequest)
	if err != nil || r.Status != 301 || r.Redirect.Type != "scheme" || !r.Cond.Unless {
		t.Errorf("redirect: %+v %v", r, err)
	}
}

func TestParseFormat(t *testing.T) {
	w := Word{Text: "%[req.hdr(host),lower]:%[dst_port] 100%% %ci", at: make([]int, 45)}
	for i := range w.at {
		w.at[i] = i
	}
	f, err := ParseFormat(w, AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range f.Parts {
		if p.Sample != nil {
			kinds = append(kinds, p.Sample.Fetch.Name)
		} else {
			kinds = append(kinds, "'"+p.Lit+"'")
		}
	}
	if got := strings.Join(kinds, " "); got != "req.hdr ':' dst_port ' 100% ' src" {
		t.Errorf("parts: %s", got)
	}
}
