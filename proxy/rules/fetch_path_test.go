package rules

import "testing"

// "OPTIONS *" has no path: HAProxy's path fetch gives no value there (the
// rules differential test compared "h-%[path]" and got "h-"), while an
// origin-form or absolute-form target gives its path.
func TestPathOfAsteriskTarget(t *testing.T) {
	c := NewCompiler(testNames())
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET http://a/y HTTP/1.1\r\nHost: a\r\n\r\n", true},
	} {
		tx := newTxn(t, tc.raw, "10.1.2.3:40000")
		if got := evalACL(t, c, tx, "path -m found"); got != tc.want {
			t.Errorf("%.30q: path -m found = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

// A replace rule whose expression does not match leaves the target as
// received: url and url32 still see an empty query's "?", as HAProxy's do
// (the rules differential found url32 hashing "/v3/q" for "/v3/q?").
func TestUnmatchedReplaceKeepsTarget(t *testing.T) {
	c := NewCompiler(testNames())
	for _, rule := range []string{
		`replace-path ^/v2\.0/(.*)$ /v3/\1`,
		`replace-pathq ^/v2\.0/(.*)$ /v3/\1`,
		`replace-uri ^/ruri/(.*)$ /done/\1`,
	} {
		p := compileRules(t, c, nil, rule, "set-header X-Url %[url]_%[url32]")
		tx := newTxn(t, "GET /v3/q? HTTP/1.1\r\nHost: identity.example.org\r\n\r\n", "127.0.0.2:40000")
		if v, _ := p.Run(tx); v != Continue {
			t.Fatalf("verdict %v", v)
		}
		// 762078911 is HAProxy 2.6.12's url32 for this request.
		if got := string(tx.Ctx.Request.Header.Peek("X-Url")); got != "/v3/q?_762078911" {
			t.Errorf("after %s: url_url32 %q, want /v3/q?_762078911", rule, got)
		}
	}
}
