package lang

import (
	"strings"
	"testing"
)

// TestRedirectWordOrder checks that redirect's words are read in any
// order, as HAProxy 2.6's parser reads them: the target kind anywhere,
// the options before or after it.
func TestRedirectWordOrder(t *testing.T) {
	for _, tc := range []struct {
		line      string
		kind      string
		target    string
		code      int
		drop      bool
		slash     bool
		empty     bool
		set, clr  string
		condition bool
	}{
		{line: "redirect scheme https code 301 if { path /x }", kind: "scheme", target: "https", code: 301, condition: true},
		{line: "redirect code 301 scheme https", kind: "scheme", target: "https", code: 301},
		{line: "redirect drop-query code 303 prefix /p append-slash", kind: "prefix", target: "/p", code: 303, drop: true, slash: true},
		{line: "redirect append-slash prefix /p drop-query", kind: "prefix", target: "/p", code: 302, drop: true, slash: true},
		{line: "redirect set-cookie A=1 location /l code 307 unless { path /x }", kind: "location", target: "/l", code: 307, set: "A=1", condition: true},
		{line: "redirect location %[path,map(m.map)] ignore-empty", kind: "location", code: 302, empty: true},
		// One cookie slot, as HAProxy's: the last of the two is kept.
		{line: "redirect clear-cookie B set-cookie A location /l", kind: "location", target: "/l", code: 302, set: "A"},
		{line: "redirect set-cookie A clear-cookie B location /l", kind: "location", target: "/l", code: 302, clr: "B"},
		// The target may be the word "if", as HAProxy takes the next word.
		{line: "redirect location if", kind: "location", target: "if", code: 302},
	} {
		r, err := ParseRule(tc.line, HTTPRequest)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		rd := r.Redirect
		target, _ := rd.Target.Const()
		if tc.target == "" {
			target = ""
		}
		if rd.Type != tc.kind || target != tc.target || r.Status != tc.code || rd.DropQuery != tc.drop ||
			rd.AppendSlash != tc.slash || rd.IgnoreEmpty != tc.empty || rd.SetCookie != tc.set ||
			rd.ClearCookie != tc.clr || (r.Cond != nil) != tc.condition {
			t.Errorf("%q: %+v (status %d, condition %v)", tc.line, rd, r.Status, r.Cond != nil)
		}
	}
}

// TestRedirectErrors checks each wrong redirect at the word at fault.
func TestRedirectErrors(t *testing.T) {
	for _, tc := range []struct {
		rs   RuleSet
		line string
		off  int
		msg  string
	}{
		{HTTPRequest, "redirect code 301", 17, "needs location, prefix or scheme"},
		{HTTPRequest, "redirect code 301 if { path /x }", 17, "needs location, prefix or scheme"},
		{HTTPRequest, "redirect", 8, "needs location, prefix or scheme"},
		{HTTPRequest, "redirect code 301 scheme", 24, "needs more arguments"},
		{HTTPRequest, "redirect scheme https code", 26, "needs more arguments"},
		{HTTPRequest, "redirect code 304 scheme https", 14, "not one of 301, 302, 303, 307, 308"},
		{HTTPRequest, "redirect code abc scheme https", 14, "not a code from 301 to 308"},
		{HTTPRequest, "redirect scheme https drop-querry", 22, `unknown redirect option "drop-querry"`},
		{HTTPRequest, "redirect prefix /a code 301 location /b", 28, "has a target already (prefix at column 10)"},
		{HTTPResponse, "redirect code 301 scheme https", 18, "takes location only, not scheme"},
		{HTTPResponse, "redirect prefix /p", 9, "takes location only, not prefix"},
	} {
		_, err := ParseRule(tc.line, tc.rs)
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Errorf("%q: error %v, want one at %d containing %q", tc.line, err, tc.off, tc.msg)
			continue
		}
		if es[0].Off != tc.off || !strings.Contains(es[0].Msg, tc.msg) {
			t.Errorf("%q: %d %q, want %d containing %q", tc.line, es[0].Off, es[0].Msg, tc.off, tc.msg)
		}
	}
	if _, err := ParseRule("redirect location /l", HTTPResponse); err != nil {
		t.Errorf("http-response redirect location: %v", err)
	}
}
