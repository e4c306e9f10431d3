package proxy

import (
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
)

func TestURIPart(t *testing.T) {
	for _, tc := range []struct {
		balance, uri, want string
	}{
		{"uri", "/a/b/c?x=1", "/a/b/c"},
		{"uri whole", "/a/b/c?x=1", "/a/b/c?x=1"},
		{"uri depth 1", "/a/b/c?x=1", "/a"},
		{"uri depth 2", "/a/b/c?x=1", "/a/b"},
		{"uri depth 5", "/a/b?x=/y/z", "/a/b"},
		{"uri len 4", "/abcdef", "/abc"},
		{"uri len 4 whole", "/a?bcdef", "/a?b"},
		{"uri", "http://api.example:5000/v3/auth?x", "http://api.example:5000/v3/auth"},
		{"uri path-only", "http://api.example:5000/v3/auth?x", "/v3/auth"},
		{"uri path-only depth 1", "https://h/v3/auth", "/v3"},
		{"uri path-only", "http://h", ""},
		{"uri path-only", "/rel/a://b", "/rel/a://b"},
	} {
		b, err := config.ParseBalance(tc.balance)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(uriPart(&b, []byte(tc.uri))); got != tc.want {
			t.Errorf("%s of %q = %q, want %q", tc.balance, tc.uri, got, tc.want)
		}
	}
}

func TestMainDomain(t *testing.T) {
	for in, want := range map[string]string{
		"haproxy.1wt.eu":      "1wt",
		"haproxy.1wt.eu:8080": "1wt",
		"1wt.eu":              "1wt",
		"localhost:8080":      "localhost:8080",
		"a.b.c.example.org":   "example",
		"":                    "",
	} {
		if got := string(mainDomain([]byte(in))); got != want {
			t.Errorf("mainDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzURIPart: whatever a client sends, the hashed part is a piece of the
// URI and respects len.
func FuzzURIPart(f *testing.F) {
	for _, s := range []string{"/a/b?c", "http://h:1/p?q", "://", "/", "", "?", "http://", "a://b/c/d/e?f"} {
		f.Add(s, 3, 2, true, true)
	}
	f.Fuzz(func(t *testing.T, uri string, n, depth int, whole, pathOnly bool) {
		b := config.Balance{Algorithm: "uri", URILen: max(n, 0) % 64, URIDepth: max(depth, 0) % 8, URIWhole: whole, URIPathOnly: pathOnly}
		got := string(uriPart(&b, []byte(uri)))
		if !strings.Contains(uri, got) {
			t.Fatalf("%q is not part of %q", got, uri)
		}
		if b.URILen > 0 && len(got) > b.URILen {
			t.Fatalf("%q longer than len %d", got, b.URILen)
		}
		if !whole && strings.Contains(got, "?") {
			t.Fatalf("%q has a query without whole", got)
		}
		if d := mainDomain([]byte(uri)); !strings.Contains(uri, string(d)) || strings.Contains(string(d), ".") {
			t.Fatalf("mainDomain(%q) = %q", uri, d)
		}
	})
}
