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
